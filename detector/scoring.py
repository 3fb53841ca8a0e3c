"""Event-level scoring of detected episodes against ground truth, and the WASM periodic-series rule.

Matching (used by :func:`score` and :func:`score_periodic`)
-----------------------------------------------------------
Only the counted kinds (``twitch``, ``leg_movement``, ``contraction``) take part; anything else on either
side (``posture_change``, ``out_of_bed``, confounder labels) is ignored. Each kind is scored on its own
(a detection only matches a truth event of the same kind), and ``any`` pools all counted kinds and
ignores the kind.

A detection ``d`` and a truth event ``g`` are *admissible* as a pair when either

* their onsets are close: ``|d.start - g.start| <= onset_tolerance_s`` (default 1.0 s), or
* they overlap enough: intersection-over-union ``|d ∩ g| / |d ∪ g| >= min_overlap`` (default 0.5).

The onset rule suits the short kinds, the overlap rule the long ones (a cramp found 3 s late but covering
the same minute still counts). The *slack* rule (``slack_s=0.5``, how the project is judged from outside:
event by event with +-0.5 s slack, pooled per kind) admits a pair when ``d`` and ``g`` overlap or lie at most
``slack_s`` apart: ``d.start <= g.end + slack_s`` and ``d.end >= g.start - slack_s``. Pairs are then
matched one-to-one: among all admissible pairs the matching
has the **largest possible number of pairs** (an optimal assignment, not greedy), and among those the
smallest total cost ``|onset difference| + (1 - IoU)``. Matched pairs are true positives; unmatched
detections are false positives, unmatched truth events false negatives.

Conventions: precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2 tp / (2 tp + fp + fn); a ratio
whose denominator is 0 is 1.0 (nothing was there to get wrong), so with no truth and no detections all
three are 1.0, and with truth but no detections precision is 1.0 and recall and F1 are 0.0.

Periodic leg movements (WASM 2016, as implemented by :func:`periodic_series_flags`)
-----------------------------------------------------------------------------------
The rule lives in :mod:`detector.periodic` (the streaming detector runs the same code). Candidate leg
movements are ``leg_movement`` events of 0.5-10 s. Events shorter than 0.5 s are not leg movements and
are skipped; movements that are not candidates (``contraction``, a ``leg_movement`` over 10 s, a
``posture_change``, ``out_of_bed``) end a series. Sorted by onset, a series is a maximal run of consecutive
candidates whose onset-to-onset intervals all lie in [10, 90] s; an interval outside that range ends the
series. Runs of at least 4 are periodic. The PLM index is the number of periodic leg movements with onset
inside the sleep window divided by the hours of that window.

Events may be any objects with ``start``, ``end`` and ``kind`` attributes (``Episode``, ``TruthEvent``) or
mappings with those keys (``legwatch detect --format json`` output); ``periodic`` is optional.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from detector.events import KINDS_COUNTED
from detector.periodic import IMI_MAX_S, IMI_MIN_S, SERIES_MIN, SeriesRule, role

#: The slack of the outside judging rule (``score(..., slack_s=JUDGED_SLACK_S)``).
JUDGED_SLACK_S = 0.5
#: The score rows: each counted kind, then all counted kinds pooled.
SCORE_KINDS = (*KINDS_COUNTED, "any")


def _get(ev: Any, name: str, default: Any = None) -> Any:
    if isinstance(ev, dict):
        return ev.get(name, default)
    return getattr(ev, name, default)


def _ratio(num: int, den: int) -> float:
    return 1.0 if den == 0 else num / den


@dataclass(frozen=True)
class KindScore:
    """Counts for one kind; precision, recall and F1 follow (see the module docstring for 0/0)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def n_truth(self) -> int:
        return self.tp + self.fn

    @property
    def n_detected(self) -> int:
        return self.tp + self.fp

    def __add__(self, other: KindScore) -> KindScore:
        return KindScore(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_dict(self) -> dict[str, float]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass
class Scores:
    """Per-kind scores (``twitch``, ``leg_movement``, ``contraction``, ``any``) and matched onset errors.

    Scores of several nights add up (``sum(list_of_scores, Scores())``): counts are summed, so the
    ratios are micro-averaged over the nights.
    """

    by_kind: dict[str, KindScore] = field(default_factory=lambda: {k: KindScore() for k in SCORE_KINDS})
    #: Signed onset errors (detected - truth, s) of the matched pairs, per kind.
    onset_errors: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in SCORE_KINDS})

    def __getitem__(self, kind: str) -> KindScore:
        return self.by_kind[kind]

    def __add__(self, other: Scores) -> Scores:
        return Scores(
            {k: self.by_kind[k] + other.by_kind[k] for k in SCORE_KINDS},
            {k: self.onset_errors[k] + other.onset_errors[k] for k in SCORE_KINDS},
        )

    def __radd__(self, other: Any) -> Scores:
        if other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    @property
    def mean_f1(self) -> float:
        """Mean F1 over the three counted kinds (``any`` excluded)."""
        return float(np.mean([self.by_kind[k].f1 for k in KINDS_COUNTED]))

    def onset_mae(self, kind: str) -> float:
        """Mean absolute onset error of the matched pairs of ``kind`` (nan when none matched)."""
        e = self.onset_errors[kind]
        return float(np.mean(np.abs(e))) if e else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: self.by_kind[k].to_dict() for k in SCORE_KINDS}
        for k in SCORE_KINDS:
            d[k]["onset_mae_s"] = self.onset_mae(k)
        d["mean_f1"] = self.mean_f1
        return d


