"""What an N-of-1 experiment found: a randomization test over the schedule actually used.

Which nights count: the planned nights that are over and have enough data (the rule of the
summary and ``legwatch correlate``, whose per-night table this reuses: nights of one date are added
up, the habits of the evening, noon to sleep onset, belong to that night). Nights without a
recording, with too little data, or still to come are left out and counted.

The analysis is by assignment (what the schedule said, "intention to treat"), which is what the
randomization makes fair; adherence (the habit logged on the evenings it was planned, and not on
the others, from the ordinary habit log) is reported beside it, and too low an adherence stops a
conclusion.

- Effect: mean outcome per night with the intervention minus without (the outcome chosen at
  planning, all episodes by default; cramps are always reported too).
- p-value: two-sided randomization test. The schedule is drawn again under the same blocked design
  (``legwatch.experiment.draw_designs``: every possible schedule when there are at most
  ``EXACT_MAX``, else ``DRAWS`` random ones) and the effect computed for each on the same nights;
  p is the share at least as far from zero as the one observed.
- 95 % confidence interval: the shifts d for which the test, applied to the outcome with d taken
  off the intervention nights, does not reject at 5 % (inverting the randomization test).
- Verdict: ``helps`` (p < 0.05, fewer), ``hurts`` (p < 0.05, more), ``no_clear_effect``, or
  ``not_enough_data`` with the reasons (fewer than ``MIN_NIGHTS`` analysable nights or
  ``MIN_PER_ARM`` per arm, adherence under ``MIN_ADHERENCE``, or a design too small for any result
  to reach p < 0.05).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np

from legwatch.contracts import localtime
from legwatch.correlate import table
from legwatch.experiment import MIN_NIGHTS, Plan, all_designs, design_count, draw_designs, tonight

MIN_PER_ARM = 5
MIN_ADHERENCE = 0.75
ALPHA = 0.05
EXACT_MAX = 20000
DRAWS = 20000
DISCLAIMER = (
    "legwatch is a self-tracking tool, not a diagnosis and not medical advice. One person's experiment "
    "says what went with fewer episodes for this person over these nights; talk to a doctor about cramps "
    "that worry you."
)
VERDICT_TEXT = {
    "helps": "{habit} helps: fewer {outcome} on the nights with it, more than chance explains ({p}).",
    "hurts": "{habit} hurts: more {outcome} on the nights with it, more than chance explains ({p}).",
    "no_clear_effect": "no clear effect of {habit} on {outcome}: the difference is within what chance gives ({p}).",
    "not_enough_data": "not enough data to conclude about {habit}: {why}.",
}


def _designs(plan: Plan, seed: int) -> tuple[np.ndarray, bool]:
    n = len(plan.schedule)
    if design_count(n, plan.block) <= EXACT_MAX:
        return all_designs(n, plan.block), True
    return draw_designs(n, plan.block, np.random.default_rng(seed), DRAWS), False


def randomization_test(y: np.ndarray, idx: np.ndarray, plan: Plan, *, seed: int = 0) -> dict | None:
    """Effect, p-value and 95 % CI of the outcomes ``y`` of the planned nights ``idx`` (None when one
    arm is empty)."""
    z_obs = np.array(plan.schedule, dtype=bool)[idx]
    n1, n0 = int(z_obs.sum()), int((~z_obs).sum())
    if n1 == 0 or n0 == 0:
        return None
    designs, exact = _designs(plan, seed)
    z = designs[:, idx]
    k1 = z.sum(axis=1)
    k0 = len(idx) - k1
    ok = (k1 > 0) & (k0 > 0)
    z, k1, k0 = z[ok], k1[ok], k0[ok]
    a = z / k1[:, None] - (~z) / k0[:, None]  # effect of design k on outcomes: a[k] @ y
    ay = a @ y
    az = a @ z_obs.astype(float)
    obs = float(y[z_obs].mean() - y[~z_obs].mean())
    tol = 1e-9 * max(1.0, float(np.abs(y).max(initial=0.0)))

    def p_at(d: np.ndarray) -> np.ndarray:
        """p-values of the hypotheses "the intervention shifts the outcome by d" (a vector of d)."""
        stat = np.abs(ay[None, :] - d[:, None] * az[None, :])
        hits = (stat >= np.abs(obs - d)[:, None] - tol).sum(axis=1)
        return hits / len(ay) if exact else (hits + 1) / (len(ay) + 1)

    p = float(p_at(np.array([0.0]))[0])
    spread = float(np.ptp(y)) or 1.0
    grid = np.linspace(obs - 3 * spread, obs + 3 * spread, 601)
    accepted = grid[p_at(grid) > ALPHA]
    if len(accepted):
        step = grid[1] - grid[0]
        lo = _edge(p_at, float(accepted.min()) - step, float(accepted.min()))
        hi = _edge(p_at, float(accepted.max()) + step, float(accepted.max()))
    else:  # pragma: no cover - the observed shift is always accepted
        lo = hi = obs
    return {
        "effect": obs,
        "ci": [lo, hi],
        "p_value": p,
        "mean_with": float(y[z_obs].mean()),
        "mean_without": float(y[~z_obs].mean()),
        "nights_with": n1,
        "nights_without": n0,
        "designs": int(len(ay)),
        "exact": exact,
    }


def _edge(p_at, rejected: float, accepted: float) -> float:
    """Bisect between a rejected and an accepted shift for the edge of the confidence interval."""
    for _ in range(30):
        mid = (rejected + accepted) / 2
        if p_at(np.array([mid]))[0] > ALPHA:
            accepted = mid
        else:
            rejected = mid
    return accepted


def _pfmt(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def p_text(p: float | None) -> str:
    """``p < 0.001`` or ``p = 0.034``."""
    if p is None:
        return "p unknown"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def analyse(store, plan: Plan, *, now: datetime | None = None, seed: int = 0) -> dict:
    """The result of ``plan`` from what the store holds (a plain dict: the ``--format json`` output)."""
    t = table(store, plan.subject, since=plan.start, until=plan.last)
    rows = {r["night"]: r for r in t["rows"]}
    skipped: dict[str, str] = {}
    for s in t["skipped"]:
        skipped.setdefault(s["night"], s["reason"])
    night_now = tonight(now)
    nights = []
    idx, y_primary, y_cramps, done = [], [], [], []
    stop_night = tonight(localtime.local(plan.stopped)) if plan.stopped is not None else None
    for i, (night, on) in enumerate(zip(plan.nights, plan.schedule, strict=True)):
        entry: dict = {"night": night, "intervention": on, "status": "analysed", "done": None}
        if night >= night_now or (stop_night is not None and night > stop_night):
            entry["status"] = "to_come" if plan.stopped is None else "after_stop"
        elif night in rows:
            r = rows[night]
            did = float(r["habits"].get(plan.habit, 0.0)) > 0
            entry.update(done=did, episodes=r["episodes"], contractions=r["contractions"])
            idx.append(i)
            y_primary.append(r["episodes"] if plan.outcome == "episodes" else r["contractions"])
            y_cramps.append(r["contractions"])
            done.append(did)
        elif night in skipped:
            entry.update(status="too_little_data", reason=skipped[night])
        else:
            entry.update(status="no_recording", reason="no night stored")
        nights.append(entry)
    n = len(idx)
    idx_a = np.array(idx, dtype=int)
    planned_on = np.array(plan.schedule, dtype=bool)[idx_a] if n else np.zeros(0, dtype=bool)
    done_a = np.array(done, dtype=bool)
    adherence = float((done_a == planned_on).mean()) if n else None
    counts = {s: sum(1 for e in nights if e["status"] == s) for s in ("to_come", "too_little_data", "no_recording")}
    primary = randomization_test(np.array(y_primary, float), idx_a, plan, seed=seed) if n else None
    cramps = randomization_test(np.array(y_cramps, float), idx_a, plan, seed=seed + 1) if n else None
    n_with = int(planned_on.sum())
    reasons = []
    if n < MIN_NIGHTS:
        reasons.append(f"only {n} night(s) with enough data; at least {MIN_NIGHTS} are needed")
    if n and (n_with < MIN_PER_ARM or n - n_with < MIN_PER_ARM):
        reasons.append(
            f"{n_with} night(s) with and {n - n_with} without {plan.habit}; at least {MIN_PER_ARM} of each are needed"
        )
    if adherence is not None and adherence < MIN_ADHERENCE:
        reasons.append(
            f"the schedule was followed on {adherence * 100:.0f}% of the nights (at least "
            f"{MIN_ADHERENCE * 100:.0f}% needed; log {plan.habit} on the evenings you do it)"
        )
    if primary is not None and not reasons:
        smallest = 2.0 / design_count(len(plan.schedule), plan.block)
        if smallest > ALPHA:
            reasons.append("the schedule is too short for any result to be clear (plan more nights)")
    if reasons or primary is None:
        verdict = "not_enough_data"
    elif primary["p_value"] < ALPHA:
        verdict = "helps" if primary["effect"] < 0 else "hurts"
    else:
        verdict = "no_clear_effect"
    habit_label = plan.habit.replace("_", " ")
    outcome_label = "episodes" if plan.outcome == "episodes" else "cramps"
    verdict_text = VERDICT_TEXT[verdict].format(
        habit=habit_label.capitalize() if verdict in ("helps", "hurts") else habit_label,
        outcome=outcome_label,
        p=p_text(primary["p_value"] if primary else None),
        why="; ".join(reasons),
    )
    state = plan.state(now)
    out = {
        "experiment": plan.id,
        "subject": plan.subject,
        "habit": plan.habit,
        "outcome": plan.outcome,
        "start": plan.start,
        "end": plan.last,
        "state": state,
        "provisional": state in ("running", "scheduled"),
        "seed": plan.seed,
        "block": plan.block,
        "nights_planned": len(plan.schedule),
        "nights_analysed": n,
        "nights_to_come": counts["to_come"],
        "nights_too_little_data": counts["too_little_data"],
        "nights_without_recording": counts["no_recording"],
        "left_out": [
            {"night": e["night"], "reason": e["reason"]}
            for e in nights
            if e["status"] in ("too_little_data", "no_recording")
        ],
        "adherence": None if adherence is None else round(adherence, 4),
        "adherence_detail": {
            "intervention_nights": n_with,
            "intervention_done": int((done_a & planned_on).sum()),
            "control_nights": n - n_with,
            "control_kept": int((~done_a & ~planned_on).sum()),
        },
        "effect": None if primary is None else round(primary["effect"], 4),
        "ci": None if primary is None else [round(v, 4) for v in primary["ci"]],
        "p_value": None if primary is None else round(primary["p_value"], 6),
        "mean_with": None if primary is None else round(primary["mean_with"], 3),
        "mean_without": None if primary is None else round(primary["mean_without"], 3),
        "relative_effect": None
        if primary is None or not primary["mean_without"]
        else round(primary["effect"] / primary["mean_without"], 4),
        "cramps": None
        if cramps is None
        else {
            "effect": round(cramps["effect"], 4),
            "ci": [round(v, 4) for v in cramps["ci"]],
            "p_value": round(cramps["p_value"], 6),
            "mean_with": round(cramps["mean_with"], 3),
            "mean_without": round(cramps["mean_without"], 3),
        },
        "test": None if primary is None else {"designs": primary["designs"], "exact": primary["exact"], "alpha": ALPHA},
        "verdict": verdict,
        "verdict_text": verdict_text,
        "reasons": reasons,
        "nights": nights,
        "method": (
            f"Randomized N-of-1 trial: nights with and without {habit_label} in a balanced random order, blocks "
            f"of {plan.block}. Analysed by the schedule; effect = mean {plan.outcome} per night with minus without. "
            "Two-sided randomization test re-drawing the schedule under the same blocked design; 95% CI by "
            "inverting that test."
        ),
        "disclaimer": DISCLAIMER,
    }
    return out


def standing(store, plan: Plan, *, now: datetime | None = None) -> dict:
    """How a running experiment stands, in a few numbers and one line (for the summary and report)."""
    r = analyse(store, plan, now=now)
    done = r["nights_planned"] - r["nights_to_come"]
    adh = "" if r["adherence"] is None else f", schedule followed on {r['adherence'] * 100:.0f}% of them"
    line = (
        f"experiment on {plan.habit} ({plan.start} to {plan.last}, {r['state']}): {done} of "
        f"{r['nights_planned']} nights over, {r['nights_analysed']} with enough data{adh}"
    )
    if r["state"] in ("finished", "stopped"):
        line += f"; result: {r['verdict'].replace('_', ' ')}"
    return {
        "experiment": plan.id,
        "habit": plan.habit,
        "state": r["state"],
        "nights_planned": r["nights_planned"],
        "nights_over": done,
        "nights_analysed": r["nights_analysed"],
        "adherence": r["adherence"],
        "verdict": r["verdict"] if r["state"] in ("finished", "stopped") else None,
        "line": line,
    }


def annotate(store, s: dict, *, now: datetime | None = None) -> dict:
    """Add to a morning summary ``s`` how the experiment covering its night stands (``standing``), if any."""
    import logging

    from legwatch.experiment import plans
    from legwatch.storage import StoreUnavailable

    night = s.get("night_of")
    try:
        for plan in reversed(plans(store, s["subject"])):
            if plan.active(now) or (night and plan.start <= night <= plan.last):
                s["experiment"] = standing(store, plan, now=now)
                break
    except StoreUnavailable:
        raise  # the monitor tries the summary again when the store is back
    except Exception:  # the summary goes out without the experiment rather than not at all
        logging.getLogger("legwatch").exception("could not tell how the experiment stands")
    return s


# --- renderings ----------------------------------------------------------------------------------


def _num(v: float | None, fmt: str = "{:+.1f}") -> str:
    return "—" if v is None else fmt.format(v)


def text_lines(r: Mapping) -> list[str]:
    """The result as plain lines of at most 80 characters."""
    import textwrap

    def wrap(text: str, indent: str = "") -> list[str]:
        return textwrap.wrap(text, 80, initial_indent=indent, subsequent_indent=indent or "  ")

    out = [f"legwatch experiment: {r['habit']} ({r['start']} to {r['end']}, {r['state']})"]
    out += wrap(f"Verdict: {r['verdict_text']}")
    if r["provisional"]:
        out += wrap(f"Provisional: {r['nights_to_come']} planned night(s) are still to come.")
    out.append(
        f"Nights: {r['nights_planned']} planned, {r['nights_analysed']} analysed, "
        f"{r['nights_too_little_data']} too little data, {r['nights_without_recording']} not recorded, "
        f"{r['nights_to_come']} to come"
    )
    if r["adherence"] is not None:
        a = r["adherence_detail"]
        out += wrap(
            f"Adherence: {r['adherence'] * 100:.0f}% ({a['intervention_done']} of {a['intervention_nights']} "
            f"{r['habit']} nights done, {a['control_kept']} of {a['control_nights']} nights without kept free)"
        )
    if r["effect"] is not None:
        lo, hi = r["ci"]
        out.append(f"{r['outcome'].capitalize()} per night: {r['mean_with']:.1f} with, {r['mean_without']:.1f} without")
        out.append(f"  effect {r['effect']:+.1f} (95% CI {lo:+.1f} to {hi:+.1f}), {p_text(r['p_value'])}")
        if r["relative_effect"] is not None:
            out.append(f"  ({r['relative_effect'] * 100:+.0f}% against the nights without)")
    c = r["cramps"]
    if c is not None and r["outcome"] != "contractions" and not (c["mean_with"] or c["mean_without"]):
        out.append("Cramps: none on any analysed night.")
    elif c is not None and r["outcome"] != "contractions":
        lo, hi = c["ci"]
        out.append(f"Cramps per night: {c['mean_with']:.2f} with, {c['mean_without']:.2f} without")
        out.append(f"  effect {c['effect']:+.2f} (95% CI {lo:+.2f} to {hi:+.2f}), {p_text(c['p_value'])}")
    for e in r["left_out"][:10]:
        out += wrap(f"left out {e['night']}: {e['reason']}", "  ")
    if len(r["left_out"]) > 10:
        out.append(f"  … and {len(r['left_out']) - 10} more")
    out += wrap(r["method"])
    out += wrap(r["disclaimer"])
    return out


def plot_svg(r: Mapping) -> str:
    """Outcome per night, with (filled) and without (open) the intervention; readable in black and white."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [e for e in r["nights"] if e["status"] == "analysed"]
    key = "episodes" if r["outcome"] == "episodes" else "contractions"
    fig, ax = plt.subplots(figsize=(7.5, 3.0), layout="constrained")
    for on, marker, face, label in ((True, "o", "black", f"with {r['habit']}"), (False, "o", "white", "without")):
        xs = [i for i, e in enumerate(rows) if e["intervention"] is on]
        ys = [rows[i][key] for i in xs]
        ax.scatter(xs, ys, marker=marker, facecolor=face, edgecolor="black", s=36, label=label, zorder=3)
        if ys:
            ax.axhline(float(np.mean(ys)), color="black", ls="-" if on else "--", lw=1, label="mean " + label)
    ax.set_xticks(range(len(rows)), [e["night"][5:] for e in rows], rotation=90, fontsize=7)
    ax.set_ylabel(f"{key} per night")
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    ax.grid(axis="y", color="#ccc", lw=0.5)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def render_html(r: Mapping) -> str:
    """The result as one self-contained HTML page."""
    from html import escape

    css = (
        "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#111;"
        "line-height:1.45}h1{font-size:1.4rem}.verdict{font-size:1.15rem;font-weight:600;border:2px solid #111;"
        "padding:.6rem .9rem;border-radius:6px}table{border-collapse:collapse}td,th{padding:.2rem .6rem;"
        "border-bottom:1px solid #ccc;text-align:left}td.n{text-align:right}.note{color:#444;font-size:.9rem}"
        "svg{max-width:100%;height:auto}"
    )
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td class=n>{escape(value)}</td></tr>"
        for label, value in (
            ("nights planned", str(r["nights_planned"])),
            ("nights analysed", str(r["nights_analysed"])),
            ("left out: too little data", str(r["nights_too_little_data"])),
            ("left out: not recorded", str(r["nights_without_recording"])),
            ("still to come", str(r["nights_to_come"])),
            ("adherence", "—" if r["adherence"] is None else f"{r['adherence'] * 100:.0f}%"),
            (
                f"mean {r['outcome']} with / without",
                f"{_num(r['mean_with'], '{:.1f}')} / {_num(r['mean_without'], '{:.1f}')}",
            ),
            ("effect (with − without)", _num(r["effect"])),
            ("95% confidence interval", "—" if r["ci"] is None else f"{r['ci'][0]:+.1f} to {r['ci'][1]:+.1f}"),
            ("p-value (randomization test)", _pfmt(r["p_value"])),
        )
    )
    c = r["cramps"]
    cramp = (
        ""
        if c is None
        else f"<p>Cramps per night: {c['mean_with']:.2f} with, {c['mean_without']:.2f} without; effect "
        f"{c['effect']:+.2f} (95% CI {c['ci'][0]:+.2f} to {c['ci'][1]:+.2f}), {p_text(c['p_value'])}.</p>"
    )
    plot = plot_svg(r) if r["nights_analysed"] else ""
    left = "".join(f"<li>{escape(e['night'])}: {escape(e['reason'])}</li>" for e in r["left_out"])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>legwatch experiment — {escape(r['habit'])}</title><style>{css}</style></head><body>"
        f"<h1>Experiment: {escape(r['habit'])} ({escape(r['start'])} to {escape(r['end'])})</h1>"
        f'<p class="verdict">{escape(r["verdict_text"])}</p>'
        + (f"<p>Provisional: {r['nights_to_come']} planned night(s) still to come.</p>" if r["provisional"] else "")
        + f"<table>{rows}</table>{cramp}{plot}"
        + (f"<h2>Nights left out</h2><ul>{left}</ul>" if left else "")
        + f'<p class="note">{escape(r["method"])}</p><p class="note">{escape(r["disclaimer"])}</p></body></html>'
    )
