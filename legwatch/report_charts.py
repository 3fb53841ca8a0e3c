"""The report's charts (matplotlib figures), shared by the PDF and the HTML page.

Drawn to be read printed in black and white: black and grey fills, hatching, line styles and
markers carry the meaning, never colour alone; the clinical 15/h line is dashed and labelled.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "black",
    "axes.labelcolor": "black",
    "xtick.color": "black",
    "ytick.color": "black",
    "text.color": "black",
    "svg.fonttype": "none",
    "hatch.linewidth": 0.6,
}
GREY = "0.6"
LIGHT = "0.85"


def _dates(report: Mapping) -> list[str]:
    d0, d1 = date.fromisoformat(report["since"]), date.fromisoformat(report["until"])
    return [date.fromordinal(o).isoformat() for o in range(d0.toordinal(), d1.toordinal() + 1)]


def _per_date(report: Mapping, key: str) -> dict[str, float]:
    """One value per date from the usable nights (several recordings of one date added up; the PLM
    index: the highest)."""
    out: dict[str, float] = {}
    for r in report["nights"]:
        if r["status"] != "ok" or r[key] is None:
            continue
        v = float(r[key])
        out[r["night"]] = (
            max(out.get(r["night"], v), v)
            if key in ("plm_index", "cramp_longest_s")
            else (out.get(r["night"], 0.0) + v)
        )
    return out


def _ticks(ax, dates: list[str]) -> None:
    step = max(1, len(dates) // 16)
    idx = list(range(0, len(dates), step))
    ax.set_xticks(idx, [dates[i][5:] for i in idx], rotation=90)
    ax.set_xlim(-0.7, len(dates) - 0.3)


def nightly_figure(report: Mapping, width: float = 7.4, height: float = 9.0) -> Figure:
    """Per night: cramps, leg movements, the periodic-movement index and the sleep window."""
    dates = _dates(report)
    x = {d: i for i, d in enumerate(dates)}
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(4, 1, figsize=(width, height), sharex=True)
        # fixed margins (in inches) rather than a layout engine: as readable, a good deal quicker
        fig.subplots_adjust(
            left=0.75 / width, right=1 - 0.2 / width, top=1 - 0.3 / height, bottom=0.9 / height, hspace=0.3
        )
        usable = {r["night"] for r in report["nights"] if r["status"] == "ok"}
        recorded = {r["night"] for r in report["nights"]}
        ax = axes[0]
        cramps = _per_date(report, "cramps")
        ax.bar([x[d] for d in cramps], list(cramps.values()), color="black", width=0.7)
        ax.set_ylabel("cramps")
        ax.yaxis.get_major_locator().set_params(integer=True)
        longest = _per_date(report, "cramp_longest_s")
        top = max([*cramps.values(), 1.0])
        for d, v in longest.items():  # the longest cramp of the night, written above its bar
            ax.text(
                x[d],
                cramps[d] + top * 0.03,
                f"{v / 60:.1f}",
                ha="center",
                va="bottom",
                fontsize=5.5,
                rotation=90 if len(dates) > 40 else 0,
            )
        ax.set_ylim(0, top * 1.3)
        ax.set_title("Cramps (contractions > 10 s) per night; above a bar: the longest cramp, in minutes")
        ax = axes[1]
        lms = _per_date(report, "leg_movements")
        per = _per_date(report, "periodic")
        ax.bar(
            [x[d] for d in lms],
            list(lms.values()),
            color=LIGHT,
            edgecolor="black",
            lw=0.5,
            width=0.7,
            label="leg movements",
        )
        ax.bar(
            [x[d] for d in per],
            list(per.values()),
            color="none",
            edgecolor="black",
            hatch="////",
            lw=0.5,
            width=0.7,
            label="of them periodic",
        )
        ax.set_title("Leg movements (0.5–10 s) per night")
        ax.set_ylabel("movements")
        ax.legend(frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.1)
        ax = axes[2]
        plm = _per_date(report, "plm_index")
        ax.plot([x[d] for d in plm], list(plm.values()), "-o", color="black", mfc="white", ms=3.5, lw=1)
        ax.axhline(report["overview"]["plm_clinical"], color="black", ls="--", lw=1)
        ax.text(
            len(dates) - 0.5,
            report["overview"]["plm_clinical"],
            " clinical threshold 15/h",
            va="bottom",
            ha="right",
            fontsize=7,
        )
        ax.set_title("Periodic leg movements per hour of sleep (PLM index)")
        ax.set_ylabel("per hour")
        ax.set_ylim(bottom=0, top=max([*plm.values(), 20.0]) * 1.15)
        ax = axes[3]
        bars: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
        ticks_x, ticks_y = [], []
        for r in report["nights"]:
            if r["sleep_start"] is None:
                continue
            s, e = _clock(r["sleep_start_hm"]), _clock(r["sleep_end_hm"])
            if e < s:
                e += 24
            bars[r["status"] == "ok"].append((x[r["night"]], e - s, s))
            for t in r["cramp_times"]:
                c = _clock(t)
                ticks_x.append(x[r["night"]])
                ticks_y.append(c + 24 if c < s else c)
        for ok, style in ((True, {"color": GREY}), (False, {"color": "none", "edgecolor": "black", "hatch": ".."})):
            if bars[ok]:
                bx, bh, bb = zip(*bars[ok], strict=True)
                ax.bar(bx, bh, bottom=bb, width=0.7, lw=0.5, **style)
        ax.plot(ticks_x, ticks_y, "_", color="black", ms=7, mew=2, ls="none")
        ax.set_title("Sleep window (bars) and cramps (black ticks)")
        ax.set_ylabel("clock time")
        lo, hi = ax.get_ylim() if report["nights"] else (20.0, 32.0)
        lo, hi = math.floor(lo), math.ceil(hi)
        step = 1 if hi - lo <= 6 else 2
        ticks = list(range(lo, hi + 1, step))
        ax.set_yticks(ticks, [f"{t % 24:02d}:00" for t in ticks])
        ax.set_ylim(hi, lo)  # evening at the top
        for d in dates:
            if d not in recorded:
                for a in axes:
                    a.axvspan(x[d] - 0.5, x[d] + 0.5, color="0.93", lw=0)
            elif d not in usable:
                axes[0].text(x[d], 0, "?", ha="center", va="bottom", fontsize=7)
        _ticks(axes[3], dates)
        axes[3].set_xlabel("night (evening date); light grey: no recording, ?: too little data")
    return fig


def _clock(hm: str) -> float:
    h, m = hm.split(":")
    v = int(h) + int(m) / 60
    return v + 24 if v < 12 else v


def timing_figure(report: Mapping, width: float = 7.4, height: float = 4.2) -> Figure:
    """When in the night episodes happen: by hour since falling asleep and by clock time."""
    t = report["timing"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(width, height), layout="constrained")
        for col, (kind, label, style) in enumerate(
            (
                ("contraction", "Cramps", {"color": "black"}),
                ("leg_movement", "Leg movements", {"color": LIGHT, "edgecolor": "black", "lw": 0.5}),
            )
        ):
            since = t["hours_since_sleep_onset"][kind]
            ax = axes[0][col]
            ax.bar(range(len(since)), since, width=0.8, **style)
            ax.set_title(f"{label}: hours after falling asleep")
            ax.set_xticks(range(len(since)), [f"{h}–{h + 1}" for h in range(len(since))])
            ax.set_xlabel("hours after sleep onset")
            ax.set_ylabel("count")
            ax.yaxis.get_major_locator().set_params(integer=True)
            clock = t["clock_hour"][kind]
            order = [*range(18, 24), *range(0, 12)]
            ax = axes[1][col]
            ax.bar(range(len(order)), [clock[h] for h in order], width=0.8, **style)
            ax.set_title(f"{label}: clock time")
            ax.set_xticks(range(0, len(order), 2), [f"{order[i]:02d}" for i in range(0, len(order), 2)])
            ax.set_xlabel("hour of the night")
            ax.set_ylabel("count")
            ax.yaxis.get_major_locator().set_params(integer=True)
    return fig


def weekly_figure(report: Mapping, width: float = 7.4, height: float = 2.4) -> Figure:
    """Weekly means: cramps per night (solid, filled) and leg movements per night (dashed, open)."""
    w = [x for x in report["weekly"] if x["nights"]]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        labels = [x["week_start"][5:] for x in w]
        ax.plot(labels, [x["cramps_mean"] for x in w], "-o", color="black", label="cramps per night")
        ax.set_ylabel("cramps per night")
        ax.set_ylim(bottom=0)
        ax2 = ax.twinx()
        ax2.plot(
            labels,
            [x["leg_movements_mean"] for x in w],
            "--s",
            color="black",
            mfc="white",
            label="leg movements per night",
        )
        ax2.set_ylabel("leg movements per night")
        ax2.set_ylim(bottom=0)
        ax2.spines["top"].set_visible(False)
        ax.set_title("Weekly trend (week starting)")
        lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(
            lines,
            [str(line.get_label()) for line in lines],
            frameon=False,
            loc="lower center",
            ncols=2,
            bbox_to_anchor=(0.5, 1.08),
        )
    return fig


def svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element (text kept as text), and closed."""
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]
