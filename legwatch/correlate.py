"""Which habits go with fewer or more episodes: per-night table and honest statistics.

Each night is paired with the habits logged in the evening-before window (noon before the night
to the end of the night: "a lag of one evening"). For amounts, Spearman's rank correlation with
a bootstrap confidence interval; for yes/no habits (logged or not), the Mann-Whitney U test with
the difference in median episodes. p-values are corrected for testing many habits at once
(Benjamini-Hochberg). With fewer than ``MIN_NIGHTS`` nights, or too few nights on either side of
a yes/no habit, no verdict is given. Self-tracking, not medical advice.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from scipy import stats

from legwatch.storage import Store
from legwatch.summary import DISCLAIMER

MIN_NIGHTS = 10
MIN_PER_GROUP = 4
ALPHA = 0.05


def _night_date(ts: float) -> str:
    d = datetime.fromtimestamp(ts - 12 * 3600).astimezone()
    return d.strftime("%Y-%m-%d")


def table(store: Store, subject: str, since: str | None = None) -> tuple[list[dict], list[str]]:
    start = None
    if since:
        try:
            start = datetime.strptime(since, "%Y-%m-%d").astimezone().timestamp()
        except ValueError:
            raise ValueError(f"--since must be a date like 2026-01-05, got {since!r}") from None
    nights = store.query("night", start=start, tags={"subject": subject})
    habits = store.query("habit", start=None if start is None else start - 86400, tags={"subject": subject})
    rows = []
    names: set[str] = set()
    for n in nights:
        if float(n.fields.get("coverage", 0.0)) < 0.5 or "sleep_start" not in n.fields:
            continue
        win0 = float(n.fields["sleep_start"]) - 18 * 3600
        win1 = float(n.fields["sleep_start"])
        amounts: dict[str, float] = {}
        for h in habits:
            if win0 <= h.time < win1:
                key = h.tags.get("habit", "?")
                if key == "medication" and h.fields.get("name"):
                    key = f"medication:{h.fields['name']}"
                amounts[key] = amounts.get(key, 0.0) + float(h.fields.get("value", 1.0))
        names.update(amounts)
        rows.append(
            {
                "night": _night_date(n.time),
                "episodes": float(n.fields.get("episodes", 0.0)),
                "contractions": float(n.fields.get("contraction_count", 0.0)),
                "plm_index": n.fields.get("plm_index"),
                "habits": amounts,
            }
        )
    return rows, sorted(names)


def _bh(p: list[float]) -> list[float]:
    m = len(p)
    if not m:
        return []
    order = np.argsort(p)
    adj = np.empty(m)
    prev = 1.0
    for rank, i in reversed(list(enumerate(order, start=1))):
        prev = min(prev, p[i] * m / rank)
        adj[i] = prev
    return adj.tolist()


def build(store: Store, subject: str, since: str | None = None, seed: int = 0) -> dict:
    rows, names = table(store, subject, since)
    y = np.array([r["episodes"] for r in rows])
    results = []
    for name in names:
        x = np.array([r["habits"].get(name, 0.0) for r in rows])
        logged = x > 0
        n_yes, n_no = int(logged.sum()), int((~logged).sum())
        distinct = len(np.unique(x[logged]))
        res: dict = {"habit": name, "nights_with": n_yes, "nights_without": n_no}
        if len(rows) < MIN_NIGHTS or n_yes < MIN_PER_GROUP or (n_no < MIN_PER_GROUP and distinct < 3):
            res.update(test=None, verdict="not enough nights to say")
            results.append(res)
            continue
        if distinct >= 3:
            rho, p = stats.spearmanr(x, y)
            rng = np.random.default_rng(seed)
            boots = []
            for _ in range(1000):
                i = rng.integers(0, len(x), len(x))
                if len(np.unique(x[i])) > 1 and len(np.unique(y[i])) > 1:
                    boots.append(stats.spearmanr(x[i], y[i])[0])
            lo, hi = np.percentile(boots, [2.5, 97.5]).tolist() if boots else (float("nan"), float("nan"))
            res.update(test="spearman", effect=float(rho), ci=[lo, hi], p=float(p), effect_name="rank correlation")
        else:
            a, b = y[logged], y[~logged]
            u = stats.mannwhitneyu(a, b, alternative="two-sided")
            diff = float(np.median(a) - np.median(b))
            rng = np.random.default_rng(seed)
            boots = [float(np.median(rng.choice(a, len(a))) - np.median(rng.choice(b, len(b)))) for _ in range(1000)]
            lo, hi = np.percentile(boots, [2.5, 97.5]).tolist()
            res.update(
                test="mann-whitney",
                effect=diff,
                ci=[lo, hi],
                p=float(u.pvalue),
                effect_name="difference in median episodes per night",
            )
        results.append(res)
    tested = [r for r in results if r.get("test")]
    for r, q in zip(tested, _bh([r["p"] for r in tested]), strict=True):
        r["q"] = q
        direction = "more" if r["effect"] > 0 else "fewer"
        if q < ALPHA:
            r["verdict"] = f"goes with {direction} episodes (likely real: q={q:.3f})"
        elif r["p"] < ALPHA:
            r["verdict"] = f"hint of {direction} episodes, not significant after correcting for {len(tested)} habits"
        else:
            r["verdict"] = "no clear link"
    return {
        "subject": subject,
        "nights": len(rows),
        "min_nights": MIN_NIGHTS,
        "rows": rows,
        "habits": results,
        "disclaimer": DISCLAIMER + " Correlation is not causation.",
    }


def render_text(report: dict, console) -> None:
    from rich.table import Table

    console.print(f"[bold]legwatch correlate[/bold] — {report['subject']}, {report['nights']} nights with data")
    if report["nights"] < report["min_nights"]:
        console.print(
            f"[yellow]Only {report['nights']} nights: at least {report['min_nights']} are needed before "
            "any habit can be judged. Keep logging.[/yellow]"
        )
    t = Table()
    for col in ("habit", "nights with/without", "test", "effect [95% CI]", "p", "q", "verdict"):
        t.add_column(col)
    for r in report["habits"]:
        if r.get("test"):
            eff = f"{r['effect']:+.2f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]"
            t.add_row(
                r["habit"],
                f"{r['nights_with']}/{r['nights_without']}",
                r["test"],
                eff,
                f"{r['p']:.3f}",
                f"{r['q']:.3f}",
                r["verdict"],
            )
        else:
            t.add_row(r["habit"], f"{r['nights_with']}/{r['nights_without']}", "—", "—", "—", "—", r["verdict"])
    console.print(t)
    console.print(f"[dim]{report['disclaimer']}[/dim]")
