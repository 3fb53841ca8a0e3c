"""Where the twitch errors come from, per generator: false twitches by what lay under them, missed
twitches by what happened to them, and for each the gate that decided.

    python benchmarks/twitch_errors.py [--generator all|synthetic|physio|field] [--nights 9] [--hours 2]
                                       [--rates 26,52,104] [--split tune|held] [--seed-offset N]
                                       [--list] [--cache DIR] [--dump FILE]

Nights, seeds, detection and the judged matching (+-0.5 s slack) are those of ``accuracy.py``. The
detector is run as ``detect_arrays`` runs it, with the scored frames and every candidate event the
assembler judged (its frame span and the episode it gave, or None) recorded on the side; nothing
is fed back. Classes:

* false twitch: the truth or confounder it lay on (``partner``, ``sitting_up``, ``leg_movement``, ...),
  else ``noise``;
* missed twitch: ``called <kind>`` (another counted kind detected over it), ``timing`` (a twitch
  detected near it, unmatched), else what the frames of the truth span (+-0.3 s) show: ``below
  threshold`` (fewer than two active frames), or the gate of ``episodes`` that dropped the candidate
  covering it (``iso``: busy second around, ``jerk``: under ``TWITCH_MIN_JERK``, ``bounce``:
  ``bounce.mattress_bounce``, ``long``: a candidate of 0.5 s or more dropped as vibration) or
  ``merged`` (inside a longer detected episode of another kind, not counted: posture change, ...).

``--dump FILE`` writes one JSON row per false and missed twitch, and per truth twitch found, with the
features taken (peak jerk over the floor, share across gravity, the second around, the spread after),
for the rules tried in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import GENERATORS, RATES, fixed_nights, nights_asked, overlapping
from durations import cached_night

from detector import episodes as ep_mod
from detector.bounce import AFTER_S, mattress_bounce
from detector.frames import FRAME_S
from detector.offline import OFFLINE_BATCH
from detector.scoring import JUDGED_SLACK_S, match_events
from detector.stream import StreamDetector
from detector.thresholds import Scored, concat_scored

PAD_S = 0.3  # frames this far around a truth twitch are looked at


def instrumented_detect(t: np.ndarray, xyz: np.ndarray) -> tuple[Any, Scored, list[tuple[float, float, Any]]]:
    """``detect_arrays``, with the scored frames and the assembler's candidates (t0, t1, result)."""
    det = StreamDetector()
    scored: list[Scored] = []
    cands: list[tuple[float, float, Any]] = []
    th_push, th_flush = det.thresholds.push, det.thresholds.flush

    def push(feats):
        s = th_push(feats)
        scored.append(s)
        return s

    def flush():
        s = th_flush()
        scored.append(s)
        return s

    det.thresholds.push, det.thresholds.flush = push, flush
    asm = det.assembler
    orig = asm._episode

    def episode(p0, p1, fl, axis):
        e = orig(p0, p1, fl, axis)
        idx = asm.buf.feats.idx
        cands.append(((idx[p0] + 0.5) * FRAME_S, (idx[p1] + 0.5) * FRAME_S, e, candidate_features(asm.buf, p0, p1)))
        return e

    asm._episode = episode
    for i in range(0, len(t), OFFLINE_BATCH):
        det.push(t[i : i + OFFLINE_BATCH], xyz[i : i + OFFLINE_BATCH])
    _, night = det.finish()
    return night, concat_scored(scored), cands


