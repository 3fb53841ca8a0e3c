"""The morning summary as one self-contained HTML page (inline CSS, the timeline as an embedded PNG).

The timeline shows the night's activity (the ``activity`` points: movement per 30 s epoch) over
time, the sleep window and the gaps in the data shaded, and every episode marked by kind.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from legwatch.summary import KIND_LABELS, PLM_CLINICAL, _dur, _hm, habit_text

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


def timeline_png(s: Mapping, act: Sequence[tuple[float, float]]) -> bytes:
    """The night's timeline as PNG bytes (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    tz = datetime.now().astimezone().tzinfo

    def dt(ts: float) -> datetime:
        return datetime.fromtimestamp(ts, tz)

    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 4.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}, layout="constrained"
    )
    rec, sw = s["recording"], s["sleep_window"]
    handles = []
    for a in (ax, ax2):
        if sw["start"] is not None:
            a.axvspan(dt(sw["start"]), dt(sw["end"]), color="#DDEBFF", zorder=0)
        for g in s["gaps"]:
            a.axvspan(dt(g["start"]), dt(g["end"]), facecolor="#BBBBBB", alpha=0.6, hatch="//", zorder=1)
    if sw["start"] is not None:
        handles.append(Patch(color="#DDEBFF", label="sleep window"))
    if s["gaps"]:
        handles.append(Patch(facecolor="#BBBBBB", hatch="//", label="no data"))
    if act:
        ax.plot([dt(t) for t, _ in act], [m * 1000 for _, m in act], color="#3D4451", lw=0.9, zorder=2)
    else:
        ax.text(0.5, 0.5, "no activity data stored", transform=ax.transAxes, ha="center", color="#777")
    ax.set_ylabel("movement (mg)")
    ax.set_title(f"Night of {s['night_of']}: activity and episodes")
    rows = list(KIND_COLOURS)
    for row, kind in enumerate(rows):
        eps = [e for e in s["episodes"] if e["kind"] == kind]
        bars = [(mdates.date2num(dt(e["start"])), max(e["duration_s"], 20.0) / 86400) for e in eps]
        if bars:
            ax2.broken_barh(bars, (row - 0.35, 0.7), facecolors=KIND_COLOURS[kind], zorder=3)
            for e in eps:
                ax.axvline(dt(e["start"]), color=KIND_COLOURS[kind], lw=0.8, alpha=0.7, zorder=1.5)
        handles.append(Patch(color=KIND_COLOURS[kind], label=KIND_LABELS[kind]))
    ax2.set_yticks(range(len(rows)), [k.replace("_", " ") for k in rows])
    ax2.set_ylim(-0.6, len(rows) - 0.4)
    ax2.set_xlim(dt(rec["start"]), dt(rec["end"]))
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    ax.legend(handles=handles, loc="upper right", fontsize=8, ncol=3, framealpha=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def render_html(s: Mapping, act: Sequence[tuple[float, float]]) -> str:
    """The whole page as a string."""
    sw, c = s["sleep_window"], s["comparison"]
    png = base64.b64encode(timeline_png(s, act)).decode("ascii")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>legwatch — night of {escape(s['night_of'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Night of {escape(s['night_of'])}</h1>",
        f'<p class="sub">{escape(s["subject"])}, sensor {escape(s["sensor"])} · recording '
        f"{_hm(s['recording']['start'])} – {_hm(s['recording']['end'])}</p>",
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
    cards.append(_card(f"{s['coverage'] * 100:.0f}%", "data coverage"))
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
        parts.append(f"<p>{len(s['gaps'])} gap(s), {_dur(s['gaps_total_s'])} without data:</p><ul>")
        parts += [f"<li>{_hm(g['start'])} – {_hm(g['end'])} ({_dur(g['duration_s'])})</li>" for g in s["gaps"][:50]]
        parts.append("</ul>")
    else:
        parts.append(f"<p>{s['coverage'] * 100:.1f}% of the recording has data; no gaps.</p>")
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
    parts.append(f'<p class="note">{escape(s["disclaimer"])}</p></body></html>')
    return "\n".join(parts)
