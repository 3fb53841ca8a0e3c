"""The morning summary as one self-contained HTML page (inline CSS, the timeline as an embedded PNG).

The timeline shows the night's activity (the ``activity`` points: movement per 30 s epoch) over
time, the sleep window and the gaps in the data shaded, and every episode marked by kind in a strip
below (see ``timeline_png``). Coverage reads the same in the card and the text (``summary.percent``).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from legwatch.contracts import localtime
from legwatch.summary import KIND_LABELS, PLM_CLINICAL, _dur, _hm, habit_text, percent

KIND_COLOURS = {"twitch": "#8AB8FF", "leg_movement": "#FF9830", "contraction": "#F2495C"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:62rem;
padding:0 1rem;color:#1f2328;background:#fff}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.8rem;border-bottom:1px solid #ddd}
.sub{color:#59636e;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #d0d7de;border-radius:8px;padding:.6rem .9rem;min-width:8.5rem}
.card b{display:block;font-size:1.4rem}.card span{color:#59636e;font-size:.85rem}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:8px;padding:.7rem 1rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .7rem;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right}img{max-width:100%;height:auto}
.note{color:#59636e;font-size:.9rem;border-top:1px solid #ddd;margin-top:2rem;padding-top:.6rem}
"""


#: An episode is drawn at least this share of the night wide (8 h: 96 s, about 3 pixels), so that a
#: 0.2 s twitch shows as clearly as a 40 s cramp; the table below the plot has the real durations.
MIN_BAR_SHARE = 1 / 300
#: The activity axis ends a little above this percentile of the trace; taller peaks (getting up,
#: rolling over) are drawn to the top and marked with a triangle instead of squashing the night flat.
TRACE_PERCENTILE = 99.0


def _trace_top(mg: Sequence[float]) -> float:
    import numpy as np

    if not len(mg):
        return 1.0
    top = float(np.percentile(mg, TRACE_PERCENTILE)) * 1.6
    return max(top, 5.0, min(float(max(mg)), 5.0))


def episode_bars(s: Mapping) -> dict[str, list[tuple[float, float]]]:
    """(start, drawn width) in Unix seconds of every episode in the summary, per kind: the real
    duration, or ``MIN_BAR_SHARE`` of the recording when that is wider."""
    rec = s["recording"]
    min_w = max(float(rec["end"]) - float(rec["start"]), 60.0) * MIN_BAR_SHARE
    return {
        kind: [(float(e["start"]), max(float(e["duration_s"]), min_w)) for e in s["episodes"] if e["kind"] == kind]
        for kind in KIND_COLOURS
    }