def candidate_features(buf: Scored, p0: int, p1: int) -> dict[str, Any]:
    """The quantities the twitch branch of ``EpisodeAssembler._episode`` reads, over frames p0..p1."""
    f, idx = buf.feats, buf.feats.idx
    sl = slice(p0, p1 + 1)
    a0, a1 = np.searchsorted(idx, (idx[p1] + 1, idx[p1] + 1 + round(AFTER_S / FRAME_S)), side="left")
    around = np.r_[
        max(0, p0 - ep_mod.ISO_FRAMES) : max(0, p0 - 1), min(len(idx), p1 + 2) : min(len(idx), p1 + ep_mod.ISO_FRAMES)
    ]
    act = np.flatnonzero(buf.active[sl])
    last = p0 + int(act[-1]) if len(act) else p1
    b0, b1 = np.searchsorted(idx, (idx[last] + 1, idx[last] + 1 + round(AFTER_S / FRAME_S)), side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        sd, sd_perp = np.nan_to_num(f.sd[sl]), np.nan_to_num(f.sd_perp[sl])
        return {
            "c_jerk": float(np.nanmax(f.sd_perp[sl] / buf.floor_sd[sl])) if p1 >= p0 else np.nan,
            "c_perp": float(sd_perp.max() / sd.max()) if sd.max() > 0 else np.nan,
            "c_iso": float(np.nanmedian(f.sd_perp[around] / buf.floor_sd[around])) if len(around) else np.nan,
            "c_after": (f.sd[a0:a1] / buf.floor_sd[a0:a1]).tolist(),
            "c_after_act": (f.sd[b0:b1] / buf.floor_sd[b0:b1]).tolist(),
            "c_held": int(p1 - last),
            "c_n": float(np.nanmedian(f.n[sl])),
            "c_tilt": float(np.nanmax(f.tilt[sl] / buf.floor_tilt[sl])),
            "c_active": int(buf.active[sl].sum()),
        }


def _cand_of(cands, t0: float, t1: float) -> dict[str, Any]:
    """The features of the candidate overlapping [t0, t1] most (empty if none)."""
    best, ov = {}, 0.0
    for c0, c1, _, feats in cands:
        o = min(c1 + 0.1, t1 + PAD_S) - max(c0 - 0.1, t0 - PAD_S)
        if o > ov:
            best, ov = {**feats, "c_dur": c1 - c0}, o
    return best


def frame_features(sc: Scored, t0: float, t1: float) -> dict[str, float]:
    """What the frames over [t0, t1] (+-PAD_S) show, as the twitch gates of ``episodes`` read them."""
    f = sc.feats
    ft = (f.idx + 0.5) * FRAME_S
    lo, hi = np.searchsorted(ft, (t0 - PAD_S, t1 + PAD_S))
    if hi <= lo:
        return {"n_active": 0, "jerk": np.nan, "score": np.nan}
    sl = slice(lo, hi)
    ratio = f.sd_perp[sl] / sc.floor_sd[sl]
    k = lo + int(np.nanargmax(np.nan_to_num(ratio, nan=-1)))
    around = np.r_[
        max(0, lo - ep_mod.ISO_FRAMES) : max(0, lo - 1), min(len(ft), hi + 1) : min(len(ft), hi + ep_mod.ISO_FRAMES)
    ]
    a0, a1 = hi, min(len(ft), hi + round(AFTER_S / FRAME_S))
    with np.errstate(invalid="ignore", divide="ignore"):
        iso = float(np.nanmedian(f.sd_perp[around] / sc.floor_sd[around])) if len(around) else np.nan
        after = f.sd[a0:a1] / sc.floor_sd[a0:a1]
        perp_frac = float(f.sd_perp[k] / f.sd[k]) if f.sd[k] > 0 else np.nan
    return {
        "n_active": int(sc.active[sl].sum()),
        "score": float(np.nanmax(sc.score[sl])),
        "jerk": float(np.nanmax(ratio)),
        "tilt_ratio": float(np.nanmax(f.tilt[sl] / sc.floor_tilt[sl])),
        "iso": iso,
        "perp_frac": perp_frac,
        "after_med": float(np.nanmedian(after)) if np.isfinite(after).any() else np.nan,
        "after_max": float(np.nanmax(after)) if np.isfinite(after).any() else np.nan,
        "bounce": bool(mattress_bounce(f.sd[sl], f.sd_perp[sl], after, float(np.nanmedian(f.n[sl])))),
        "n": float(np.nanmedian(f.n[sl])),
    }


def missed_class(g, det, cands, feats: dict[str, float]) -> str:
    """What happened to a truth twitch no detected twitch matched."""
    near = overlapping(g, det, slack=JUDGED_SLACK_S)
    counted = [o for o in near if o.kind != "twitch" and o.kind in ("leg_movement", "contraction")]
    if any(o.kind == "twitch" for o in near):
        return "timing"
    if counted:
        return f"called {counted[0].kind}"
    if near:
        return f"merged ({near[0].kind})"
    if feats["n_active"] < ep_mod.MIN_ACTIVE_FRAMES:
        return "below threshold"
    mine = [c for c in cands if c[0] < g.end + PAD_S and c[1] > g.start - PAD_S and c[2] is None]
    if not mine:
        return "no candidate"
    c0, c1 = mine[0][0], mine[0][1]
    if c1 - c0 >= ep_mod.TWITCH_MAX_S + 0.2:
        return "long"
    if feats["iso"] > ep_mod.TWITCH_ISO_MAX:
        return "iso"
    if feats["jerk"] < ep_mod.TWITCH_MIN_JERK:
        return "jerk"
    if feats["bounce"]:
        return "bounce"
    return "dropped (other)"


def false_class(e, night) -> str:
    hit = [o.kind for o in overlapping(e, night.events)] + [c.kind for c in overlapping(e, night.confounders)]
    for k in ("partner", "sitting_up", "leg_movement", "contraction", "posture_change", "out_of_bed", "twitch"):
        if k in hit:
            return k
    return hit[0] if hit else "noise"


def run(gen: str, nights: list[tuple[int, float]], hours: float, cache: Path | None, listing: bool, rows: list):
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    n_truth = n_det = 0
    for seed, rate in nights:
        night = cached_night(gen, seed, hours, rate, cache)
        t, xyz = np.round(night.t, 6), np.round(night.xyz, 5)
        res, sc, cands = instrumented_detect(t, xyz)
        det = [e for e in res.episodes if e.kind in ("twitch", "leg_movement", "contraction")]
        tw_d = [e for e in det if e.kind == "twitch"]
        tw_g = [e for e in night.events if e.kind == "twitch"]
        details = night.params.get("event_details") or [{} for _ in night.events]
        det_of = {id(e): details[i] for i, e in enumerate(night.events)} if len(details) == len(night.events) else {}
        n_truth += len(tw_g)
        n_det += len(tw_d)
        pairs = match_events(tw_d, tw_g, slack_s=JUDGED_SLACK_S)
        md, mg = {i for i, _ in pairs}, {j for _, j in pairs}
        for i, e in enumerate(tw_d):
            feats = frame_features(sc, e.start, e.end)
            cls = "true" if i in md else false_class(e, night)
            if i not in md:
                fp[cls] += 1
            rows.append(
                {
                    "gen": gen,
                    "seed": seed,
                    "rate": rate,
                    "t": e.start - night.t[0],
                    "what": "det",
                    "cls": cls,
                    **feats,
                    **_cand_of(cands, e.start, e.end),
                }
            )
            if listing and i not in md:
                print(f"  FP {gen} {seed} {rate:g}Hz t={e.start - night.t[0]:8.2f} {cls:<13} {_fmt(feats)}")
        for j, g in enumerate(tw_g):
            if j in mg:
                continue
            feats = frame_features(sc, g.start, g.end)
            cls = missed_class(g, res.episodes, cands, feats)
            fn[cls] += 1
            info = det_of.get(id(g), {})
            style = info.get("context") or ("strong" if info.get("strong") else "gentle" if info else "-")
            rows.append(
                {
                    "gen": gen,
                    "seed": seed,
                    "rate": rate,
                    "t": g.start - night.t[0],
                    "what": "missed",
                    "cls": cls,
                    "style": str(style),
                    "resolvable": info.get("resolvable"),
                    **feats,
                    **_cand_of(cands, g.start, g.end),
                }
            )
            if listing:
                print(
                    f"  FN {gen} {seed} {rate:g}Hz t={g.start - night.t[0]:8.2f} {cls:<18} {style!s:<10} {_fmt(feats)}"
                )
    print(f"== {gen}: {n_truth} truth twitches, {n_det} detected")
    print("  false twitches: " + ", ".join(f"{k} {v}" for k, v in fp.most_common()) + f" (total {sum(fp.values())})")
    print("  missed twitches: " + ", ".join(f"{k} {v}" for k, v in fn.most_common()) + f" (total {sum(fn.values())})")


def _fmt(f: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in f.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", default="all", choices=[*GENERATORS, "all"])
    ap.add_argument("--nights", type=int, default=9)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES))
    ap.add_argument("--split", choices=("tune", "held"), default="tune")
    ap.add_argument("--seed-offset", type=int)
    ap.add_argument("--list", action="store_true", help="list every false and missed twitch")
    ap.add_argument("--cache", type=Path, help="keep generated nights in this folder")
    ap.add_argument("--dump", type=Path, help="write the rows (JSON lines) here")
    args = ap.parse_args(argv)
    rates, offset = nights_asked(ap, args)
    gens = GENERATORS if args.generator == "all" else (args.generator,)
    rows: list[dict[str, Any]] = []
    for gen in gens:
        run(gen, fixed_nights(args.nights, rates, offset), args.hours, args.cache, args.list, rows)
    if args.dump:
        args.dump.write_text("".join(json.dumps(r, default=float) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
