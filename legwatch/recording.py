"""A recording as the commands read it: any format ``legwatch.readers`` knows, sorted, at the wire's
resolution, with what was read said in words, and the checks that tell a night from what cannot be
one. ``detect`` reports those checks as remarks; ``import`` refuses a file that fails one.

Used by ``detect``, ``import``, ``convert`` and ``replay``; the flags ``--units``, ``--time-unit``
and ``--tz`` are added to each by ``legwatch.read_flags.add_read_flags``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from legwatch.readers import ReadOptions, Recording, read
from legwatch.readers.base import gravity, median

MIN_NIGHT_S = 15 * 60  # shorter is not a night: import refuses it (detect analyses it and says so)
MIN_RATE_HZ = 10.0  # below, twitches (< 0.5 s) cannot be seen
REST_G = (0.8, 1.25)  # median |a| in g: what an accelerometer at rest (gravity) gives, with calibration slack
UNIX_2000, UNIX_2100 = 946_684_800.0, 4_102_444_800.0


def options(args: argparse.Namespace) -> ReadOptions:
    """The reading flags; local times without a zone default to the configured zone (``timezone``)."""
    from legwatch.contracts import localtime

    tz = args.tz if args.tz is not None else (localtime.name() or None)
    return ReadOptions(units=getattr(args, "units", None), time_unit=getattr(args, "time_unit", None), tz=tz)


@dataclass
class Loaded:
    """What a command works on: quantized sorted arrays and the reader's account of them."""

    t: np.ndarray
    xyz: np.ndarray
    recording: Recording

    def describe(self) -> str:
        return self.recording.describe()


def load(path: str, opts: ReadOptions | None = None, *, quantized: bool = True) -> Loaded:
    from legwatch.contracts.payload import quantize

    rec = read(path, opts)
    t, xyz = rec.t, rec.xyz
    if len(t) > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, xyz = t[order], xyz[order]
    if quantized:
        # Detect what the monitor would receive over the wire (whole µs, 1/4096 g counts): far below
        # sensor noise, and it makes `detect` on a file and the monitor fed by `replay` bit-identical.
        t, xyz = quantize(t, xyz, in_place=True)  # the reader's own arrays, used for nothing else
    return Loaded(t, xyz, rec)


def problems(t: np.ndarray, xyz: np.ndarray) -> list[str]:
    """Why this recording cannot be a night (each a short clause; empty when it can be one)."""
    out = []
    if len(t) < 2:
        return [f"{len(t)} sample(s)"]
    span = float(t[-1] - t[0])
    if t[0] < UNIX_2000 or t[-1] > UNIX_2100:
        out.append(f"its times fall outside 2000-2100 (starting at {t[0]:.10g} s: relative times, not Unix time?)")
    if span < MIN_NIGHT_S:
        out.append(f"it is short: {_dur(span)} (a night is at least {MIN_NIGHT_S // 60} min)")
    steps = np.diff(t[: min(len(t), 200_001)])
    steps = steps[steps > 0]
    if len(steps):
        rate = 1.0 / float(median(steps))
        if rate < MIN_RATE_HZ:
            out.append(f"its sample rate is {rate:.3g} Hz (at least {MIN_RATE_HZ:g} Hz needed to see twitches)")
    mag = gravity(xyz)  # in g here
    if not REST_G[0] <= mag <= REST_G[1]:
        out.append(
            f"its median magnitude is {mag:.3g} g, which no accelerometer at rest gives "
            f"({REST_G[0]:g}-{REST_G[1]:g} g: gravity)"
        )
    return out


def _dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def cmd_convert(args: argparse.Namespace) -> int:
    """``legwatch convert FILE [--output OUT.csv]``: legwatch CSV of anything ``detect`` reads."""
    import sys
    from pathlib import Path

    from legwatch.csvio import write_csv
    from legwatch.errors import UserError

    loaded = load(args.file, options(args), quantized=False)
    if args.output:
        out = Path(args.output)
        if out.resolve() == Path(args.file).resolve():
            raise UserError(f"--output {args.output}: is the input file")
        tmp = out.with_name(out.name + ".part")
        try:
            write_csv(tmp, loaded.t, loaded.xyz)
            tmp.replace(out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UserError(f"--output {args.output}: cannot write: {exc.strerror}") from None
        print(f"{args.file}: {loaded.describe()}", file=sys.stderr)
        print(f"wrote {len(loaded.t)} samples to {args.output} (legwatch CSV: Unix seconds, g)", file=sys.stderr)
    else:
        write_csv(sys.stdout, loaded.t, loaded.xyz)
        print(f"{args.file}: {loaded.describe()}", file=sys.stderr)
    return 0
