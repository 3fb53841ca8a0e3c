"""The report as one self-contained HTML page: inline CSS, the charts as inline SVG (text kept as
text), no scripts and nothing fetched. Prints on A4 in black and white (``@media print``)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from legwatch.experiment_result import p_text
from legwatch.report_charts import nightly_figure, svg, timing_figure, weekly_figure
from legwatch.report_pdf import WEEK_COLUMNS, week_cells
from legwatch.report_text import NIGHT_COLUMNS, doctor_points, night_cells, overview_lines

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;background:#fff;
max-width:60rem;margin:1.5rem auto;padding:0 1rem;line-height:1.45;font-size:15px}
h1{font-size:1.55rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:2px solid #111}
.sub{color:#333;margin-top:0}
table{border-collapse:collapse;margin:.4rem 0;font-size:.88rem;width:100%}
th,td{padding:.22rem .45rem;border-bottom:1px solid #bbb;text-align:left;vertical-align:top}
th{border-bottom:2px solid #111}td.r,th.r{text-align:right}tbody tr:nth-child(even){background:#f2f2f2}
.points li{margin:.25rem 0}.flag{font-weight:700}
.box{border:2px solid #111;border-radius:6px;padding:.6rem 1rem;margin:.6rem 0}
figure{margin:.6rem 0}svg{width:100%;max-width:100%;height:auto}.note{font-size:.85rem;color:#333}
@media print{body{max-width:none;margin:0;font-size:11pt}h2{break-after:avoid}figure,tr{break-inside:avoid}
tbody tr:nth-child(even){background:none}.pagebreak{break-before:page}}
"""


def _table(columns, rows) -> str:
    head = "".join(f'<th class="{"r" if a == "r" else ""}">{escape(h)}</th>' for h, _w, a in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"r" if a == "r" else ""}">{escape(c)}</td>' for c, (_h, _w, a) in zip(r, columns, strict=True)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Mapping) -> str:
    """The whole page as a string."""
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>legwatch report — {escape(report['subject'])} — {escape(report['since'])} to "
        f"{escape(report['until'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Night-time leg report — {escape(report['subject'])}</h1>",
        f'<p class="sub">Nights of {escape(report["since"])} to {escape(report["until"])} (a night is named by its '
        f"evening). Generated {escape(report['generated'][:16].replace('T', ' '))} by legwatch from a shin-worn "
        "accelerometer.</p>",
        f'<p class="box">{escape(report["disclaimer"])}</p>',
        "<h2>Overview</h2>",
        *[f"<p>{escape(line)}</p>" for line in overview_lines(report)],
        '<h2>Points for the doctor</h2><ul class="points">',
        *[f"<li>{escape(p)}</li>" for p in doctor_points(report)],
        "</ul><h2>Weekly trends</h2>",
        _table(WEEK_COLUMNS, [week_cells(w) for w in report["weekly"]]),
    ]
    if any(w["nights"] for w in report["weekly"]):
        out.append(f"<figure>{svg(weekly_figure(report))}</figure>")
    out.append('<h2 class="pagebreak">The nights in charts</h2>')
    out.append(f"<figure>{svg(nightly_figure(report, height=8.0))}</figure>")
    out.append("<h2>When in the night</h2>")
    out.append(f"<figure>{svg(timing_figure(report))}</figure>")
    out.append("<h2>Medications and habits logged</h2>")
    meds = report["medications"]
    if meds:
        out.append("<table><thead><tr><th>medication</th><th class=r>days logged</th><th class=r>nights after</th>")
        out.append("<th>note</th></tr></thead><tbody>")
        for m in meds:
            why = f'<span class="flag">linked to cramps: {escape(m["why"])}</span>' if m["why"] else ""
            out.append(
                f"<tr><td>{escape(m['name'])}</td><td class=r>{m['days_logged']}</td>"
                f"<td class=r>{m['nights_after']}</td><td>{why}</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append("<p>No medications were logged in this period.</p>")
    if report["habits"]:
        out.append(
            "<table><thead><tr><th>habit</th><th class=r>days logged</th><th class=r>nights after</th>"
            "<th class=r>total</th></tr></thead><tbody>"
        )
        for h in report["habits"]:
            out.append(
                f"<tr><td>{escape(h['key'].replace('_', ' '))}</td><td class=r>{h['days_logged']}</td>"
                f"<td class=r>{h['nights_after']}</td><td class=r>{h['total']:g} {escape(str(h['unit']))}</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append("<p>No habits were logged in this period.</p>")
    c = report["correlation"]
    out.append("<h2>What went with better or worse nights (observational)</h2>")
    if not c["enough_nights"]:
        out.append(
            f"<p>Only {c['nights']} night(s) with enough data: at least {c['min_nights']} are needed to judge a "
            "habit.</p>"
        )
    out.append("<ul>")
    for f in c["findings"]:
        text = f"{f['label']}: {f['verdict']}" if not f["test"] else f["verdict"]
        extra = f" <span class=note>({escape(f['effect_text'])})</span>" if f.get("effect_text") else ""
        out.append(f"<li>{escape(text)}{extra}</li>")
    out.append(
        "</ul><p class=note>Going together is not cause and effect: people do some things on the evenings "
        "they expect a bad night. A randomized experiment (<code>legwatch experiment</code>) can tell.</p>"
    )
    out.append("<h2>Experiments</h2>")
    if report["experiments"]:
        for x in report["experiments"]:
            ci = (
                ""
                if x["ci"] is None
                else (
                    f" Episodes per night {x['mean_with']:.1f} with, {x['mean_without']:.1f} without: difference "
                    f"{x['effect']:+.1f} (95% CI {x['ci'][0]:+.1f} to {x['ci'][1]:+.1f}), {p_text(x['p_value'])}."
                )
            )
            adh = "" if x["adherence"] is None else f", schedule followed on {x['adherence'] * 100:.0f}%"
            out.append(
                f"<p><b>{escape(x['habit'])}, {escape(x['start'])} to {escape(x['end'])} ({escape(x['state'])}): "
                f"{x['nights_analysed']} of {x['nights_planned']} nights analysed{adh}.</b> "
                f"{escape(x['verdict_text'])}{escape(ci)}</p>"
            )
    else:
        out.append("<p>No experiment ran in this period.</p>")
    out.append('<h2 class="pagebreak">Night by night</h2>')
    out.append(
        "<p class=note>Counts are episodes during the sleep window; cramp times are the clock times of their "
        "onsets; PLMI is periodic leg movements per hour of sleep (clinical threshold 15/h, marked *).</p>"
    )
    out.append(_table(NIGHT_COLUMNS, [night_cells(r) for r in report["nights"]]))
    out.append("<h2>Data quality</h2><ul>")
    out += [f"<li>{escape(n)}</li>" for n in report["data_quality"]]
    out.append(f"</ul><p class=note>{escape(c['method'])}</p>")
    out.append(f'<p class="box">{escape(report["disclaimer"])}</p></body></html>')
    return "\n".join(out)
