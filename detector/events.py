"""What the detector reports: episodes, activity epochs and data gaps (plain value objects)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: Episode kinds that count as episodes (brief: twitch < 0.5 s, leg movement 0.5-10 s, contraction > 10 s).
KINDS_COUNTED = ("twitch", "leg_movement", "contraction")
#: Other kinds the detector may report; they are not counted as episodes.
KINDS_OTHER = ("posture_change", "out_of_bed")


@dataclass(frozen=True)
class Episode:
    """One detected event. Times are Unix seconds (float)."""

    start: float
    end: float
    kind: str
    peak_g: float
    periodic: bool = False
    in_sleep: bool = True
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def counted(self) -> bool:
        return self.kind in KINDS_COUNTED

    def to_dict(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        d["duration_s"] = round(self.duration_s, 3)
        d["start"] = round(self.start, 3)
        d["end"] = round(self.end, 3)
        d["peak_g"] = round(self.peak_g, 4)
        d["periodic"] = bool(self.periodic)
        d["in_sleep"] = bool(self.in_sleep)
        for k, v in extra.items():
            if not k.startswith("_"):  # underscore keys are for diagnosis only
                d[k] = v.item() if hasattr(v, "item") else v
        return d


@dataclass(frozen=True)
class Epoch:
    """Activity over one fixed epoch: mean movement level (g) and mean leg angle to horizontal (deg)."""

    time: float
    movement_g: float
    angle_deg: float
    coverage: float = 1.0


@dataclass(frozen=True)
class Gap:
    """A stretch of time in which no data arrived."""

    start: float
    end: float

    @property
    def duration_s(self) -> float:
        return self.end - self.start
