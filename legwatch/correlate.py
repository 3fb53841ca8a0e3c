"""Which habits go with fewer or more episodes: a per-night table and honest statistics.

Pairing ("a lag of one evening"): a night gets the habits logged from the last local noon before
its sleep onset up to sleep onset (``legwatch.habits.evening_window``); what is logged during the
night or the next morning belongs to no night. Only nights with enough data count
(``legwatch.summary.data_check``); nights of the same date (a recording split by a drop-out) are
added up. Medications count per name (``medication:statin``), hard exercise also on its own
(``exercise:hard``).

Per habit, against the chosen outcome (episodes per night by default):

- a yes/no habit (logged on some nights, with at most two different amounts): the Mann-Whitney U
  test between nights with and without it; effect = difference in mean episodes per night, with a
  95 % bootstrap confidence interval;
- an amount (three or more different amounts): Spearman's rank correlation over all nights (0 on
  nights without it); effect = rho with a 95 % confidence interval (Fisher z, Bonett-Wright SE).

p-values are corrected for testing many habits at once (Benjamini-Hochberg q-values). No verdict
is given with fewer than ``MIN_NIGHTS`` nights, or fewer than ``MIN_PER_GROUP`` nights with (and,
for a yes/no habit, without) the habit. Self-tracking, not medical advice: every rendering says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
from scipy import stats

from legwatch.contracts import localtime
from legwatch.habits import evening_window
from legwatch.storage import Store
from legwatch.summary import data_check, night_date

MIN_NIGHTS = 10
MIN_PER_GROUP = 4
ALPHA = 0.05
BOOTSTRAP = 2000
#: Outcome name -> field of the ``night`` point.
OUTCOMES = {
    "episodes": "episodes",
    "contractions": "contraction_count",
    "leg_movements": "leg_movement_count",
    "twitches": "twitch_count",
    "plm_index": "plm_index",
}
DISCLAIMER = (
    "legwatch is a self-tracking tool, not a diagnosis and not medical advice. Going together is not "
    "cause and effect; talk to a doctor before changing a medication."
)


class CorrelateError(ValueError):
    """Bad input to the correlation (one-line message)."""


def _habit_keys(habit: str, fields: Mapping) -> list[str]:
    if habit == "medication" and fields.get("name"):
        return [f"medication:{fields['name']}"]
    if habit == "exercise" and fields.get("intensity") == "hard":
        return ["exercise", "exercise:hard"]
    return [habit]


def _noon(day: str | None, flag: str, days_after: int = 0) -> float | None:
    """Local noon of ``day`` (YYYY-MM-DD) plus ``days_after`` days, as Unix seconds; None for None."""
    if not day:
        return None
    try:
        d = datetime.strptime(day, "%Y-%m-%d") + timedelta(days=days_after)
    except ValueError:
        raise CorrelateError(f"{flag} must be a date like 2026-01-05, got {day!r}") from None
    return localtime.localize(d.replace(hour=12)).timestamp()


def table(
    store: Store, subject: str, since: str | None = None, outcome: str = "episodes", until: str | None = None
) -> dict:
    """Per-night rows ``{night, sleep_start, outcome, episodes, contractions, habits{key: amount}}``,
    the habit keys seen, and the nights left out (with why); nights from the evening of ``since``
    to that of ``until`` (YYYY-MM-DD, both included; None: no limit)."""
    if outcome not in OUTCOMES:
        raise CorrelateError(f"--outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    start = _noon(since, "--since")
    end = _noon(until, "--until", 1)
    nights = store.query("night", start=start, end=end, tags={"subject": subject})
    skipped = []
    by_date: dict[str, list] = {}
    for n in nights:
        reason = data_check(n.fields)
        if reason is not None:
            skipped.append({"night": night_date(n.time), "sensor": n.tags.get("sensor", ""), "reason": reason})
        else:
            by_date.setdefault(night_date(n.time), []).append(n)
    habits = store.query(
        "habit",
        start=None if start is None else start - 86400,
        end=None if end is None else end + 86400,
        tags={"subject": subject},
    )
    times = np.array([h.time for h in habits])
    rows = []
    names: set[str] = set()
    units: dict[str, str] = {}
    for h in habits:
        for key in _habit_keys(h.tags.get("habit", "?"), h.fields):
            units.setdefault(key, str(h.fields.get("unit", "")))
    field = OUTCOMES[outcome]
    for date, pts in sorted(by_date.items()):
        onset = min(float(p.fields["sleep_start"]) for p in pts)
        w0, w1 = evening_window(onset)
        amounts: dict[str, float] = {}
        for i in np.flatnonzero((times >= w0) & (times < w1)):
            h = habits[int(i)]
            for key in _habit_keys(h.tags.get("habit", "?"), h.fields):
                amounts[key] = amounts.get(key, 0.0) + float(h.fields.get("value", 1.0))
        names.update(amounts)
        values = [float(p.fields.get(field, 0.0)) for p in pts if p.fields.get(field) is not None]
        y = (max(values) if outcome == "plm_index" else sum(values)) if values else math.nan
        rows.append(
            {
                "night": date,
                "sleep_start": onset,
                "outcome": y,
                "episodes": sum(float(p.fields.get("episodes", 0.0)) for p in pts),
                "contractions": sum(float(p.fields.get("contraction_count", 0.0)) for p in pts),
                "habits": amounts,
            }
        )
    rows = [r for r in rows if math.isfinite(r["outcome"])]
    return {
        "rows": rows,
        "habits": sorted(names),
        "units": {k: units.get(k, "") for k in sorted(names)},
        "skipped": skipped,
    }


def bh(p: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
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


def _spearman_ci(rho: float, n: int) -> tuple[float, float]:
    """95 % CI of Spearman's rho: Fisher z with the Bonett-Wright standard error."""
    if n <= 3 or not math.isfinite(rho):
        return -1.0, 1.0
    r = min(max(rho, -0.999999), 0.999999)
    se = math.sqrt((1 + r * r / 2) / (n - 3))
    z = math.atanh(r)
    return math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)


