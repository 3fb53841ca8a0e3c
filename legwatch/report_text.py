"""The report's words: key numbers, points for the doctor and table cells, shared by the PDF and
the HTML page so that both say the same thing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date


def fmt(v: float | None, spec: str = "{:g}") -> str:
    return "—" if v is None else spec.format(v)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def overview_lines(report: Mapping) -> list[str]:
    o = report["overview"]
    cov = "—" if o["coverage_mean"] is None else f"{o['coverage_mean'] * 100:.0f}%"
    lines = [
        f"Period: {o['days']} nights. Recorded: {o['nights_recorded']} nights ({o['hours_recorded']:g} h), "
        f"{o['nights_with_enough_data']} with enough data to count; {o['nights_without_recording']} not recorded. "
        f"Mean data coverage of the recordings: {cov}.",
    ]
    if o["nights_with_enough_data"]:
        lines.append(
            f"Sleep (as found from the leg's movement): {fmt(o['sleep_h_mean'], '{:.1f}')} h a night on average."
        )
        longest = (
            f"; the longest lasted {duration(o['cramp_longest_s'])} (night of {o['cramp_longest_night']})"
            if o["cramp_longest_s"]
            else ""
        )
        lines.append(
            f"Cramps: {o['cramps_total']} in all, on {o['nights_with_cramps']} of {o['nights_with_enough_data']} "
            f"nights ({fmt(o['cramps_per_night'], '{:.1f}')} a night){longest}."
        )
        lines.append(
            f"Leg movements: {fmt(o['leg_movements_per_night'], '{:.0f}')} a night. Periodic-movement index: median "
            f"{fmt(o['plm_index_median'], '{:.1f}')}/h; above the clinical {o['plm_clinical']:.0f}/h on "
            f"{o['nights_plm_above']} night(s)."
        )
    return lines


def doctor_points(report: Mapping) -> list[str]:
    """The few things worth a doctor's attention, in plain words."""
    o = report["overview"]
    out = []
    n = o["nights_with_enough_data"]
    if n:
        weeks = max(n / 7, 1.0)
        out.append(
            f"About {o['cramps_total'] / weeks:.1f} cramps a week ({o['cramps_total']} over {n} measured nights); "
            f"cramp nights: {o['nights_with_cramps']}."
        )
        cramp_hours = report["timing"]["hours_since_sleep_onset"]["contraction"]
        if sum(cramp_hours):
            peak = max(range(len(cramp_hours)), key=lambda h: cramp_hours[h])
            out.append(f"Cramps came most often {peak}–{peak + 1} h after falling asleep.")
        if o["nights_plm_above"]:
            out.append(
                f"Periodic leg movements above {o['plm_clinical']:.0f}/h on {o['nights_plm_above']} of {n} nights "
                "(a sleep study is what confirms periodic limb movement disorder)."
            )
        else:
            out.append(f"Periodic-movement index at or below {o['plm_clinical']:.0f}/h on every measured night.")
    else:
        out.append("No night had enough data to count episodes.")
    linked = [m for m in report["medications"] if m["linked_to_cramps"]]
    for m in linked:
        out.append(f"Takes {m['name']} (logged on {m['days_logged']} day(s)): {m['why']}.")
    others = [m["name"] for m in report["medications"] if not m["linked_to_cramps"]]
    if others:
        out.append("Other medications logged: " + ", ".join(others) + ".")
    for f in report["correlation"]["findings"]:
        if f["finding"] in ("more", "fewer"):
            out.append(f"Observed: {f['verdict']}.")
    for x in report["experiments"]:
        out.append(f"Experiment on {x['habit']} ({x['state']}): {x['verdict_text']}")
    return out


NIGHT_COLUMNS = (
    ("night", 0.8, "l"),
    ("asleep", 0.85, "l"),
    ("h", 0.35, "r"),
    ("data", 0.45, "r"),
    ("cramps", 0.5, "r"),
    ("total", 0.6, "r"),
    ("longest", 0.6, "r"),
    ("cramp times", 1.3, "l"),
    ("LMs", 0.4, "r"),
    ("PLMI", 0.45, "r"),
    ("note", 0.75, "l"),
)


def night_cells(r: Mapping) -> list[str]:
    d = date.fromisoformat(r["night"])
    asleep = f"{r['sleep_start_hm']}–{r['sleep_end_hm']}" if r["sleep_start_hm"] else "not found"
    ok = r["status"] == "ok"
    times = " ".join(r["cramp_times"][:3]) + (" …" if len(r["cramp_times"]) > 3 else "")
    plm = "—" if r["plm_index"] is None else f"{r['plm_index']:.1f}" + ("*" if r["plm_above_clinical"] else "")
    note = "too little data" if not ok else ("gaps" if r["gaps"] else "")
    return [
        d.strftime("%a %m-%d"),
        asleep,
        fmt(r["sleep_h"], "{:.1f}"),
        f"{r['coverage'] * 100:.0f}%",
        fmt(r["cramps"], "{:d}"),
        duration(r["cramp_total_s"]) if ok and r["cramps"] else ("0" if ok else "—"),
        duration(r["cramp_longest_s"]) if ok and r["cramps"] else "",
        times,
        fmt(r["leg_movements"], "{:d}"),
        plm,
        note,
    ]
