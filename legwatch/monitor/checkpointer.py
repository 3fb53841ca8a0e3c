"""Incremental checkpoints of the monitor's streams, and where a restart resumes each of them.

Every ``CHECKPOINT_TICK_S`` (when the worker is between batches) a *tick* starts a new journal
segment n, saves the few streams whose state on disk is oldest (each at least once per
``checkpoint_s``; a stream with no message since its last save needs no new file), each saying
"replay my messages from segment n on", and saves the small global state (the nights that ended,
and where each live stream's replay starts). Encoding happens under the monitor's lock (consistent
with the journal); a background thread writes the files in order: the stream files, then the global
file, then it removes the files of ended streams and the journal segments that no file needs any
more. A crash at any point leaves a state that ``restore`` resumes exactly.

A restart (``restore``) takes, per sensor, the newest valid of its stream file and what the global
file says about it; the monitor then replays each journaled message only for a sensor whose replay
starts at or before the message's segment (so an ended night is never started again from older
segments that other streams still need), then saves everything once.
"""

from __future__ import annotations

import heapq
import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from legwatch.monitor.checkpoint_files import Checkpoints, encode_state, encode_stream
from legwatch.monitor.journal import Journal
from legwatch.monitor.router import Router, SensorStream

log = logging.getLogger("legwatch.monitor")

#: How often (at most) the worker checkpoints a few streams; a quarter of ``checkpoint_s`` if shorter.
CHECKPOINT_TICK_S = 0.25
#: Encoding time per tick after which the streams that are not yet due wait for the next tick.
CHECKPOINT_BUDGET_S = 0.01
#: Checkpoint writes that may wait for the writer thread; beyond that ticks are skipped.
CHECKPOINT_QUEUE_MAX = 4

Ended = tuple[int | None, float | None]


@dataclass
class _Job:
    """What one tick writes, in this order (see ``Checkpointer._write``)."""

    files: list[tuple[str, bytes]]  # (sensor, encoded stream checkpoint)
    state: bytes  # the encoded global state
    gone: list[str]  # sensors whose stream file goes once the global state is durable
    drop_before: int  # journal segments below this one are no longer needed then
    keep: list[str] | None  # a full checkpoint: every stream file but these goes


def _ended(v: Any) -> Ended | None:
    return None if v is None else (None if v[0] is None else int(v[0]), None if v[1] is None else float(v[1]))


