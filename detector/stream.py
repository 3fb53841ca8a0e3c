"""The streaming detector: one object per sensor stream, fed batch by batch.

``push(t, xyz)`` returns whatever became final (episodes, epochs, gaps); ``finish()`` flushes the
stream and returns the night: sleep window, final episodes (with ``in_sleep`` set), the periodic
leg-movement index. ``legwatch detect`` runs exactly this over a whole file in one batch, and the
monitor over MQTT batches: the stages are aligned to absolute time and carry bounded state, so the
episodes do not depend on where the stream was cut.

``state()`` is the detector's complete state as plain data (numpy arrays, numbers, strings, None,
and lists and dicts of them; ``"version"`` is ``STATE_VERSION``), and ``StreamDetector.from_state``
rebuilds a detector that continues bit-identically: a checkpoint that is data, not pickled objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detector.episodes import CrampGrouper, EpisodeAssembler, PeriodicTracker
from detector.epochs import EpochStage, EpochStat, history_epochs
from detector.events import KINDS_COUNTED, KINDS_OTHER, Episode, Epoch, Gap
from detector.excursions import HeldCrampGrouper
from detector.features import FeatureStage
from detector.frames import Framer
from detector.posture import ShinAxis
from detector.rows import Rows
from detector.sleep import sleep_window
from detector.thresholds import ThresholdStage
from detector.vectors import state_array, state_part, state_value

#: The layout of ``StreamDetector.state()``; bump it whenever that changes.
STATE_VERSION = 4


@dataclass
class Update:
    """What one push made final."""

    episodes: list[Episode] = field(default_factory=list)
    epochs: list[Epoch] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


@dataclass
class Night:
    """The whole stream's result."""

    episodes: list[Episode]
    epochs: list[Epoch]
    gaps: list[Gap]
    sleep_window: tuple[float, float] | None
    plm_index: float | None
    start: float | None
    end: float | None
    samples: int
    dropped: int

    def counted(self) -> list[Episode]:
        return [e for e in self.episodes if e.counted]

    def coverage(self) -> float | None:
        if self.start is None or self.end is None or self.end <= self.start:
            return None
        missing = sum(g.duration_s for g in self.gaps)
        return max(0.0, 1.0 - missing / (self.end - self.start))

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for e in self.episodes:
            counts[e.kind] = counts.get(e.kind, 0) + 1
        sw = self.sleep_window
        return {
            "start": self.start,
            "end": self.end,
            "samples": self.samples,
            "sleep_start": sw[0] if sw else None,
            "sleep_end": sw[1] if sw else None,
            "plm_index": None if self.plm_index is None else round(self.plm_index, 2),
            "counts": counts,
            "coverage": None if self.coverage() is None else round(self.coverage() or 0.0, 4),
            "gaps": len(self.gaps),
        }