def _arrays(events: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    s = np.array([float(_get(e, "start")) for e in events], dtype=np.float64)
    e = np.array([float(_get(e, "end")) for e in events], dtype=np.float64)
    return s, np.maximum(e, s)


def match_events(
    detected: Sequence[Any],
    truth: Sequence[Any],
    *,
    onset_tolerance_s: float = 1.0,
    min_overlap: float = 0.5,
    slack_s: float | None = None,
) -> list[tuple[int, int]]:
    """One-to-one matching of ``detected`` to ``truth`` regardless of kind (see the module docstring).

    ``slack_s`` switches to the slack rule: a pair is admissible when the two overlap or lie at most
    ``slack_s`` apart (onset and overlap rules then unused).
    Returns ``(detected_index, truth_index)`` pairs, sorted by truth index.
    """
    nd, nt = len(detected), len(truth)
    if nd == 0 or nt == 0:
        return []
    ds, de = _arrays(detected)
    ts, te = _arrays(truth)
    order = np.argsort(ds, kind="stable")
    ds_sorted = ds[order]
    max_dur = float(np.max(de - ds))
    eps = 1e-9
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    costs: list[np.ndarray] = []
    for j in range(nt):
        # Any admissible detection starts in [ts - tol - max_dur, max(te, ts + tol)].
        reach = onset_tolerance_s if slack_s is None else slack_s
        lo = np.searchsorted(ds_sorted, ts[j] - reach - max_dur - eps, "left")
        hi = np.searchsorted(ds_sorted, max(te[j], ts[j]) + reach + eps, "right")
        if hi <= lo:
            continue
        cand = order[lo:hi]
        donset = np.abs(ds[cand] - ts[j])
        inter = np.clip(np.minimum(de[cand], te[j]) - np.maximum(ds[cand], ts[j]), 0.0, None)
        union = (de[cand] - ds[cand]) + (te[j] - ts[j]) - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        if slack_s is None:
            ok = (donset <= onset_tolerance_s + eps) | (iou >= min_overlap - eps)
        else:
            ok = (ds[cand] <= te[j] + slack_s + eps) & (de[cand] >= ts[j] - slack_s - eps)
        if not ok.any():
            continue
        rows.append(cand[ok])
        cols.append(np.full(int(ok.sum()), j))
        costs.append(donset[ok] + (1.0 - iou[ok]))
    if not rows:
        return []
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    w = np.concatenate(costs)
    # Connected components of the bipartite graph (detections 0..nd-1, truth nd..nd+nt-1): each is solved
    # on its own, which keeps the assignment problems tiny.
    graph = coo_matrix((np.ones(len(r)), (r, nd + c)), shape=(nd + nt, nd + nt))
    _, label = connected_components(graph, directed=False)
    comp = label[r]
    pairs: list[tuple[int, int]] = []
    big = 1e6
    for lab in np.unique(comp):
        sel = np.flatnonzero(comp == lab)
        if len(sel) == 1:
            pairs.append((int(r[sel[0]]), int(c[sel[0]])))
            continue
        ud, ri = np.unique(r[sel], return_inverse=True)
        ut, ci = np.unique(c[sel], return_inverse=True)
        m = np.zeros((len(ud), len(ut)))
        # Admissible pairs cost (small cost - big): the assignment first maximises the number of
        # admissible pairs, then minimises their total cost; inadmissible cells (0) are dropped after.
        m[ri, ci] = w[sel] - big
        a, b = linear_sum_assignment(m)
        for x, y in zip(a, b, strict=True):
            if m[x, y] < 0:
                pairs.append((int(ud[x]), int(ut[y])))
    pairs.sort(key=lambda p: p[1])
    return pairs


def _in_window(events: Iterable[Any], window: tuple[float, float] | None) -> list[Any]:
    if window is None:
        return list(events)
    a, b = window
    return [e for e in events if a <= float(_get(e, "start")) < b]


def score(
    detected: Sequence[Any],
    truth: Sequence[Any],
    *,
    onset_tolerance_s: float = 1.0,
    min_overlap: float = 0.5,
    window: tuple[float, float] | None = None,
    slack_s: float | None = None,
) -> Scores:
    """Score ``detected`` against ``truth`` per counted kind and for ``any`` (see the module docstring).

    ``window=(a, b)`` keeps only events (on both sides) whose onset lies in ``[a, b)``. ``slack_s``
    scores by the slack rule instead (see :func:`match_events`; :data:`JUDGED_SLACK_S` is how the
    project is judged from outside: event by event, +-0.5 s, pooled per kind).
    """
    det = [e for e in _in_window(detected, window) if _get(e, "kind") in KINDS_COUNTED]
    tru = [e for e in _in_window(truth, window) if _get(e, "kind") in KINDS_COUNTED]
    out = Scores()
    for kind in SCORE_KINDS:
        d = det if kind == "any" else [e for e in det if _get(e, "kind") == kind]
        g = tru if kind == "any" else [e for e in tru if _get(e, "kind") == kind]
        pairs = match_events(d, g, onset_tolerance_s=onset_tolerance_s, min_overlap=min_overlap, slack_s=slack_s)
        tp = len(pairs)
        out.by_kind[kind] = KindScore(tp, len(d) - tp, len(g) - tp)
        out.onset_errors[kind] = [float(_get(d[i], "start")) - float(_get(g[j], "start")) for i, j in pairs]
    return out


def format_table(scores: Scores, title: str | None = None) -> str:
    """A plain-text table: one row per kind with counts, precision, recall, F1 and onset error."""
    head = (
        f"{'kind':<13} {'truth':>6} {'det':>6} {'tp':>6} {'fp':>6} {'fn':>6} "
        f"{'prec':>6} {'recall':>6} {'F1':>6} {'onset MAE':>9}"
    )
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for k in SCORE_KINDS:
        s = scores[k]
        mae = scores.onset_mae(k)
        mae_s = f"{mae:8.2f}s" if np.isfinite(mae) else f"{'-':>9}"
        lines.append(
            f"{k:<13} {s.n_truth:>6} {s.n_detected:>6} {s.tp:>6} {s.fp:>6} {s.fn:>6} "
            f"{s.precision:>6.3f} {s.recall:>6.3f} {s.f1:>6.3f} {mae_s}"
        )
    lines.append(f"mean F1 over {', '.join(KINDS_COUNTED)}: {scores.mean_f1:.3f}")
    return "\n".join(lines)


def periodic_series_flags(
    events: Sequence[Any],
    *,
    min_count: int = SERIES_MIN,
    min_imi_s: float = IMI_MIN_S,
    max_imi_s: float = IMI_MAX_S,
) -> list[bool]:
    """WASM periodic flag for each event (aligned with ``events``), by :class:`detector.periodic.SeriesRule`
    (the rule the streaming detector runs): only ``leg_movement`` events of 0.5-10 s can be True;
    ``contraction``, ``posture_change``, ``out_of_bed`` and over-long leg movements end a series; all
    other kinds are ignored.
    """
    flags = [False] * len(events)
    seq: list[tuple[float, int, str]] = []  # (onset, index, role)
    for i, e in enumerate(events):
        r = role(str(_get(e, "kind")), float(_get(e, "end")) - float(_get(e, "start")))
        if r != "ignore":
            seq.append((float(_get(e, "start")), i, r))
    # breakers before candidates at the same onset, as the stream releases them in onset order
    seq.sort(key=lambda x: (x[0], x[2] != "breaker", x[1]))
    onsets = {i: o for o, i, _ in seq}
    rule: SeriesRule[int] = SeriesRule(
        onsets.__getitem__, min_count=min_count, min_imi_s=min_imi_s, max_imi_s=max_imi_s
    )
    decided: list[tuple[int, bool]] = []
    for _, i, r in seq:
        decided += rule.candidate(i) if r == "candidate" else rule.close()
    decided += rule.close()
    for i, flag in decided:
        flags[i] = flag
    return flags


def plm_index(events: Sequence[Any], sleep_start: float, sleep_end: float) -> float:
    """Periodic leg movements (their own ``periodic`` flag) with onset in the sleep window, per hour."""
    hours = (sleep_end - sleep_start) / 3600.0
    if hours <= 0:
        return float("nan")
    n = sum(
        1
        for e in events
        if _get(e, "kind") == "leg_movement"
        and bool(_get(e, "periodic", False))
        and sleep_start <= float(_get(e, "start")) < sleep_end
    )
    return n / hours


@dataclass
class PeriodicScores:
    """Periodic leg movements scored as a class of their own, plus the PLM index both ways.

    ``events``: detections flagged periodic vs truth leg movements flagged periodic, matched as in
    :func:`score`. ``flag_agreement``: among matched leg movements (kind ``leg_movement`` on both
    sides), the fraction whose periodic flags agree (nan when none matched).
    """

    events: KindScore
    flag_agreement: float
    index_truth: float
    index_detected: float
    n_matched_lm: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f"periodic_{k}": v for k, v in self.events.to_dict().items()},
            "flag_agreement": self.flag_agreement,
            "plm_index_truth": self.index_truth,
            "plm_index_detected": self.index_detected,
        }