class Checkpointer:
    def __init__(
        self,
        router: Router,
        journal: Journal,
        checkpoints: Checkpoints,
        stats: Counter[str],
        *,
        checkpoint_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.router = router
        self.journal = journal
        self.checkpoints = checkpoints
        self.stats = stats
        self.checkpoint_s = checkpoint_s
        self.tick_s = min(CHECKPOINT_TICK_S, checkpoint_s / 4)
        self.clock = clock
        self.last = clock()
        #: the first journal segment a restart may need
        self.journal_from = journal.segment
        #: live stream -> where a restart finds it: ("file", segment its file starts at, replay from)
        #: or ("absent", replay from, its ``ended`` entry then) for a stream created since it was saved
        self.bases: dict[str, tuple] = {}
        #: sensor -> since when (checkpoint clock) its state on disk is behind: a message was handled
        self._dirty: dict[str, float] = {}
        #: sensors with a stream file on disk (or on its way there)
        self._files: set[str] = set()
        #: the segment the last tick started, and the ended nights then (the base of newer streams)
        self._tick_segment = journal.segment
        self._tick_ended: dict[str, Ended] = {}
        self._jobs: queue.Queue = queue.Queue()
        self._writer: threading.Thread | None = None
        self._broken = False  # a write failed: only a full checkpoint puts the files right again
        self._retry_at = 0.0

    def mark(self, sensor: str) -> None:
        """A message of ``sensor`` was handled: its stream on disk may be behind from now on."""
        if sensor not in self._dirty:
            self._dirty[sensor] = self.clock()

    # -- ticks (call with the monitor's lock held and no unstored results) --------------------
    def maybe_tick(self) -> None:
        now = self.clock()
        if now - self.last < self.tick_s:
            return
        if self._broken:  # a write failed: everything again, but not at every tick
            if now >= self._retry_at:
                self._retry_at = now + self.checkpoint_s
                self.tick(wait=False)
            return
        if not self.journal.appended and not self._dirty:
            self.last = now  # nothing happened since the last tick
            return
        if self._jobs.unfinished_tasks >= CHECKPOINT_QUEUE_MAX:
            return  # the disk is behind: the streams wait for a later tick
        self.tick(wait=False, streams=self.quota())

    def quota(self) -> int:
        """How many streams a tick saves (more when overdue): every one within 0.8 ``checkpoint_s``."""
        streams = self.router.streams
        if self.checkpoint_s <= 0:
            return len(streams)
        elapsed = min(self.clock() - self.last, self.checkpoint_s)
        return math.ceil(len(streams) * elapsed / (0.8 * self.checkpoint_s))

    def tick(self, wait: bool = True, streams: int | None = None) -> None:
        """A new journal segment n, then ``streams`` streams saved (None: every stream), oldest state
        on disk first, plus every one overdue, each as "replay from segment n on", and the global
        state as of n. Files are written by the writer thread unless ``wait``."""
        live, ended_now = self.router.streams, self.router.ended
        full = streams is None or self._broken
        nxt = self.journal.rotate()
        now = self.clock()
        bases = self.bases
        for s in [s for s in bases if s not in live]:
            del bases[s]  # its night ended: the global state says so as of nxt
        for s in [s for s in self._dirty if s not in live]:
            del self._dirty[s]
        for s in live:
            if s not in bases:  # created since the last tick, where it was absent
                bases[s] = ("absent", self._tick_segment, self._tick_ended.get(s))
        if full:
            order = list(live)
        else:
            order = [s for _, s in heapq.nsmallest(len(self._dirty), ((t, s) for s, t in self._dirty.items()))]
        due = now - max(self.checkpoint_s - 2 * self.tick_s, 0.0)
        files = []
        t0 = time.perf_counter()
        for s in order:
            if (
                not full
                and self._dirty[s] > due
                and (len(files) >= streams or time.perf_counter() - t0 > CHECKPOINT_BUDGET_S)
            ):
                break
            ended_s = ended_now.get(s)  # a new night may start before the last one's entry goes
            rec = {
                "sensor": s,
                "journal_from": nxt,
                "stream": live[s].state(),
                "ended": None if ended_s is None else list(ended_s),
            }
            files.append((s, encode_stream(rec)))
            bases[s] = ("file", nxt, nxt)
            self._dirty.pop(s, None)
        for s, b in bases.items():
            if b[0] == "file" and s not in self._dirty:
                bases[s] = ("file", b[1], nxt)  # no message since its file was written: still its state
        gone = [s for s in self._files if s not in live]
        self._files.difference_update(gone)
        self._files.update(s for s, _ in files)
        ended = dict(ended_now)
        state = {"journal_from": nxt, "ended": ended, "bases": dict(bases)}
        drop = min([nxt, *(b[2] if b[0] == "file" else b[1] for b in bases.values())])
        job = _Job(files, encode_state(state), gone, drop, list(live) if full else None)
        self._tick_segment, self._tick_ended = nxt, ended
        if wait:
            self._jobs.join()  # checkpoints are written in order
            self._write(job)
        else:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_jobs, name="monitor-checkpoint", daemon=True)
                self._writer.start()
            self._jobs.put(job)
        self.journal_from = drop
        self.last = now
        self.stats["checkpoints"] += 1
        self.stats["streams_checkpointed"] += len(files)

    def wait_written(self) -> None:
        """Until the writer thread has written every tick so far."""
        self._jobs.join()

    def close(self) -> None:
        self._jobs.join()
        if self._writer is not None:
            self._jobs.put(None)

    def _write_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._write(job)
            finally:
                self._jobs.task_done()

    def _write(self, job: _Job) -> None:
        if self._broken and job.keep is None:
            return  # an earlier write failed: the bases of this one may name files that are not there
        try:
            for sensor, blob in job.files:
                self.checkpoints.save_stream_bytes(sensor, blob)
            if job.files:
                self.checkpoints.sync_streams()
            self.checkpoints.save_bytes(job.state)
            if job.keep is not None:
                self.checkpoints.remove_streams_except(job.keep)
                if self._broken:
                    log.warning("checkpoints are written again")
                self._broken = False
            else:
                self.checkpoints.remove_streams(job.gone)
            self.journal.drop_before(job.drop_before)
        except Exception as exc:  # a full disk, an I/O error: the journal keeps everything meanwhile
            if not self._broken:
                log.error("writing a checkpoint failed (%s); the journal is kept and every stream saved again", exc)
            self._broken = True

    # -- a restart -----------------------------------------------------------------------------
    def restore(self) -> tuple[int, dict[str, int], bool]:
        """Put the checkpointed streams and ended nights into the router. Returns the segment the
        replay of sensors the files do not name starts at, the replay start per named sensor, and
        whether any checkpoint was found."""
        router = self.router
        saved = self.checkpoints.load()
        files: dict[str, dict[str, Any]] = {}
        for s, f in self.checkpoints.load_streams().items():
            try:
                files[s] = {**f, "stream": SensorStream.from_state(f["stream"]), "ended": _ended(f.get("ended"))}
            except (KeyError, TypeError, ValueError) as exc:
                log.error("stream checkpoint %s cannot be read (%s); ignored", self.checkpoints.stream_path(s), exc)
        default = 0  # where the replay of sensors the global state does not name starts
        bases: dict[str, tuple] = {}
        if saved is not None:
            default = int(saved.get("journal_from", 0))
            router.ended = {s: _ended(v) for s, v in dict(saved.get("ended", {})).items()}
            for s, b in dict(saved.get("bases", {})).items():
                bases[s] = (b[0], b[1], b[2] if b[0] == "file" else _ended(b[2]))
        elif files:
            log.error("the global checkpoint is missing; resuming from %d stream file(s) and the journal", len(files))
        start_at: dict[str, int] = {}
        for s in set(bases) | set(files):
            base, f = bases.get(s), files.get(s)
            if base is not None and base[0] == "file":
                _, file_from, replay_from = base
                if f is None:
                    log.error("the checkpoint of stream %s is missing; replaying what the journal holds of it", s)
                    router.streams.pop(s, None)
                    start_at[s] = 0
                    continue
                if f["journal_from"] < file_from:
                    log.error("the checkpoint of stream %s is older than the global state says; using it anyway", s)
                start = replay_from if f["journal_from"] == file_from else f["journal_from"]
            else:
                if base is not None:  # created after a tick: absent then
                    _, replay_from, ended = base
                    router.streams.pop(s, None)
                    if ended is None:
                        router.ended.pop(s, None)
                    else:
                        router.ended[s] = ended
                else:  # absent as of the global state
                    replay_from = default
                start_at[s] = replay_from
                newer = f is not None and (f["journal_from"] > replay_from or saved is None)
                if not newer:
                    continue  # no file, or one of an earlier night that was not removed yet
                start = f["journal_from"]  # written after the global state: newer than it
            router.streams[s] = f["stream"]
            if f["ended"] is None:
                router.ended.pop(s, None)
            else:
                router.ended[s] = f["ended"]
            start_at[s] = start
        return default, start_at, bool(saved is not None or files)
