"""Randomized N-of-1 experiments: the plan of one intervention, kept in the store.

A plan is a balanced randomized schedule of nights with and without one habit (stretching before
bed, a glass of water, heat on the calf, ...), drawn in blocks of ``BLOCK`` nights: each block has
as many nights with as without, in a random order, so the two kinds of night alternate fairly over
the period (a run of bad weeks cannot fall on one side only). An odd last block gets its extra night
by a coin toss. The analysis (``legwatch.experiment_result``) re-randomizes under exactly this
design (``draw_designs``).

A night is named by the date of its evening, as ``legwatch summary --night`` names it. ``tonight``:
the evening of today's date, or, before 04:00, the night that began the evening before.

Where plans are kept: the store (InfluxDB or the SQLite file), one ``experiment`` point per plan
(time = when it was planned; tag subject; fields id, habit, start, schedule as a string of 1/0 per
night, seed, block, outcome, stopped), so the monitor, which publishes tonight's assignment,
finds the plan wherever it runs. Several experiments are kept over time; one runs at a time.
Writing the same point again with ``stopped`` set ends one early (the store keeps the union of the
fields).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import numpy as np

from legwatch.contracts import localtime
from legwatch.habits import MEDICATION_ALIASES, NAME
from legwatch.storage import Point, Store

MEASUREMENT = "experiment"
BLOCK = 4
#: fewer analysable nights than this give no conclusion (``legwatch.experiment_result``)
MIN_NIGHTS = 12
MAX_NIGHTS = 366
#: before this hour, "tonight" is still the night that began the evening before
NIGHT_TURNS_H = 4
OUTCOMES = ("episodes", "contractions")


class ExperimentError(ValueError):
    """Bad input to an experiment command (one-line message)."""


def _day(text: str, what: str = "--start") -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        raise ExperimentError(f"{what} must be a date like 2026-01-05, got {text!r}") from None


def tonight(now: datetime | None = None) -> str:
    """The night (its evening's date) a person means by "tonight" at ``now`` (local time)."""
    d = localtime.in_zone(now)
    if d.hour < NIGHT_TURNS_H:
        d -= timedelta(days=1)
    return d.strftime("%Y-%m-%d")


def check_habit(habit: str) -> str:
    """The habit name as the habit log stores it; medications are refused (a doctor's decision)."""
    h = (habit or "").strip().lower().replace("-", "_")
    if not NAME.match(h):
        raise ExperimentError(f"habit name {habit!r} must be a word of letters, digits and _ (e.g. stretching)")
    if h == "medication" or h in MEDICATION_ALIASES:
        raise ExperimentError(
            "legwatch does not schedule medications on and off: talk to your doctor before changing one"
        )
    return h


# --- the design ----------------------------------------------------------------------------------


def _blocks(n: int, block: int) -> list[int]:
    return [min(block, n - i) for i in range(0, n, block)]


def _arrangements(size: int) -> list[tuple[bool, ...]]:
    """Every schedule one block of ``size`` nights can get, each equally likely: half with, half
    without (an odd block: one more of either, by a coin toss)."""
    ks = [size // 2] if size % 2 == 0 else [size // 2, size // 2 + 1]
    out = []
    for k in ks:
        for on in itertools.combinations(range(size), k):
            out.append(tuple(i in on for i in range(size)))
    return out


def design_count(n: int, block: int = BLOCK) -> int:
    """How many different schedules the design can draw for ``n`` nights."""
    total = 1
    for size in _blocks(n, block):
        total *= len(_arrangements(size))
    return total


def draw_schedule(n: int, seed: int, block: int = BLOCK) -> list[bool]:
    """A balanced randomized schedule of ``n`` nights (True: with the intervention)."""
    rng = np.random.default_rng(seed)
    out: list[bool] = []
    for size in _blocks(n, block):
        options = _arrangements(size)
        out += options[int(rng.integers(len(options)))]
    return out


def draw_designs(n: int, block: int, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` schedules drawn under the same design, as a (count, n) bool array."""
    cols = []
    for size in _blocks(n, block):
        options = np.array(_arrangements(size), dtype=bool)
        cols.append(options[rng.integers(len(options), size=count)])
    return np.concatenate(cols, axis=1) if cols else np.zeros((count, 0), dtype=bool)


def all_designs(n: int, block: int) -> np.ndarray:
    """Every schedule the design can draw (use only when ``design_count`` is small)."""
    per_block = [_arrangements(size) for size in _blocks(n, block)]
    rows = [sum(combo, ()) for combo in itertools.product(*per_block)]
    return np.array(rows, dtype=bool).reshape(len(rows), n)


# --- a plan ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    subject: str
    habit: str
    start: str  # the first night (its evening's date)
    schedule: tuple[bool, ...]
    seed: int
    block: int
    created: float
    outcome: str = "episodes"
    stopped: float | None = None

    @property
    def id(self) -> str:
        return f"{self.habit}-{self.start}"

    @property
    def nights(self) -> list[str]:
        d0 = _day(self.start)
        return [(d0 + timedelta(days=i)).isoformat() for i in range(len(self.schedule))]

    @property
    def last(self) -> str:
        return self.nights[-1]

    def assignment(self, night: str) -> bool | None:
        """Whether ``night`` is an intervention night; None outside the plan (or after a stop)."""
        try:
            i = self.nights.index(night)
        except ValueError:
            return None
        if self.stopped is not None and night > tonight(localtime.local(self.stopped)):
            return None
        return self.schedule[i]

    def state(self, now: datetime | None = None) -> str:
        """``scheduled`` (starts later), ``running``, ``finished`` (its last night is over) or ``stopped``."""
        if self.stopped is not None:
            return "stopped"
        t = tonight(now)
        if t < self.start:
            return "scheduled"
        return "running" if t <= self.last else "finished"

    def active(self, now: datetime | None = None) -> bool:
        return self.state(now) in ("scheduled", "running")

    def schedule_json(self) -> list[dict]:
        return [{"night": d, "intervention": on} for d, on in zip(self.nights, self.schedule, strict=True)]

    def point(self) -> Point:
        fields: dict = {
            "id": self.id,
            "habit": self.habit,
            "start": self.start,
            "schedule": "".join("1" if on else "0" for on in self.schedule),
            "nights": float(len(self.schedule)),
            "seed": float(self.seed),
            "block": float(self.block),
            "outcome": self.outcome,
        }
        if self.stopped is not None:
            fields["stopped"] = float(self.stopped)
        return Point(MEASUREMENT, {"subject": self.subject}, fields, self.created)

    @classmethod
    def from_point(cls, p: Point) -> Plan:
        f = p.fields
        stopped = f.get("stopped")
        return cls(
            subject=p.tags.get("subject", ""),
            habit=str(f["habit"]),
            start=str(f["start"]),
            schedule=tuple(c == "1" for c in str(f["schedule"])),
            seed=int(float(f.get("seed", 0.0))),  # type: ignore[arg-type]
            block=int(float(f.get("block", BLOCK))),  # type: ignore[arg-type]
            created=p.time,
            outcome=str(f.get("outcome", "episodes")),
            stopped=None if stopped is None else float(stopped),  # type: ignore[arg-type]
        )


def plans(store: Store, subject: str | None = None) -> list[Plan]:
    """Every experiment kept for ``subject`` (every subject: None), oldest first."""
    tags = {"subject": subject} if subject is not None else None
    return [Plan.from_point(p) for p in store.query(MEASUREMENT, tags=tags) if "schedule" in p.fields]


def active_plan(all_plans: Sequence[Plan], now: datetime | None = None) -> Plan | None:
    """The experiment running (or scheduled to start) at ``now``, if any."""
    live = [p for p in all_plans if p.active(now)]
    return live[-1] if live else None


def current_plan(all_plans: Sequence[Plan], now: datetime | None = None) -> Plan | None:
    """The running experiment, else the latest one planned."""
    return active_plan(all_plans, now) or (all_plans[-1] if all_plans else None)


def pick(store: Store, subject: str, experiment_id: str | None, now: datetime | None = None) -> Plan:
    """The experiment ``experiment_id`` names (its id, or its habit), else the current one."""
    kept = plans(store, subject)
    if not kept:
        raise ExperimentError(
            f"no experiment planned for {subject!r}: start one with `legwatch experiment plan HABIT --nights 28`"
        )
    if experiment_id:
        found = [p for p in kept if experiment_id in (p.id, p.habit)]
        if not found:
            raise ExperimentError(
                f"no experiment {experiment_id!r} for {subject!r} (kept: {', '.join(p.id for p in kept)})"
            )
        return found[-1]
    plan = current_plan(kept, now)
    assert plan is not None
    return plan


def make_plan(
    store: Store,
    subject: str,
    habit: str,
    nights: int,
    *,
    seed: int | None = None,
    start: str | None = None,
    outcome: str = "episodes",
    now: datetime | None = None,
) -> Plan:
    """Draw, check and store a new plan; ExperimentError (nothing written) when refused."""
    h = check_habit(habit)
    if not isinstance(nights, int) or not (2 <= nights <= MAX_NIGHTS):
        raise ExperimentError(f"--nights must be a whole number from 2 to {MAX_NIGHTS}, got {nights!r}")
    if seed is not None and not (0 <= seed < 2**63):
        raise ExperimentError(f"--seed must be a whole number >= 0, got {seed!r}")
    if outcome not in OUTCOMES:
        raise ExperimentError(f"--outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    first = _day(start).isoformat() if start else tonight(now)
    nowdt = localtime.in_zone(now)
    running = active_plan(plans(store, subject), nowdt)
    if running is not None:
        raise ExperimentError(
            f"an experiment on {running.habit} is {running.state(nowdt)} ({running.start} to {running.last}); "
            "one runs at a time: end it first with `legwatch experiment stop`"
        )
    if seed is None:
        seed = secrets.randbelow(2**31)
    plan = Plan(subject, h, first, tuple(draw_schedule(nights, seed)), seed, BLOCK, nowdt.timestamp(), outcome)
    store.write([plan.point()])
    return plan


def stop_plan(store: Store, subject: str, now: datetime | None = None) -> Plan:
    """End the running experiment early (its nights so far stay analysable)."""
    nowdt = localtime.in_zone(now)
    running = active_plan(plans(store, subject), nowdt)
    if running is None:
        raise ExperimentError(f"no experiment is running for {subject!r}")
    stopped = replace(running, stopped=nowdt.timestamp())
    store.write([stopped.point()])
    return stopped


def tonight_doc(all_plans: Sequence[Plan], subject: str, now: datetime | None = None) -> dict:
    """Whether tonight is an intervention night (the ``experiment today`` JSON and the retained
    MQTT message): ``{subject, night, experiment, habit, intervention, night_number, nights_planned,
    state, reminder}``; ``intervention`` is null when no experiment runs tonight."""
    night = tonight(now)
    plan = active_plan(all_plans, now)
    doc: dict = {
        "subject": subject,
        "night": night,
        "experiment": None,
        "habit": None,
        "intervention": None,
        "night_number": None,
        "nights_planned": None,
        "state": None,
        "reminder": "No experiment is running.",
    }
    if plan is None:
        return doc
    on = plan.assignment(night)
    doc.update(experiment=plan.id, habit=plan.habit, nights_planned=len(plan.schedule), state=plan.state(now))
    if on is None:
        doc["reminder"] = f"The experiment on {plan.habit} starts on the evening of {plan.start}."
        return doc
    doc.update(intervention=on, night_number=plan.nights.index(night) + 1)
    label = plan.habit.replace("_", " ")
    if on:
        doc["reminder"] = (
            f"Tonight is a {label} night (night {doc['night_number']} of {len(plan.schedule)}): do it this "
            f"evening and log it (`legwatch log {plan.habit}`)."
        )
    else:
        doc["reminder"] = (
            f"Tonight is a night without {label} (night {doc['night_number']} of {len(plan.schedule)}): "
            "leave it out this evening."
        )
    return doc