def _mean_diff_ci(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float]:
    """95 % percentile-bootstrap CI of mean(a) - mean(b)."""
    rng = np.random.default_rng(seed)
    da = a[rng.integers(0, len(a), (BOOTSTRAP, len(a)))].mean(axis=1)
    db = b[rng.integers(0, len(b), (BOOTSTRAP, len(b)))].mean(axis=1)
    lo, hi = np.percentile(da - db, [2.5, 97.5])
    return float(lo), float(hi)


def _label(key: str) -> str:
    if key.startswith("medication:"):
        return key.split(":", 1)[1] + " (medication)"
    if key == "exercise:hard":
        return "hard exercise"
    return key.replace("_", " ")


def _test(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> dict:
    logged = x > 0
    n_with, n_without = int(logged.sum()), int((~logged).sum())
    distinct = len(np.unique(x[logged]))
    res: dict = {
        "habit": name,
        "label": _label(name),
        "nights_with": n_with,
        "nights_without": n_without,
        "test": None,
        "finding": "not_enough_data",
    }
    n = len(y)
    if n < MIN_NIGHTS:
        res["verdict"] = f"not enough nights to say ({n} of the {MIN_NIGHTS} needed)"
        return res
    if n_with < MIN_PER_GROUP:
        res["verdict"] = f"not enough nights with it to say ({n_with}; {MIN_PER_GROUP} needed)"
        return res
    amount = distinct >= 3
    if not amount and n_without < MIN_PER_GROUP:
        res["verdict"] = f"logged on almost every night ({n_without} without; {MIN_PER_GROUP} needed to compare)"
        return res
    if np.ptp(y) == 0:
        res.update(finding="no_variation", verdict="every night had the same outcome: nothing to compare")
        return res
    a, b = y[logged], y[~logged]
    res["mean_with"] = round(float(a.mean()), 2)
    res["mean_without"] = round(float(b.mean()), 2) if len(b) else None
    if amount:
        rho, p = stats.spearmanr(x, y)
        lo, hi = _spearman_ci(float(rho), n)
        res.update(test="spearman", effect_name="rank correlation (rho)", effect=float(rho), ci=[lo, hi], p=float(p))
    else:
        u = stats.mannwhitneyu(a, b, alternative="two-sided")
        lo, hi = _mean_diff_ci(a, b, seed)
        res.update(
            test="mann-whitney",
            effect_name="difference in mean per night (with - without)",
            effect=float(a.mean() - b.mean()),
            ci=[lo, hi],
            p=float(u.pvalue),
            rank_biserial=float(2 * u.statistic / (len(a) * len(b)) - 1),
        )
    return res


def _effect_text(r: Mapping, outcome: str) -> str:
    lo, hi = r["ci"]
    if r["test"] == "spearman":
        return f"rank correlation {r['effect']:+.2f} (95% CI {lo:+.2f} to {hi:+.2f})"
    return (
        f"{r['mean_with']:.1f} vs {r['mean_without']:.1f} {outcome} per night "
        f"(difference {r['effect']:+.1f}, 95% CI {lo:+.1f} to {hi:+.1f})"
    )


def build(
    store: Store,
    subject: str,
    since: str | None = None,
    seed: int = 0,
    outcome: str = "episodes",
    until: str | None = None,
) -> dict:
    """The correlation report (a plain dict: the ``--format json`` output); ``until``: see ``table``."""
    t = table(store, subject, since, outcome, until)
    rows = t["rows"]
    y = np.array([r["outcome"] for r in rows], dtype=float)
    results = []
    for i, name in enumerate(t["habits"]):
        x = np.array([r["habits"].get(name, 0.0) for r in rows])
        results.append(_test(name, x, y, seed + i))
    tested = [r for r in results if r["test"]]
    for r, q in zip(tested, bh([r["p"] for r in tested]), strict=True):
        r["q"] = float(q)
        lo, hi = r["ci"]
        up = r["effect"] > 0
        direction = "more" if up else "fewer"
        what = f"nights after {r['label']}" if r["test"] == "mann-whitney" else f"more {r['label']}"
        if q < ALPHA:
            r["finding"] = direction
            r["verdict"] = f"{what}: {direction} {outcome}, likely a real link in your data (q{_qfmt(q)})"
        elif r["p"] < ALPHA:
            r["finding"] = f"hint_{direction}"
            r["verdict"] = (
                f"{what}: a hint of {direction} {outcome}, not significant once {len(tested)} habits are tested "
                f"together (q={q:.2f})"
            )
        else:
            r["finding"] = "no_clear_link"
            span = f"{lo:+.2f} to {hi:+.2f}" if r["test"] == "spearman" else f"{lo:+.1f} to {hi:+.1f}"
            r["verdict"] = f"{what}: no clear link in {len(rows)} nights (the effect could be anywhere from {span})"
        r["effect_text"] = _effect_text(r, outcome)
    order = {"more": 0, "fewer": 0, "hint_more": 1, "hint_fewer": 1, "no_clear_link": 2}
    results.sort(key=lambda r: (order.get(r["finding"], 3), r.get("q", 1.0), r["habit"]))
    return {
        "subject": subject,
        "outcome": outcome,
        "nights": len(rows),
        "min_nights": MIN_NIGHTS,
        "enough_nights": len(rows) >= MIN_NIGHTS,
        "since": since,
        "rows": rows,
        "units": t["units"],
        "timezone": localtime.name() or localtime.label(),
        "skipped": t["skipped"],
        "habits": results,
        "method": "Habits from the noon before sleep onset to sleep onset belong to that night. Yes/no habits: "
        "Mann-Whitney U, difference in means with a bootstrap 95% CI. Amounts: Spearman rank correlation, Fisher-z "
        f"95% CI. Benjamini-Hochberg q-values across habits; a link is called likely at q < {ALPHA}.",
        "disclaimer": DISCLAIMER,
    }


def notable(report: Mapping) -> list[dict]:
    """Habits worth a plot: a likely link or a hint."""
    return [r for r in report["habits"] if r["finding"] in ("more", "fewer", "hint_more", "hint_fewer")]


def _pfmt(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _qfmt(q: float) -> str:
    """``=0.012`` or ``<0.001`` (never ``=0.000``)."""
    return "<0.001" if q < 0.001 else f"={q:.3f}"


UNIT_WORDS = {"l": "l", "mg": "mg", "min": "min", "h": "h", "dose": "doses", "drinks": "drinks"}


def _header(name: str, unit: str) -> str:
    label = _label(name)
    return f"{label}\n({UNIT_WORDS.get(unit, unit)})" if unit else label


def _chunks(widths: Sequence[int], room: int) -> list[list[int]]:
    """Split column indices into groups whose widths (each + 2 of padding) fit in ``room``."""
    groups: list[list[int]] = [[]]
    used = 0
    for i, w in enumerate(widths):
        if groups[-1] and used + w + 2 > room:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += w + 2
    return [g for g in groups if g]


def _night_tables(report: Mapping, width: int) -> list:
    """The per-night table, split into several (each repeating the night and outcome) so that every
    date and habit name shows in full within ``width`` columns."""
    from rich import box
    from rich.table import Table

    names = sorted({k for r in report["rows"] for k in r["habits"]})
    units = report.get("units", {})
    headers = [_header(n, units.get(n, "")) for n in names]
    cells = [[f"{r['habits'][n]:g}" if n in r["habits"] else "·" for n in names] for r in report["rows"]]
    widths = [
        max([*(len(word) for word in h.replace("\n", " ").split()), *(len(row[i]) for row in cells)])
        for i, h in enumerate(headers)
    ]
    outcome = report["outcome"].replace("_", " ")
    fixed = 10 + 2 + max(len(outcome), 4) + 2 + 2
    groups = _chunks(widths, max(width - fixed, 12)) if names else [[]]
    tables = []
    for g, idx in enumerate(groups, start=1):
        title = "Nights and the habits of the evening before"
        if len(groups) > 1:
            title += f" ({g} of {len(groups)})"
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
        t.add_column("night", no_wrap=True, min_width=10)
        t.add_column(outcome, justify="right", no_wrap=True)
        for i in idx:
            t.add_column(headers[i], justify="right", min_width=widths[i], max_width=max(widths[i], 14))
        for r, row in zip(report["rows"], cells, strict=True):
            t.add_row(r["night"], f"{r['outcome']:g}", *(row[i] for i in idx))
        tables.append(t)
    return tables


def render_text(report: dict, console) -> None:
    """The report for the terminal (rich) within the console's width (80 columns fit): the per-night
    table (split when there are many habits), then one row per habit."""
    from rich import box
    from rich.table import Table

    console.print(
        f"[bold]legwatch correlate[/bold] — {report['subject']}: {report['nights']} night(s) with enough data, "
        f"outcome: {report['outcome']}"
    )
    if report["skipped"]:
        console.print(f"Left out {len(report['skipped'])} night(s) with too little data.")
    if not report["enough_nights"]:
        console.print(
            f"[yellow]Only {report['nights']} night(s): at least {report['min_nights']} are needed before any habit "
            "can be judged. Keep wearing the sensor and logging.[/yellow]"
        )
    if report["rows"]:
        for nt in _night_tables(report, console.width):
            console.print(nt)
        zone = report.get("timezone") or localtime.label()
        console.print(
            f"[dim]A night is the date of its evening ({zone}); habits count from the noon before sleep onset.[/dim]"
        )
    t = Table(title="Habits and your nights", title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True)
    t.add_column("habit", overflow="fold", min_width=8)
    t.add_column("nights\nwith/without", justify="right", no_wrap=True)
    t.add_column("effect [95% CI]", no_wrap=True)
    t.add_column("p", justify="right", no_wrap=True)
    t.add_column("q", justify="right", no_wrap=True)
    for r in report["habits"]:
        nights = f"{r['nights_with']}/{r['nights_without']}"
        if r["test"]:
            lo, hi = r["ci"]
            if r["test"] == "spearman":
                eff = f"rho {r['effect']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            else:
                eff = f"Δ {r['effect']:+.1f} [{lo:+.1f}, {hi:+.1f}]"
            t.add_row(r["label"], nights, eff, _pfmt(r["p"]), _pfmt(r["q"]))
        else:
            t.add_row(r["label"], nights, "—", "—", "—")
    console.print(t)
    styles = {"more": "bold red", "fewer": "bold green"}
    for r in report["habits"]:
        style = styles.get(r["finding"], "")
        verdict = f"[{style}]{r['verdict']}[/{style}]" if style else r["verdict"]
        console.print(f"• {verdict}" if r["test"] else f"• [bold]{r['label']}[/bold]: {verdict}")
        if r.get("effect_text"):
            console.print(f"  [dim]{r['effect_text']}[/dim]")
    console.print(f"[dim]{report['method']}[/dim]")
    console.print(f"[dim]{report['disclaimer']}[/dim]")
