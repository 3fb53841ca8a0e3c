"""``legwatch report``: the arguments and the run (``legwatch.report`` builds, ``report_pdf`` and
``report_html`` render)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from legwatch.errors import UserError

DESCRIPTION = (
    "The document to bring to a doctor: the period and data coverage; per night the sleep window, cramps (count, "
    "total and longest duration, clock times), leg movements and the periodic-movement index against the clinical "
    "15/h; weekly trends; medications and habits logged (diuretics and statins called out); what went with better "
    "or worse nights, with its uncertainty; when in the night episodes happen; experiments; data quality. PDF "
    "(default, several A4 pages that print in black and white), a self-contained HTML page, or JSON. "
    "Self-tracking, not a diagnosis."
)


def add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--since", metavar="DATE", help="first night, by its evening (default: 4 weeks before --until)")
    sp.add_argument("--until", metavar="DATE", help="last night, by its evening (default: the latest stored)")
    sp.add_argument("--format", choices=("pdf", "html", "json"), default="pdf", help="output format (default pdf)")
    sp.add_argument(
        "--output",
        metavar="FILE",
        help="write to FILE (default for pdf: legwatch-report-SUBJECT-UNTIL.pdf here; html and json: the terminal)",
    )


def run_report(args: argparse.Namespace, cfg) -> int:
    from legwatch import report
    from legwatch.storage import open_store  # here: ``detect`` builds this parser but opens no store

    store = open_store(cfg)
    try:
        doc = report.build(store, cfg["subject"], args.since, args.until)
    finally:
        store.close()
    if args.format == "json":
        blob = (json.dumps(doc) + "\n").encode()
    elif args.format == "html":
        from legwatch.report_html import render_html

        blob = render_html(doc).encode()
    else:
        from legwatch.report_pdf import render_pdf

        blob = render_pdf(doc)
    out = args.output
    if out is None and args.format == "pdf":
        out = f"legwatch-report-{doc['subject']}-{doc['until']}.pdf"
    if out is None:
        sys.stdout.write(blob.decode())
        return 0
    try:
        Path(out).write_bytes(blob)
    except OSError as exc:
        raise UserError(f"--output {out}: cannot write: {exc.strerror}") from None
    o = doc["overview"]
    print(
        f"wrote the report of {doc['since']} to {doc['until']} ({o['nights_recorded']} nights recorded, "
        f"{o['nights_with_enough_data']} with enough data) to {out}",
        file=sys.stderr,
    )
    return 0
