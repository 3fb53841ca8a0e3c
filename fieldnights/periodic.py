"""The WASM 2016 periodic-series rule (Ferri et al. 2016), for the truth flags of leg movements.

Candidate leg movements are ``leg_movement`` events of 0.5-10 s. Sorted by onset, a series is a run of
consecutive candidates whose onset-to-onset intervals all lie in [10, 90] s; a movement that is not a
candidate (a cramp, a roll-over, getting up, a leg movement over 10 s) ends it; twitches (< 0.5 s) are
not leg movements and are skipped. Runs of at least 4 are periodic. (The AASM 2007 rule had > 5 s.)
"""

from __future__ import annotations

from collections.abc import Sequence

IMI_MIN_S = 10.0
IMI_MAX_S = 90.0
SERIES_MIN = 4
BREAKERS = ("contraction", "posture_change", "out_of_bed")


def periodic_flags(events: Sequence) -> list[bool]:
    """One flag per event (aligned with ``events``): True for leg movements in a periodic series."""
    flags = [False] * len(events)
    order = sorted(range(len(events)), key=lambda i: (events[i].start, events[i].kind == "leg_movement"))
    run: list[int] = []

    def close() -> None:
        if len(run) >= SERIES_MIN:
            for i in run:
                flags[i] = True
        run.clear()

    for i in order:
        e = events[i]
        d = e.end - e.start
        if e.kind == "leg_movement" and 0.5 <= d <= 10.0:
            if run and not (IMI_MIN_S <= e.start - events[run[-1]].start <= IMI_MAX_S):
                close()
            run.append(i)
        elif e.kind in BREAKERS or e.kind == "leg_movement":
            close()
    close()
    return flags
