"""Before ``legwatch log`` makes a new custom habit: is the name a known habit in other words, or a typo?

``check_name`` passes a known habit (any case: names are lower-cased), a medication shorthand and
any custom habit already stored for the subject. Anything else that is a synonym (``coffee`` is
caffeine, ``magnesium`` is filed under electrolytes, ``beer`` is alcohol, …) or close to a name it
knows (``difflib``: ``watr``, ``strech``, ``excercise``, or ``yogo`` when ``yoga`` is stored) is
refused with the command to type instead, before anything is written; ``--new`` makes the custom
habit anyway. A name close to nothing is a new custom habit, and ``legwatch log`` says so.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from legwatch.habits import KNOWN, MEDICATION_ALIASES

#: A word a person may type -> (the known habit, a unit of it the word stands for, or "").
SYNONYMS: dict[str, tuple[str, str]] = {
    "coffee": ("caffeine", "cup"),
    "coffees": ("caffeine", "cup"),
    "espresso": ("caffeine", "espresso"),
    "tea": ("caffeine", "tea"),
    "cola": ("caffeine", ""),
    "magnesium": ("electrolytes", ""),
    "potassium": ("electrolytes", ""),
    "calcium": ("electrolytes", ""),
    "sodium": ("electrolytes", ""),
    "salt": ("electrolytes", ""),
    "electrolyte": ("electrolytes", ""),
    "oral_rehydration": ("electrolytes", ""),
    "fluids": ("water", ""),
    "fluid": ("water", ""),
    "drinks_water": ("water", ""),
    "hydration": ("water", ""),
    "beer": ("alcohol", "drink"),
    "wine": ("alcohol", "drink"),
    "spirits": ("alcohol", "drink"),
    "booze": ("alcohol", "drink"),
    "walk": ("exercise", ""),
    "walking": ("exercise", ""),
    "run": ("exercise", ""),
    "running": ("exercise", ""),
    "jogging": ("exercise", ""),
    "gym": ("exercise", ""),
    "workout": ("exercise", ""),
    "cycling": ("exercise", ""),
    "swimming": ("exercise", ""),
    "sport": ("exercise", ""),
    "stretch": ("stretching", ""),
    "stretches": ("stretching", ""),
    "bath": ("heat", ""),
    "hot_bath": ("heat", ""),
    "sauna": ("heat", ""),
    "heating_pad": ("heat", ""),
    "warmth": ("heat", ""),
    "ice": ("cold", ""),
    "ice_pack": ("cold", ""),
    "cold_pack": ("cold", ""),
    "sit": ("sitting", ""),
    "stand": ("standing", ""),
    "statins": ("statin", ""),
    "diuretics": ("diuretic", ""),
    "medicine": ("medication", ""),
    "meds": ("medication", ""),
    "pill": ("medication", ""),
    "pills": ("medication", ""),
}
CUTOFF = 0.75
_NUMBER = re.compile(r"^[0-9]*\.?[0-9]+$")


@dataclass(frozen=True)
class Suggestion:
    """``typed`` is better logged as ``command``; ``why`` says how the two are related."""

    typed: str
    habit: str
    command: str
    why: str

    def message(self) -> str:
        return (
            f"{self.typed!r} is not a habit yet. {self.why} Log it as `{self.command}`, "
            f"or add --new to make {self.typed!r} a new custom habit."
        )


def normalise(name: str) -> str:
    """A habit name as it is stored (lower case, ``-`` as ``_``)."""
    return name.strip().lower().replace("-", "_")


def _command(habit: str, unit: str, value: str | None, typed: str) -> str:
    parts = ["legwatch log", habit]
    if unit:
        number = value if value and _NUMBER.match(value) else "1"
        parts.append(f"{number}{unit}")
    elif value:
        parts.append(value)
    if habit == "electrolytes" and typed != "electrolyte":
        parts.append(f"--note {typed}")
    return " ".join(parts)


def suggest(typed: str, value: str | None = None, stored: Iterable[str] = ()) -> Suggestion | None:
    """What ``typed`` most likely means, or None when it is fine as it is (known, stored, or close
    to nothing)."""
    name = normalise(typed)
    stored_names = {normalise(s) for s in stored}
    if name in KNOWN or name in MEDICATION_ALIASES or name in stored_names:
        return None
    if name in SYNONYMS:
        habit, unit = SYNONYMS[name]
        why = f"{name.replace('_', ' ').capitalize()} is logged under {habit}."
        return Suggestion(typed, habit, _command(habit, unit, value, name), why)
    known = [*KNOWN, *MEDICATION_ALIASES]
    candidates = [*known, *SYNONYMS, *sorted(stored_names)]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=CUTOFF)
    if not close:
        return None
    match = close[0]
    if match in stored_names:
        why = f"Did you mean {match!r} (a habit you logged before)?"
        return Suggestion(typed, match, _command(match, "", value, match), why)
    if match in SYNONYMS:
        habit, unit = SYNONYMS[match]
        why = f"Did you mean {match!r}? That is logged under {habit}."
        return Suggestion(typed, habit, _command(habit, unit, value, match), why)
    return Suggestion(typed, match, _command(match, "", value, match), f"Did you mean {match!r} (a known habit)?")


def stored_habits(store, subject: str) -> set[str]:
    """The habit names stored for ``subject`` (its custom habits among them)."""
    return {p.tags.get("habit", "") for p in store.query("habit", tags={"subject": subject})} - {""}
