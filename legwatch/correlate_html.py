"""The correlation report as one self-contained HTML page, with a plot per notable habit.

A yes/no habit is drawn as the outcome of each night with and without it (with the means); an
amount as a scatter of amount against outcome. Plots are PNGs embedded as base64 (matplotlib, Agg).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from html import escape

import numpy as np

from legwatch.correlate import _label, _pfmt, _qfmt, notable

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:66rem;
padding:0 1rem;color:#1f2328}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.8rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left}td.n{text-align:right}
.more{color:#b3261e;font-weight:600}.fewer{color:#1a7f37;font-weight:600}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:8px;padding:.7rem 1rem}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{margin:0}img{max-width:100%}
.note{color:#59636e;font-size:.9rem;border-top:1px solid #ddd;margin-top:2rem;padding-top:.6rem}
"""


def habit_plot_png(report: Mapping, r: Mapping) -> bytes:
    """One habit against the outcome, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    x = np.array([row["habits"].get(r["habit"], 0.0) for row in rows])
    y = np.array([row["outcome"] for row in rows])
    fig, ax = plt.subplots(figsize=(4.6, 3.4), layout="constrained")
    colour = "#b3261e" if r["effect"] > 0 else "#1a7f37"
    if r["test"] == "spearman":
        ax.scatter(x, y, color=colour, alpha=0.75)
        ax.set_xlabel(f"{r['label']} the evening before")
    else:
        jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(y))
        groups = (x > 0).astype(float)
        ax.scatter(groups + jitter, y, color=colour, alpha=0.75)
        for g in (0, 1):
            sel = y[groups == g]
            if len(sel):
                ax.hlines(sel.mean(), g - 0.25, g + 0.25, color="#333", lw=2)
        ax.set_xticks([0, 1], [f"without\n({int((groups == 0).sum())} nights)", f"with\n({int(groups.sum())} nights)"])
        ax.set_xlim(-0.5, 1.5)
    ax.set_ylabel(f"{report['outcome']} per night")
    ax.set_title(f"{r['label']}: q {_qfmt(r['q']).replace('=', '= ').replace('<', '< ')}", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def render_html(report: Mapping) -> str:
    """The whole page as a string."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>legwatch correlate — {escape(report['subject'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Which habits go with better or worse nights — {escape(report['subject'])}</h1>",
        f"<p>{report['nights']} night(s) with enough data; outcome: {escape(report['outcome'])} per night.</p>",
    ]
    if report["skipped"]:
        out.append(f"<p>Left out {len(report['skipped'])} night(s) with too little data.</p>")
    if not report["enough_nights"]:
        out.append(
            f'<p class="warn">Only {report["nights"]} night(s): at least {report["min_nights"]} are needed before '
            "any habit can be judged. Keep wearing the sensor and logging.</p>"
        )
    out.append("<h2>Habits</h2><table><tr><th>habit</th><th>nights with/without</th><th>test</th><th>effect</th>")
    out.append("<th>p</th><th>q</th><th>verdict</th></tr>")
    for r in report["habits"]:
        cls = r["finding"] if r["finding"] in ("more", "fewer") else ""
        if r["test"]:
            cells = f"<td>{escape(r['test'])}</td><td>{escape(r['effect_text'])}</td>"
            cells += f"<td class=n>{_pfmt(r['p'])}</td><td class=n>{_pfmt(r['q'])}</td>"
        else:
            cells = "<td>—</td><td>—</td><td>—</td><td>—</td>"
        out.append(
            f"<tr><td>{escape(r['label'])}</td><td>{r['nights_with']}/{r['nights_without']}</td>{cells}"
            f'<td class="{cls}">{escape(r["verdict"])}</td></tr>'
        )
    out.append("</table>")
    plots = notable(report)
    if plots:
        out.append('<h2>Notable habits</h2><div class="plots">')
        for r in plots:
            png = base64.b64encode(habit_plot_png(report, r)).decode("ascii")
            out.append(
                f'<figure><img alt="{escape(r["label"])} against {escape(report["outcome"])}" '
                f'src="data:image/png;base64,{png}"><figcaption>{escape(r["verdict"])}</figcaption></figure>'
            )
        out.append("</div>")
    names = sorted({k for row in report["rows"] for k in row["habits"]})
    if report["rows"]:
        out.append("<h2>Nights and the habits of the evening before</h2><table><tr><th>night</th>")
        out.append(f"<th>{escape(report['outcome'])}</th>" + "".join(f"<th>{escape(_label(n))}</th>" for n in names))
        out.append("</tr>")
        for row in report["rows"]:
            cells = "".join(
                f"<td class=n>{row['habits'][n]:g}</td>" if n in row["habits"] else "<td class=n>·</td>" for n in names
            )
            out.append(f"<tr><td>{escape(row['night'])}</td><td class=n>{row['outcome']:g}</td>{cells}</tr>")
        out.append("</table>")
    out.append(f'<p class="note">{escape(report["method"])}</p>')
    out.append(f'<p class="note">{escape(report["disclaimer"])}</p></body></html>')
    return "\n".join(out)