def score_periodic(
    detected: Sequence[Any],
    truth: Sequence[Any],
    *,
    sleep_start: float,
    sleep_end: float,
    onset_tolerance_s: float = 1.0,
    min_overlap: float = 0.5,
) -> PeriodicScores:
    """Score the periodic flag and the PLM index of ``detected`` against ``truth``.

    Both indices use the *truth* sleep window, so the comparison isolates movement detection and
    series building from sleep-window detection. Truth periodic flags are taken as given.
    """
    d_lm = [e for e in detected if _get(e, "kind") == "leg_movement"]
    t_lm = [e for e in truth if _get(e, "kind") == "leg_movement"]
    d_per = [e for e in d_lm if _get(e, "periodic", False)]
    t_per = [e for e in t_lm if _get(e, "periodic", False)]
    pairs = match_events(d_per, t_per, onset_tolerance_s=onset_tolerance_s, min_overlap=min_overlap)
    ev = KindScore(len(pairs), len(d_per) - len(pairs), len(t_per) - len(pairs))
    lm_pairs = match_events(d_lm, t_lm, onset_tolerance_s=onset_tolerance_s, min_overlap=min_overlap)
    agree = [bool(_get(d_lm[i], "periodic", False)) == bool(_get(t_lm[j], "periodic", False)) for i, j in lm_pairs]
    return PeriodicScores(
        events=ev,
        flag_agreement=float(np.mean(agree)) if agree else float("nan"),
        index_truth=plm_index(truth, sleep_start, sleep_end),
        index_detected=plm_index(detected, sleep_start, sleep_end),
        n_matched_lm=len(lm_pairs),
    )
