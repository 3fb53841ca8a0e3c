"""What every reader returns and the rules they share: units, time units, local time zones.

A reader turns a file into a ``Recording``: times in Unix seconds (float64), acceleration in g
(an n x 3 float64 array), and what it read them as, said in words (``describe``). The rules:

- acceleration: the unit a header declares (``X [mg]``, ``x-axis (g)``, ``(m/s^2)``), else the one
  gravity's magnitude gives (median |a| about 1 g, 1000 mg or 9.81 m/s²); ``--units`` overrides.
  A declared unit that gravity contradicts, or a magnitude that fits none, is an error naming
  ``--units``.
- numeric timestamps: Unix time in s, ms, µs or ns, told apart by their size (a date between
  2000 and 2100 in exactly one of them); ``--time-unit`` overrides.
- wall-clock times without a zone (most apps, every logger's clock): local time in ``--tz ZONE``,
  by default the system's zone, and the reader says which.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import numpy as np

from legwatch.csvio import RecordingError

__all__ = ["ReadOptions", "Recording", "RecordingError"]

G = 9.80665  # m/s² per g (standard gravity, as the apps that write m/s² use)
ACCEL_UNITS = {"g": 1.0, "mg": 1e-3, "m/s2": 1.0 / G}
UNIT_ALIASES = {"g": "g", "mg": "mg", "m/s2": "m/s2", "m/s^2": "m/s2", "m/s²": "m/s2", "ms2": "m/s2", "mps2": "m/s2"}
# median |a| of a recording (mostly at rest) in each unit: bands far apart, so one fits at most
GRAVITY_BANDS = {"g": (0.5, 2.0), "mg": (500.0, 2000.0), "m/s2": (4.5, 20.0)}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
TIME_ALIASES = {"s": "s", "sec": "s", "ms": "ms", "us": "us", "µs": "us", "ns": "ns"}
UNIX_2000, UNIX_2100 = 946_684_800.0, 4_102_444_800.0


@dataclass(frozen=True)
class ReadOptions:
    """What the user said about a file: ``units`` (g, mg, m/s2), ``time_unit`` (s, ms, us, ns),
    ``tz`` (an IANA zone or ±HH:MM for local times without a zone). None: detect."""

    units: str | None = None
    time_unit: str | None = None
    tz: str | None = None

    def __post_init__(self) -> None:
        if self.units is not None and self.units.strip().lower() not in UNIT_ALIASES:
            raise RecordingError(f"--units {self.units!r}: use g, mg or m/s2")
        if self.time_unit is not None and self.time_unit.strip().lower() not in TIME_ALIASES:
            raise RecordingError(f"--time-unit {self.time_unit!r}: use s, ms, us or ns")
        if self.tz is not None:
            zone(self)  # a bad zone is refused before anything is read

    @property
    def unit(self) -> str | None:
        return None if self.units is None else UNIT_ALIASES[self.units.strip().lower()]

    @property
    def tunit(self) -> str | None:
        return None if self.time_unit is None else TIME_ALIASES[self.time_unit.strip().lower()]


@dataclass
class Recording:
    """A recording read: ``t`` Unix seconds, ``xyz`` in g, and how it was read."""

    t: np.ndarray
    xyz: np.ndarray
    format: str
    units: str  # how acceleration was read, e.g. "mg (from the header)"
    times: str  # how timestamps were read, e.g. "ms (from their size)"
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: "read as Polar Sensor Logger: acceleration in mg (...), timestamps ..."."""
        text = f"read as {self.format}: acceleration in {self.units}, timestamps {self.times}"
        return text + "".join(f"; {n}" for n in self.notes)

    def to_dict(self) -> dict:
        return {"format": self.format, "units": self.units, "timestamps": self.times, "notes": list(self.notes)}


