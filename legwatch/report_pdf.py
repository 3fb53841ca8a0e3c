"""The report as a PDF of several A4 pages, drawn with matplotlib (``PdfPages``), black and white.

Page 1: the period, the key numbers, points for the doctor, weekly trends. Page 2: the nights in
charts. Page 3: when in the night episodes happen, habits and medications, what went with
better or worse nights. Then the night-by-night table (as many pages as it needs), experiments,
data quality and the disclaimer.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Mapping, Sequence

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from legwatch.experiment_result import p_text
from legwatch.report_charts import STYLE, nightly_figure, timing_figure, weekly_figure
from legwatch.report_text import NIGHT_COLUMNS, doctor_points, fmt, night_cells, overview_lines

W, H = 8.27, 11.69
MARGIN = 0.6
LINE = 0.19  # inches per line of 9 pt text
DPI = 160  # charts: sharp on paper, quick to draw


class Page:
    """One A4 page with a cursor running down from the top (inches)."""

    def __init__(self, pdf: PdfPages, title: str, footer: str) -> None:
        import matplotlib.pyplot as plt

        self.pdf = pdf
        with plt.rc_context(STYLE):
            self.fig = Figure(figsize=(W, H))
        self.y = MARGIN
        self.footer = footer
        if title:
            self.heading(title, size=15)

    def _at(self, x: float, y: float, text: str, **kw) -> None:
        self.fig.text(x / W, 1 - y / H, text, va="top", **kw)

    def heading(self, text: str, size: float = 11.5) -> None:
        self.y += 0.1
        self._at(MARGIN, self.y, text, fontsize=size, fontweight="bold")
        self.y += size / 72 * 1.7

    def para(self, text: str, size: float = 9, indent: float = 0.0, bold: bool = False) -> None:
        chars = int((W - 2 * MARGIN - indent) * 72 / (size * 0.52))
        for line in textwrap.wrap(text, chars) or [""]:
            self._at(MARGIN + indent, self.y, line, fontsize=size, fontweight="bold" if bold else "normal")
            self.y += LINE * size / 9

    def bullets(self, items: Sequence[str], size: float = 9) -> None:
        for item in items:
            self._at(MARGIN + 0.05, self.y, "•", fontsize=size)
            self.para(item, size, indent=0.22)
            self.y += 0.03

    def room(self) -> float:
        return H - MARGIN - 0.3 - self.y

    def table(self, columns: Sequence[tuple[str, float, str]], rows: Sequence[Sequence[str]], size: float = 8) -> None:
        """``columns``: (header, width in inches, "l"|"r")."""
        step = LINE * size / 9 * 1.05
        x = MARGIN
        xs = []
        for _head, width, _align in columns:
            xs.append(x)
            x += width
        for (head, width, align), x0 in zip(columns, xs, strict=True):
            xx = x0 + (width - 0.06 if align == "r" else (0.1 if x0 > MARGIN else 0))
            self._at(xx, self.y, head, fontsize=size, fontweight="bold", ha="right" if align == "r" else "left")
        self.y += step
        self.fig.add_artist(_hline(self.y - 0.04, MARGIN, x))
        for i, row in enumerate(rows):
            if i % 2 == 1:
                self.fig.add_artist(_band(self.y - 0.03, step, MARGIN, x))
            for cell, (_h, width, align), x0 in zip(row, columns, xs, strict=True):
                xx = x0 + (width - 0.06 if align == "r" else (0.1 if x0 > MARGIN else 0))
                self._at(xx, self.y, cell, fontsize=size, ha="right" if align == "r" else "left")
            self.y += step
        self.y += 0.1

    def figure(self, make: Callable[..., Figure], height: float) -> None:
        """Draw a chart (made at the page's width) at the cursor, as an image of ``DPI``: drawn once at
        the size it is printed, embedded without resampling."""
        import matplotlib.pyplot as plt
        import numpy as np

        sub = make(width=W - 2 * MARGIN, height=height)
        sub.set_dpi(DPI)
        sub.canvas.draw()
        img = np.asarray(sub.canvas.buffer_rgba())[:, :, :3].copy()
        plt.close(sub)
        ax = self.fig.add_axes((MARGIN / W, 1 - (self.y + height) / H, (W - 2 * MARGIN) / W, height / H))
        ax.imshow(img, interpolation="none")
        ax.set_axis_off()
        self.y += height + 0.1

    def finish(self, number: int) -> None:
        self._at(MARGIN, H - MARGIN + 0.05, self.footer, fontsize=7, color="0.25")
        self._at(W - MARGIN, H - MARGIN + 0.05, f"page {number}", fontsize=7, ha="right", color="0.25")
        self.pdf.savefig(self.fig)


def _hline(y: float, x0: float, x1: float):
    from matplotlib.lines import Line2D

    return Line2D([x0 / W, x1 / W], [1 - y / H, 1 - y / H], color="black", lw=0.6)


def _band(y: float, h: float, x0: float, x1: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x0 / W, 1 - (y + h) / H), (x1 - x0) / W, h / H, color="0.93", lw=0, zorder=-1)


WEEK_COLUMNS = (
    ("week", 1.25, "l"),
    ("nights", 0.55, "r"),
    ("cramps", 0.6, "r"),
    ("per night", 0.7, "r"),
    ("cramp min", 0.75, "r"),
    ("leg mov./night", 1.05, "r"),
    ("PLM index", 0.75, "r"),
    ("PLMI > 15", 0.75, "r"),
    ("sleep h", 0.6, "r"),
)


def week_cells(w: Mapping) -> list[str]:
    return [
        f"{w['week_start'][5:]} – {w['week_end'][5:]}",
        str(w["nights"]),
        str(w["cramps_total"]) if w["nights"] else "—",
        fmt(w["cramps_mean"], "{:.1f}"),
        fmt(w["cramp_minutes"], "{:.1f}") if w["nights"] else "—",
        fmt(w["leg_movements_mean"], "{:.0f}"),
        fmt(w["plm_index_mean"], "{:.1f}"),
        str(w["nights_plm_above"]) if w["nights"] else "—",
        fmt(w["sleep_h_mean"], "{:.1f}"),
    ]


def render_pdf(report: Mapping) -> bytes:
    """The whole document as PDF bytes."""
    buf = io.BytesIO()
    footer = (
        f"legwatch report — {report['subject']} — nights {report['since']} to {report['until']} — "
        "self-tracking, not a diagnosis"
    )
    pages = 0
    with PdfPages(buf, metadata={"Title": f"legwatch report {report['subject']}", "Creator": "legwatch"}) as pdf:

        def new(title: str = "") -> Page:
            return Page(pdf, title, footer)

        def done(p: Page) -> None:
            nonlocal pages
            pages += 1
            p.finish(pages)

        p = new(f"Night-time leg report — {report['subject']}")
        p.para(
            f"Nights of {report['since']} to {report['until']} (a night is named by its evening). "
            f"Generated {report['generated'][:16].replace('T', ' ')} by legwatch from a shin-worn accelerometer."
        )
        p.heading("Overview")
        for line in overview_lines(report):
            p.para(line)
        p.heading("Points for the doctor")
        p.bullets(doctor_points(report))
        p.heading("Weekly trends")
        p.table(WEEK_COLUMNS, [week_cells(w) for w in report["weekly"]])
        if p.room() > 2.8 and any(w["nights"] for w in report["weekly"]):
            p.figure(lambda **kw: weekly_figure(report, **kw), min(2.6, p.room() - 0.9))
        p.para(report["disclaimer"], size=8)
        done(p)

        p = new("The nights in charts")
        p.figure(lambda **kw: nightly_figure(report, **kw), H - 2 * MARGIN - 1.0)
        done(p)

        p = new("When in the night")
        p.figure(lambda **kw: timing_figure(report, **kw), 4.4)
        _habits_section(p, report)
        if p.room() < 2.0:
            done(p)
            p = new("")
        _correlation_section(p, report)
        done(p)

        rows = [night_cells(r) for r in report["nights"]]
        per_page = 48
        for i in range(0, max(len(rows), 1), per_page):
            p = new("Night by night" + (" (continued)" if i else ""))
            if i == 0:
                p.para(
                    "Counts are episodes during the sleep window. Cramp times are clock times of their onsets. "
                    "PLM index: periodic leg movements per hour of sleep (clinical threshold 15/h, marked *).",
                    size=8,
                )
            if rows:
                p.table(NIGHT_COLUMNS, rows[i : i + per_page], size=7.5)
            else:
                p.para("No nights were recorded in this period.")
            done(p)

        p = new("Experiments, data quality, method")
        p.heading("Experiments (randomized, one remedy at a time)")
        if report["experiments"]:
            for x in report["experiments"]:
                p.para(
                    f"{x['habit']}, {x['start']} to {x['end']} ({x['state']}): {x['nights_analysed']} of "
                    f"{x['nights_planned']} nights analysed"
                    + ("" if x["adherence"] is None else f", schedule followed on {x['adherence'] * 100:.0f}% of them")
                    + ".",
                    bold=True,
                )
                p.para(x["verdict_text"], indent=0.2)
                if x["effect"] is not None:
                    p.para(
                        f"Episodes per night {x['mean_with']:.1f} with, {x['mean_without']:.1f} without: "
                        f"difference {x['effect']:+.1f} (95% CI {x['ci'][0]:+.1f} to {x['ci'][1]:+.1f}), "
                        f"randomization test {p_text(x['p_value'])}.",
                        indent=0.2,
                    )
        else:
            p.para("No experiment ran in this period.")
        p.heading("Data quality")
        p.bullets(report["data_quality"])
        p.heading("How the numbers are made")
        p.para(
            "Episodes are detected from the accelerometer: twitches (< 0.5 s), leg movements (0.5–10 s, the AASM/WASM "
            "definition; periodic when in a series of at least 4 with 10–90 s between onsets) and sustained "
            "contractions (> 10 s), counted as cramps. Only episodes inside the sleep window found from the data "
            "count. A night with less than half of its recording covered, no sleep window, or less than 30 minutes "
            "of covered sleep is reported as too little data, never as zero.",
            size=8.5,
        )
        p.para(report["correlation"]["method"], size=8.5)
        p.heading("Disclaimer")
        p.para(report["disclaimer"])
        done(p)
    return buf.getvalue()


def _habits_section(p: Page, report: Mapping) -> None:
    p.heading("Medications and habits logged")
    meds = report["medications"]
    if meds:
        rows = []
        for m in meds:
            flag = f"linked to cramps ({m['linked_to_cramps']})" if m["linked_to_cramps"] else ""
            rows.append([m["name"], str(m["days_logged"]), str(m["nights_after"]), flag])
        p.table((("medication", 2.0, "l"), ("days", 0.6, "r"), ("nights after", 1.0, "r"), ("", 3.2, "l")), rows)
        for m in meds:
            if m["why"]:
                p.para(f"{m['name']}: {m['why']}.", size=8.5, bold=True)
        p.y += 0.12
    else:
        p.para("No medications were logged in this period.")
    habits = report["habits"]
    if habits:
        rows = [
            [h["key"].replace("_", " "), str(h["days_logged"]), str(h["nights_after"]), f"{h['total']:g} {h['unit']}"]
            for h in habits
        ]
        p.table((("habit", 2.0, "l"), ("days", 0.6, "r"), ("nights after", 1.0, "r"), ("total", 1.6, "r")), rows)
    else:
        p.para("No habits were logged in this period.")


def _correlation_section(p: Page, report: Mapping) -> None:
    c = report["correlation"]
    p.heading("What went with better or worse nights (observational)")
    if not c["enough_nights"]:
        p.para(f"Only {c['nights']} night(s) with enough data: at least {c['min_nights']} are needed to judge a habit.")
    for f in c["findings"]:
        text = f"{f['label']}: {f['verdict']}" if not f["test"] else f["verdict"]
        if f.get("effect_text"):
            text += f" — {f['effect_text']}"
        p.bullets([text], size=8.5)
    p.para(
        "Going together is not cause and effect: people do some things on the evenings they expect a bad night.", size=8
    )