def timeline_png(s: Mapping, act: Sequence[tuple[float, float]]) -> bytes:
    """The night's timeline as PNG bytes (``timeline_figure`` saved at 110 dpi)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = timeline_figure(s, act)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def timeline_figure(s: Mapping, act: Sequence[tuple[float, float]]):
    """The night's timeline as a matplotlib figure (Agg backend).

    Top: the activity trace (movement per epoch, mg) over the sleep window (blue band) and the gaps
    (hatched), cramps shaded red behind it. Below: one row per episode kind, every episode a bar at
    least ``MIN_BAR_SHARE`` of the night wide. The legend sits under the plot, outside the data; the
    time axis is in the configured time zone and says which.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    tz = localtime.zone()
    rec, sw = s["recording"], s["sleep_window"]

    def dt(ts: float) -> datetime:
        return localtime.local(ts)

    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 5.2), sharex=True, gridspec_kw={"height_ratios": [2.6, 1.5]}, layout="constrained"
    )
    span_s = max(float(rec["end"]) - float(rec["start"]), 60.0)
    min_w = span_s * MIN_BAR_SHARE
    handles: list = []
    for a in (ax, ax2):
        if sw["start"] is not None:
            a.axvspan(dt(sw["start"]), dt(sw["end"]), color="#E3EEFF", zorder=0, lw=0)
        for g in s["gaps"]:
            g0, g1 = float(g["start"]), max(float(g["end"]), float(g["start"]) + min_w)
            a.axvspan(dt(g0), dt(g1), facecolor="#D0D0D0", edgecolor="#888888", hatch="///", lw=0, zorder=1)
    if sw["start"] is not None:
        handles.append(Patch(color="#E3EEFF", label="sleep window"))
    if s["gaps"]:
        handles.append(Patch(facecolor="#D0D0D0", edgecolor="#888888", hatch="///", label="no data"))
    contractions = [e for e in s["episodes"] if e["kind"] == "contraction"]
    for e in contractions:
        c0 = float(e["start"])
        ax.axvspan(dt(c0), dt(c0 + max(float(e["duration_s"]), min_w)), color="#F2495C", alpha=0.35, lw=0, zorder=1.5)
    if act:
        times = [dt(t) for t, _ in act]
        mg = [m * 1000 for _, m in act]
        top = _trace_top(mg)
        ax.fill_between(times, mg, color="#3D4451", alpha=0.18, lw=0, zorder=2)
        ax.plot(times, mg, color="#2B303A", lw=1.0, zorder=3)
        over = [(t, m) for t, m in zip(times, mg, strict=True) if m > top]
        if over:
            ax.plot([t for t, _ in over], [top * 0.97] * len(over), "v", color="#2B303A", ms=4, zorder=4, clip_on=False)
            handles.append(
                Line2D([], [], marker="v", color="#2B303A", ls="", ms=5, label=f"off scale (up to {max(mg):.0f} mg)")
            )
        ax.set_ylim(0, top)
        handles.insert(0, Line2D([], [], color="#2B303A", lw=1.2, label="movement per 30 s"))
    else:
        ax.text(0.5, 0.5, "no activity data stored", transform=ax.transAxes, ha="center", color="#777")
    ax.set_ylabel("movement (mg)")
    ax.grid(axis="y", color="#FFFFFF", lw=0.8, zorder=1.2)
    ax.set_title(f"Night of {s['night_of']}: activity and episodes", loc="left", fontsize=11)
    rows = list(KIND_COLOURS)  # row 0 at the bottom: contractions on top, next to the trace
    labels = []
    drawn = episode_bars(s)
    for row, kind in enumerate(rows):
        eps = drawn[kind]
        bars = [(mdates.date2num(dt(t0)), width / 86400) for t0, width in eps]
        if bars:
            ax2.broken_barh(bars, (row - 0.32, 0.64), facecolors=KIND_COLOURS[kind], edgecolors="none", zorder=3)
        labels.append(f"{KIND_LABELS[kind].split(' (')[0]} ({len(eps)})")
        if kind == "contraction":
            handles.append(Patch(color=KIND_COLOURS[kind], alpha=0.6, label="contraction (cramp)"))
    ax2.set_yticks(range(len(rows)), labels)
    ax2.set_ylim(-0.6, len(rows) - 0.4)
    ax2.set_xlim(dt(rec["start"]), dt(rec["end"]))
    ax2.xaxis.set_major_locator(mdates.HourLocator(tz=tz))
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    ax2.set_xlabel(f"time ({localtime.label(rec['start'])})")
    ax2.set_title("episodes during sleep (every one shown, short ones widened)", loc="left", fontsize=9, color="#555")
    for a in (ax, ax2):
        for side in ("top", "right"):
            a.spines[side].set_visible(False)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8.5, frameon=False)
    return fig


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def render_html(s: Mapping, act: Sequence[tuple[float, float]]) -> str:
    """The whole page as a string (times in the configured zone, said under the title)."""
    sw, c = s["sleep_window"], s["comparison"]
    png = base64.b64encode(timeline_png(s, act)).decode("ascii")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>legwatch — night of {escape(s['night_of'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Night of {escape(s['night_of'])}</h1>",
        f'<p class="sub">{escape(s["subject"])}, sensor {escape(s["sensor"])} · recording '
        f"{localtime.local(s['recording']['start']):%Y-%m-%d} {_hm(s['recording']['start'])} – "
        f"{_hm(s['recording']['end'])} · times in {escape(localtime.label(s['recording']['start']))}</p>",
    ]
    if not s["enough_data"]:
        parts.append(
            f'<p class="warn"><b>Too little data to report this night\'s episodes:</b> {escape(s["reason"])}. '
            "The counts are left out rather than shown as zero.</p>"
        )
    cards = []
    if s["enough_data"]:
        cards += [
            _card(str(s["episodes_total"]), "episodes in sleep"),
            _card(str(s["counts"]["contraction"]), "contractions (cramps)"),
        ]
        lc = s["longest_contraction"]
        cards.append(_card(_dur(lc["duration_s"]) if lc else "—", "longest contraction"))
        pi = s["plm_index"]
        cards.append(_card("—" if pi is None else f"{pi:.1f}/h", "periodic-movement index"))
    if sw["start"] is not None:
        cards.append(_card(f"{sw['hours']:.1f} h", f"sleep {_hm(sw['start'])[:5]}–{_hm(sw['end'])[:5]}"))
    n_gaps = len(s["gaps"])
    gaps_label = f"data coverage, {n_gaps} gap{'s' if n_gaps != 1 else ''}" if n_gaps else "data coverage, no gaps"
    cards.append(_card(f"{percent(s['coverage'])}%", gaps_label))
    parts.append('<div class="cards">' + "".join(cards) + "</div>")
    parts.append(
        f'<img alt="Timeline of the night: activity, sleep window, gaps and episodes" '
        f'src="data:image/png;base64,{png}">'
    )
    if s["enough_data"]:
        parts.append("<h2>Episodes during sleep</h2><table><tr><th>kind</th><th>count</th><th>total time</th></tr>")
        for k, n in s["counts"].items():
            parts.append(
                f"<tr><td>{escape(KIND_LABELS[k])}</td><td class=n>{n}</td>"
                f"<td class=n>{_dur(s['durations_s'][k]) if n else ''}</td></tr>"
            )
        parts.append("</table>")
        if s["plm_above_clinical"]:
            parts.append(f"<p>The periodic-movement index is above the clinical {PLM_CLINICAL:.0f}/h.</p>")
        if s["episodes"]:
            parts.append(
                f"<details><summary>All {len(s['episodes'])} episodes</summary><table><tr><th>start</th>"
                "<th>kind</th><th>duration</th><th>peak g</th><th>periodic</th></tr>"
            )
            for e in s["episodes"]:
                parts.append(
                    f"<tr><td>{_hm(e['start'])}</td><td>{escape(e['kind'])}</td><td class=n>{e['duration_s']:.1f} s"
                    f"</td><td class=n>{e['peak_g']:.3f}</td><td>{'yes' if e['periodic'] else ''}</td></tr>"
                )
            parts.append("</table></details>")
    if s["outside_sleep"]:
        parts.append(
            f"<p>{s['outside_sleep']} episode(s) outside the sleep window were not counted here; "
            "<code>legwatch detect</code> counts the whole recording, these included.</p>"
        )
    parts.append("<h2>Data coverage</h2>")
    if s["gaps"]:
        parts.append(
            f"<p>{percent(s['coverage'])}% of the recording has data; {len(s['gaps'])} gap(s), "
            f"{_dur(s['gaps_total_s'])} without data:</p><ul>"
        )
        parts += [f"<li>{_hm(g['start'])} – {_hm(g['end'])} ({_dur(g['duration_s'])})</li>" for g in s["gaps"][:50]]
        parts.append("</ul>")
    else:
        parts.append(f"<p>{percent(s['coverage'])}% of the recording has data; no gaps.</p>")
    parts.append("<h2>Compared with your recent nights</h2>")
    if c["nights"]:
        text = (
            f"Last {c['nights']} night(s) with enough data: median {c['median_episodes']:g} episodes "
            f"(range {c['min_episodes']:g}–{c['max_episodes']:g}), mean {c['mean_contractions']:g} contractions."
        )
        if c["tonight"]:
            text += f" This night: {s['episodes_total']}, {c['tonight']}."
        parts.append(f"<p>{escape(text)}</p>")
    else:
        parts.append("<p>No earlier nights with enough data to compare with yet.</p>")
    parts.append("<h2>Habits the evening before</h2>")
    if s["habits"]:
        parts.append("<ul>" + "".join(f"<li>{escape(habit_text(h))}</li>" for h in s["habits"]) + "</ul>")
    else:
        parts.append("<p>None logged between noon and sleep onset.</p>")
    if s["habits_during_night"]:
        parts.append("<p>Logged during the night:</p><ul>")
        parts += [f"<li>{escape(habit_text(h))}</li>" for h in s["habits_during_night"]]
        parts.append("</ul>")
    if s.get("experiment"):
        parts.append(f"<p>Experiment: {escape(s['experiment']['line'])}.</p>")
    parts.append(f'<p class="note">{escape(s["disclaimer"])}</p></body></html>')
    return "\n".join(parts)