def median(x) -> float:
    """The median of a 1-d array (``np.median`` imports numpy.ma: ~15 ms of every detect)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = len(x)
    if n == 0:
        return float("nan")
    part = np.partition(x, [(n - 1) // 2, n // 2])
    return float((part[(n - 1) // 2] + part[n // 2]) / 2)


# --- acceleration units ---------------------------------------------------------------------------


def gravity(xyz: np.ndarray) -> float:
    """Median |a| over (up to 200,000 evenly picked) samples: gravity's magnitude in the file's unit."""
    if len(xyz) == 0:
        return float("nan")
    step = max(1, len(xyz) // 200_000)
    s = xyz[::step]
    return float(median(np.sqrt(np.einsum("ij,ij->i", s, s))))  # (a third of (s * s).sum(axis=1)'s time)


def _band(mag: float) -> str | None:
    return next((u for u, (lo, hi) in GRAVITY_BANDS.items() if lo <= mag <= hi), None)


def to_g(
    xyz: np.ndarray, opts: ReadOptions, declared: str | None = None, *, what: str = "", source: str = "from the header"
) -> tuple[np.ndarray, str]:
    """``xyz`` scaled to g, and how the unit was chosen: ``--units``, else the header's unit
    checked against gravity, else gravity's magnitude. Errors name ``--units``."""
    mag = gravity(xyz)
    if opts.unit is not None:
        unit, how = opts.unit, "as --units says"
    else:
        fits = _band(mag) if np.isfinite(mag) else None
        where = f" {what}" if what else ""
        if declared is not None:
            if fits is not None and fits != declared:
                raise RecordingError(
                    f"acceleration{where}: the header says {declared} but gravity's magnitude ({mag:.3g}) reads as "
                    f"{fits}: pass --units g|mg|m/s2"
                )
            if fits is None:
                raise RecordingError(_no_gravity(mag, f"{where} (the header says {declared})"))
            unit, how = declared, source
        elif fits is None:
            raise RecordingError(_no_gravity(mag, where))
        else:
            unit, how = fits, f"from gravity's magnitude, {mag:.4g}"
    out = xyz if unit == "g" else xyz * ACCEL_UNITS[unit]
    return out, f"{_unit_name(unit)} ({how})"


def _no_gravity(mag: float, where: str) -> str:
    if not np.isfinite(mag):
        return f"acceleration{where}: no samples"
    lead = f"acceleration{where}: median magnitude {mag:.3g} is not gravity in g (1), mg (1000) or m/s² (9.81)"
    if mag < 0.45:
        lead += ": no gravity in it (linear acceleration? legwatch needs total acceleration)"
    return lead + "; pass --units g|mg|m/s2 if you know the unit"


def _unit_name(unit: str) -> str:
    return "m/s²" if unit == "m/s2" else unit


# --- numeric timestamps ---------------------------------------------------------------------------


def unix_seconds(
    raw: np.ndarray, opts: ReadOptions, *, declared: str | None = None, default: str | None = None
) -> tuple[np.ndarray, str]:
    """Numeric timestamps as Unix seconds and how their unit was chosen: ``--time-unit``, else the
    unit a header declares, else their size (a date in 2000-2100 in exactly one unit)."""
    if opts.tunit is not None:
        unit, how = opts.tunit, "as --time-unit says"
    elif declared is not None:
        unit, how = declared, "from the header"
    else:
        if len(raw) == 0:
            raise RecordingError("no samples")
        first = float(median(raw[: min(len(raw), 1001)]))
        fits = [u for u, f in TIME_UNITS.items() if UNIX_2000 <= first * f <= UNIX_2100]
        if not fits and default is not None:
            fits, how = [default], f"the format's unit: like {first:.10g}, they are no date in 2000-2100 in any unit"
        else:
            how = "from their size"
        if len(fits) != 1:
            raise RecordingError(
                f"timestamps like {first:.10g} are not Unix time (2000-2100) in s, ms, µs or ns: "
                "pass --time-unit s|ms|us|ns if they are"
            )
        unit = fits[0]
    t = raw.astype(np.float64) if unit == "s" else raw * TIME_UNITS[unit]
    name = {"s": "in s", "ms": "in ms", "us": "in µs", "ns": "in ns"}[unit]
    return np.asarray(t, dtype=np.float64), f"{name} ({how})"


# --- wall-clock times -----------------------------------------------------------------------------

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2}):?(\d{2})?$", re.I)


