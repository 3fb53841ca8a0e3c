"""``legwatch report`` over a planted month (tests/month.py: a stretching experiment that halves the
episodes, a statin every evening, water, a night with too little data, gaps): the PDF is a valid
multi-page document (checked with poppler's pdfinfo and pdftoppm when installed, and by its own
structure), the HTML page is self-contained and says what a doctor needs, the JSON carries every
section with numbers that match the store; bad input is one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from month import NOW, store_month

from helpers import run_cli
from legwatch import cli, report
from legwatch.experiment import make_plan
from legwatch.report_html import render_html
from legwatch.report_pdf import render_pdf
from legwatch.storage.sqlite import SqliteStore


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    store = SqliteStore(d / "data" / "legwatch.sqlite")
    plan = make_plan(store, "me", "stretching", 28, seed=5, start="2026-10-01", now=NOW)
    store_month(store, "me", plan.nights, plan.schedule, factor=0.5, seed=2, extras=True)
    doc = report.build(store, "me", "2026-10-01", "2026-10-28", now=NOW)
    yield d, store, doc
    store.close()


def test_the_json_has_every_section_and_matches_the_store(month) -> None:
    _d, store, doc = month
    o = doc["overview"]
    assert doc["since"] == "2026-10-01" and doc["until"] == "2026-10-28" and o["days"] == 28
    assert o["nights_recorded"] == 28 and o["nights_with_enough_data"] == 27
    nights = store.query("night", tags={"subject": "me"})
    ok = [n for n in nights if n.fields["sleep_h"] > 1]
    assert o["cramps_total"] == sum(int(n.fields["contraction_count"]) for n in ok)
    assert sum(r["leg_movements"] or 0 for r in doc["nights"]) == sum(int(n.fields["leg_movement_count"]) for n in ok)
    row = next(r for r in doc["nights"] if r["cramps"])
    assert len(row["cramp_times"]) == row["cramps"] and row["cramp_longest_s"] <= row["cramp_total_s"]
    assert re.fullmatch(r"\d\d:\d\d", row["sleep_start_hm"])
    assert [w["week_start"] for w in doc["weekly"]] == ["2026-10-01", "2026-10-08", "2026-10-15", "2026-10-22"]
    assert sum(w["cramps_total"] for w in doc["weekly"]) == o["cramps_total"]
    assert sum(doc["timing"]["hours_since_sleep_onset"]["contraction"]) == o["cramps_total"]
    (statin,) = doc["medications"]
    assert statin["name"] == "statin" and statin["linked_to_cramps"] == "statin" and statin["days_logged"] == 28
    assert {h["key"] for h in doc["habits"]} == {"stretching", "water"}
    finding = next(f for f in doc["correlation"]["findings"] if f["habit"] == "stretching")
    assert finding["finding"] == "fewer"
    (x,) = doc["experiments"]
    assert x["habit"] == "stretching" and x["verdict"] == "helps"
    assert any("too little data" in n for n in doc["data_quality"])
    assert any("gaps" in n for n in doc["data_quality"])
    assert "not a diagnosis" in doc["disclaimer"]
    json.dumps(doc)  # JSON-ready


def test_medication_groups() -> None:
    assert report.medication_group("furosemide") == "diuretic"
    assert report.medication_group("Atorvastatin") == "statin"
    assert report.medication_group("magnesium") is None


def _pdf_pages(blob: bytes, path) -> int:
    path.write_bytes(blob)
    assert blob.startswith(b"%PDF-") and blob.rstrip().endswith(b"%%EOF")
    own = len(re.findall(rb"/Type\s*/Page\b", blob))
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
        pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
        assert pages == own
        assert "A4" in info or "595" in info
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "20", "-png", str(path), str(path.with_suffix(""))], check=True)
        assert len(list(path.parent.glob(path.stem + "-*.png"))) == own
    return own


def test_the_pdf_is_a_valid_multi_page_document(month, tmp_path) -> None:
    _d, _store, doc = month
    pages = _pdf_pages(render_pdf(doc), tmp_path / "report.pdf")
    assert pages >= 5


def test_ninety_nights_take_more_pages_for_the_table(tmp_path) -> None:
    store = SqliteStore(":memory:")
    from month import dates

    store_month(store, "me", dates("2026-08-01", 90), [False] * 90, habit="", seed=3)
    doc = report.build(store, "me", "2026-08-01", "2026-10-29", now=NOW)
    assert doc["overview"]["nights_recorded"] == 90 and len(doc["weekly"]) == 13
    assert _pdf_pages(render_pdf(doc), tmp_path / "r90.pdf") >= 6


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") and v and not v.startswith(("data:", "#")):
                self.external.append(v)

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_is_self_contained_and_readable(month) -> None:
    _d, _store, doc = month
    html = render_html(doc)
    page = _Page()
    page.feed(html)
    assert page.external == []
    assert "script" not in page.tags and "link" not in page.tags
    assert page.tags.count("svg") == 3 and "table" in page.tags
    text = " ".join(page.text)
    for needed in ("Points for the doctor", "Weekly trends", "Night by night", "statins are linked", "Data quality",
                   "clinical threshold", "not a diagnosis", "Stretching helps"):  # fmt: skip
        assert needed in text, needed


def test_the_cli_writes_pdf_html_and_json(month, tmp_path, capsys) -> None:
    d, _store, _doc = month
    common = ["--data-dir", str(d / "data"), "--subject", "me", "--since", "2026-10-01", "--until", "2026-10-28"]
    assert cli.main(["report", *common, "--output", str(tmp_path / "r.pdf")]) == 0
    assert "wrote the report" in capsys.readouterr().err
    assert _pdf_pages((tmp_path / "r.pdf").read_bytes(), tmp_path / "check.pdf") >= 5
    assert cli.main(["report", *common, "--format", "html", "--output", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert cli.main(["report", *common, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["overview"]["nights_recorded"] == 28


def test_the_summary_says_how_the_experiment_stands(month, capsys) -> None:
    d, _store, _doc = month
    assert cli.main(["summary", "--data-dir", str(d / "data"), "--subject", "me", "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["experiment"]["habit"] == "stretching" and "experiment on stretching" in s["experiment"]["line"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "2026-13-01"], "--since must be a date"),
        (["--since", "2026-10-05", "--until", "2026-10-01"], "is after"),
        (["--since", "2024-01-01", "--until", "2026-01-01"], "at most 366"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message) -> None:
    out = tmp_path / "r.pdf"
    p = run_cli("report", *args, "--output", str(out), env={"LEGWATCH_DATA_DIR": str(tmp_path / "data")})
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not out.exists()