class StreamDetector:
    """State: the stages' states (the shin axis once: two stages share it), the night's episodes
    (rows of ``_EP_COLS``) and gaps ((k, 2) start, end), the first sample time and the sample count."""

    def __init__(self) -> None:
        self.framer = Framer()
        self.features = FeatureStage()
        self.thresholds = ThresholdStage()
        self.axis = ShinAxis()
        self.assembler = EpisodeAssembler(self.axis)
        self.cramps = CrampGrouper()
        self.held = HeldCrampGrouper()
        self.periodic = PeriodicTracker()
        self.epochs = EpochStage(self.axis)
        self.episodes = Rows(len(_EP_COLS))  # the night's episodes, compactly (see _EP_COLS)
        self.gaps: list[Gap] = []
        self.first_t: float | None = None
        self.samples = 0

    def state(self) -> dict:
        """The complete state as plain data (a snapshot: later pushes do not change it)."""
        return {
            "version": STATE_VERSION,
            "framer": self.framer.state(),
            "features": self.features.state(),
            "thresholds": self.thresholds.state(),
            "axis": self.axis.state(),
            "assembler": self.assembler.state(),
            "cramps": self.cramps.state(),
            "held": self.held.state(),
            "periodic": self.periodic.state(),
            "epochs": self.epochs.state(),
            "episodes": self.episodes.state(),
            "gaps": np.array([(g.start, g.end) for g in self.gaps], dtype=np.float64).reshape(-1, 2),
            "first_t": self.first_t,
            "samples": self.samples,
        }

    @classmethod
    def from_state(cls, state: dict) -> StreamDetector:
        """The detector ``state()`` was taken from; ValueError for another version or a bad state."""
        if not isinstance(state, dict):
            raise ValueError(f"stream state: expected a dict, got {type(state).__name__}")
        version = state.get("version")
        if type(version) is not int or version != STATE_VERSION:
            raise ValueError(f"stream state version {version!r} is not supported (expected {STATE_VERSION})")
        try:
            return cls._from_state(state)
        except ValueError as e:
            msg = str(e)
            raise ValueError(f"malformed stream state: {msg.lstrip(': ') or 'invalid'}") from None
        except (TypeError, KeyError, IndexError, AttributeError) as e:  # a check missed something
            raise ValueError(f"malformed stream state: {type(e).__name__}: {e}") from None

    @classmethod
    def _from_state(cls, state: dict) -> StreamDetector:
        d = cls()
        d.framer = state_part(state, "framer", Framer.from_state)
        d.features = state_part(state, "features", FeatureStage.from_state)
        d.thresholds = state_part(state, "thresholds", ThresholdStage.from_state)
        d.axis = state_part(state, "axis", ShinAxis.from_state)
        d.assembler = state_part(state, "assembler", lambda s: EpisodeAssembler.from_state(s, d.axis))
        d.cramps = state_part(state, "cramps", CrampGrouper.from_state)
        d.held = state_part(state, "held", HeldCrampGrouper.from_state)
        d.periodic = state_part(state, "periodic", PeriodicTracker.from_state)
        d.epochs = state_part(state, "epochs", lambda s: EpochStage.from_state(s, d.axis))
        d.episodes = state_part(state, "episodes", lambda s: Rows.from_state(s, len(_EP_COLS)))
        d.gaps = [Gap(a, b) for a, b in state_array(state, "gaps", np.float64, 2).tolist()]
        d.first_t = state_value(state, "first_t", float, none_ok=True)
        d.samples = state_value(state, "samples", int)
        return d

    def push(self, t: np.ndarray, xyz: np.ndarray) -> Update:
        t = np.asarray(t, dtype=np.float64)
        if len(t) and self.first_t is None:
            finite = t[np.isfinite(t)]
            if len(finite):
                self.first_t = float(finite[0])
        self.samples += len(t)
        frames, gaps = self.framer.push(t, xyz)
        up = Update(gaps=[Gap(a, b) for a, b in gaps])
        self._run(frames, up, final=False)
        return up

    def _run(self, frames, up: Update, final: bool) -> None:
        feats = self.features.push(frames)
        if final:
            from detector.features import Features

            feats = Features.concat([feats, self.features.flush()])
        scored = self.thresholds.push(feats)
        if final:
            from detector.thresholds import concat_scored

            scored = concat_scored([scored, self.thresholds.flush()])
        stats: list[EpochStat] = self.epochs.push(scored)
        eps = self.assembler.push(scored)
        if final:
            stats += self.epochs.flush()
            eps += self.assembler.flush()
        # Held episodes are released only when nothing still to come could change them, judged by
        # the data (frontiers), never by when a batch happened to arrive.
        grouped = self.cramps.push(eps)
        grouped += self.cramps.tick(self.assembler.frontier)
        if final:
            grouped += self.cramps.flush()
        frontier = self.cramps.frontier(self.assembler.frontier)
        held = self.held.push(grouped)
        held += self.held.tick(frontier)
        if final:
            held += self.held.flush()
        released = self.periodic.push(held)
        released += self.periodic.tick(self.held.frontier(frontier))
        if final:
            released += self.periodic.flush()
        released.sort(key=lambda e: e.start)
        released = [_lean(e) for e in released]
        for e in released:
            self.episodes.append(_to_row(e))
        self.gaps.extend(up.gaps)
        up.episodes.extend(released)
        up.epochs.extend(s.epoch for s in stats)

    def finish(self) -> tuple[Update, Night]:
        up = Update()
        self._run(self.framer.flush(), up, final=True)
        eps = sorted((_from_row(r) for r in self.episodes.data), key=lambda e: e.start)
        sw = sleep_window(self.epochs.history, eps, self.first_t, self.framer.last_t)
        if sw is not None:
            eps = [
                Episode(e.start, e.end, e.kind, e.peak_g, e.periodic, sw[0] <= e.start < sw[1], e.extra) for e in eps
            ]
            hours = (sw[1] - sw[0] - _overlap(self.gaps, sw)) / 3600.0
            plm = sum(1 for e in eps if e.periodic and e.in_sleep)
            plm_index = plm / hours if hours > 0 else None
        else:
            plm_index = None
        night = Night(
            episodes=eps,
            epochs=history_epochs(self.epochs.history),
            gaps=list(self.gaps),
            sleep_window=sw,
            plm_index=plm_index,
            start=self.first_t,
            end=self.framer.last_t,
            samples=self.samples,
            dropped=self.framer.dropped,
        )
        return up, night


def _overlap(gaps: list[Gap], win: tuple[float, float]) -> float:
    return sum(max(0.0, min(g.end, win[1]) - max(g.start, win[0])) for g in gaps)


def _lean(e: Episode) -> Episode:
    """The episode without the working notes (underscore keys) the grouping stages needed."""
    if not any(k.startswith("_") for k in e.extra):
        return e
    extra = {k: v for k, v in e.extra.items() if not k.startswith("_")}
    return Episode(e.start, e.end, e.kind, e.peak_g, e.periodic, e.in_sleep, extra)


_KINDS = (*KINDS_COUNTED, *KINDS_OTHER)
_EP_COLS = ("start", "end", "kind", "peak_g", "periodic", "in_sleep", "posture_change_deg", "rotation_deg", "parts")


def _to_row(e: Episode) -> tuple[float, ...]:
    x = e.extra
    return (
        e.start,
        e.end,
        float(_KINDS.index(e.kind)),
        e.peak_g,
        float(e.periodic),
        float(e.in_sleep),
        float(x.get("posture_change_deg", np.nan)),
        float(x.get("rotation_deg", np.nan)),
        float(x.get("parts", 0)),
    )


def _from_row(r: np.ndarray) -> Episode:
    extra: dict = {}
    for name, v in (("posture_change_deg", r[6]), ("rotation_deg", r[7])):
        if np.isfinite(v):
            extra[name] = float(v)
    if r[8]:
        extra["parts"] = int(r[8])
    return Episode(float(r[0]), float(r[1]), _KINDS[int(r[2])], float(r[3]), bool(r[4]), bool(r[5]), extra)