def zone(opts: ReadOptions) -> tuple[tzinfo | None, str]:
    """The zone of local times: ``--tz`` (IANA name, UTC, ±HH:MM; the CLI passes the configured zone
    when it is not given), or None for the system's."""
    if opts.tz is None:
        return None, "the system's zone (--tz ZONE to change)"
    name = opts.tz.strip()
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC, "UTC (--tz)"
    m = _OFFSET.match(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        off = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return timezone(sign * off), f"{name} (--tz)"
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        return ZoneInfo(name), f"{name} (--tz)"
    except (ZoneInfoNotFoundError, ValueError):
        raise RecordingError(
            f"--tz {name!r}: not a time zone (use an IANA name such as Europe/Berlin, UTC or +02:00)"
        ) from None


def local_to_unix(naive: np.ndarray, opts: ReadOptions) -> tuple[np.ndarray, str]:
    """Naive wall-clock seconds (a local time written as if it were UTC) to Unix seconds, in the
    zone of ``opts`` (daylight saving time followed hour by hour), and the words for it."""
    tz, said = zone(opts)
    if len(naive) == 0:
        return naive, said
    hours = np.floor(naive / 3600.0)
    uniq, inv = np.unique(hours, return_inverse=True)
    offs = np.empty(len(uniq))
    for i, h in enumerate(uniq.tolist()):
        wall = datetime(1970, 1, 1) + timedelta(hours=h)
        aware = wall.astimezone() if tz is None else wall.replace(tzinfo=tz)
        offs[i] = aware.utcoffset().total_seconds()
    return naive - offs[inv], f"local time in {said}"


_ZONED = re.compile(r"(Z|[+-]\d\d:?\d\d)\s*$")


def parse_datetimes(strings: np.ndarray, opts: ReadOptions, *, what: str = "timestamp") -> tuple[np.ndarray, str]:
    """ISO 8601 date-times (``T`` or a space, any fraction, with or without a zone) to Unix seconds.

    With a zone (``Z``, ``+01:00``, ``+0100``) they are exact; without one they are local time
    (``local_to_unix``). Vectorised through numpy's ISO parser; forms it refuses (unpadded
    ``2024-3-19 6:44:16.689``, a colon before the milliseconds) go through a regular expression."""
    strings = np.char.strip(np.asarray(strings, dtype=str))
    if len(strings) == 0:
        raise RecordingError("no samples")
    zoned = bool(_ZONED.search(str(strings[0])))
    if zoned:  # numpy reads Z, +01:00 and +0100 and gives UTC
        t = _numpy_times(strings, what)
        if t is None:
            raise RecordingError(f"{what} {str(strings[0])[:40]!r}: not an ISO 8601 date-time")
        return t, "ISO 8601 with a zone"
    naive = _numpy_times(strings, what)
    if naive is None:
        naive = _regex_times(strings, what)
    t, said = local_to_unix(naive, opts)
    return t, f"ISO 8601 without a zone, {said}"


def _numpy_times(strings: np.ndarray, what: str) -> np.ndarray | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            us = strings.astype("datetime64[us]")
    except ValueError:
        return None
    if np.isnat(us).any():
        bad = int(np.flatnonzero(np.isnat(us))[0])
        raise RecordingError(f"{what} on data row {bad + 1} is empty or not a time: {str(strings[bad])[:40]!r}")
    return us.astype(np.int64) / 1e6


_LOOSE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[T ](\d{1,2})[:.](\d{1,2})[:.](\d{1,2})(?:[.:,](\d+))?$")


def _regex_times(strings: np.ndarray, what: str) -> np.ndarray:
    out = np.empty(len(strings))
    epoch = datetime(1970, 1, 1)
    for i, s in enumerate(strings.tolist()):
        m = _LOOSE.match(s)
        if m is None:
            raise RecordingError(f"{what} on data row {i + 1} is not a date-time: {s[:40]!r}")
        y, mo, d, h, mi, se, frac = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(se))
        except ValueError:
            raise RecordingError(f"{what} on data row {i + 1} is not a date-time: {s[:40]!r}") from None
        out[i] = (dt - epoch).total_seconds() + (int(frac) / 10 ** len(frac) if frac else 0.0)
    return out


def spread_repeats(t: np.ndarray) -> tuple[np.ndarray, int]:
    """Times of rows that share a timestamp (packets stamped once) spread evenly up to the next
    distinct timestamp (the last group at the median step); how many rows were moved."""
    if len(t) < 2:
        return t, 0
    same = np.diff(t) == 0
    if not same.any():
        return t, 0
    starts = np.flatnonzero(np.concatenate(([True], ~same)))  # first row of each group
    sizes = np.diff(np.append(starts, len(t)))
    group_t = t[starts]
    gaps = np.diff(group_t)
    last = float(median(gaps / sizes[:-1])) * sizes[-1] if len(gaps) else float(sizes[-1]) * 0.02
    span = np.append(gaps, last)
    within = np.arange(len(t)) - np.repeat(starts, sizes)
    out = np.repeat(group_t, sizes) + within * np.repeat(span / sizes, sizes)
    return out, int(np.count_nonzero(within))
