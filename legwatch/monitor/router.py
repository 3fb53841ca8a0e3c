"""The monitor's rules, apart from its I/O: one MQTT message in, what it means out.

``Router.route(message)`` decodes the message (a sample batch, a sensor status or a habit message),
runs sample batches through the sensor's ``StreamDetector`` and answers with a ``Routed``: the
points to store, the episode events and dead letters to publish once they are stored, a habit entry
to place, and the end of a night. It reads no clock but the wall time of a last will, touches no
network, store or file; the service (``service.Monitor``) journals, stores, acknowledges and
publishes around it. Every message is acknowledged once its results are durable, set-aside ones too.

Per sensor it keeps the stream (detector state, last sequence number, batches) and, once a night
ended, where that night ended, so the broker's redeliveries of a finished night are recognised and
dropped instead of starting a phantom stream.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detector.events import Gap
from detector.stream import Night, StreamDetector, Update
from legwatch.contracts import ack, payload, status, topics
from legwatch.contracts.config import Config
from legwatch.habits import HabitEntry, HabitError, entry_from_message
from legwatch.monitor.acks import BROKER_DROPPED, AckRules
from legwatch.monitor.sequence import AckState, after, inc
from legwatch.storage import Point, schema

log = logging.getLogger("legwatch.monitor")

#: Timestamps outside these bounds (2000-01-01 .. 2100-01-01) are a broken sensor clock, not data.
EARLIEST_T = 946684800.0
LATEST_T = 4102444800.0
#: The topic leaves under ``<prefix>/<sensor>/`` the monitor reads.
LEAVES = ("samples", "status", "sender")


@dataclass
class SensorStream:
    """One sensor's night in progress."""

    detector: StreamDetector = field(default_factory=StreamDetector)
    last_seq: int | None = None
    batches: int = 0
    #: wall time of the publisher's last will ("offline" without a time stamp), until data comes again
    will_since: float | None = None
    #: end-to-end acknowledgement bookkeeping (``sequence``)
    seq: AckState = field(default_factory=AckState)
    #: the time of the last sample handled, and samples in the last batch (for messages)
    last_t: float | None = None
    batch_len: int = 0

    def state(self) -> dict[str, Any]:
        """Plain data (see ``StreamDetector.state``) for a checkpoint."""
        return {
            "detector": self.detector.state(),
            "last_seq": self.last_seq,
            "batches": self.batches,
            "will_since": self.will_since,
            "seq": self.seq.state(),
            "last_t": self.last_t,
            "batch_len": self.batch_len,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SensorStream:
        return cls(
            detector=StreamDetector.from_state(state["detector"]),
            last_seq=None if state["last_seq"] is None else int(state["last_seq"]),
            batches=int(state["batches"]),
            will_since=None if state["will_since"] is None else float(state["will_since"]),
            seq=AckState.from_state(state.get("seq")),
            last_t=None if state.get("last_t") is None else float(state["last_t"]),
            batch_len=int(state.get("batch_len", 0)),
        )


@dataclass(frozen=True)
class NightEnd:
    """A night that ends with this message: stored, it becomes ``Router.ended`` (``commit_night``)."""

    subject: str
    sensor: str
    night: Night
    last_seq: int | None
    #: the sender's session (end-to-end acknowledgement), None for a publisher without
    session: str | None = None


@dataclass
class Routed:
    """What one message means."""

    points: list[Point] = field(default_factory=list)
    #: (topic, JSON body) to publish once the points are stored: episode events, dead letters
    publish: list[tuple[str, str]] = field(default_factory=list)
    #: a habit entry (subject, entry) to place against what the store holds
    habit: tuple[str, HabitEntry] | None = None
    night_end: NightEnd | None = None
    #: sensors whose acknowledgement (``Router.watermark``) to publish once the points are stored
    acks: set[str] = field(default_factory=set)


def _dead_letter(prefix: str, sensor: str, topic: str, kind: str, message: str, data: bytes) -> tuple[str, str]:
    doc = {"topic": topic, "reason": kind, "message": message, "hex": bytes(data[:512]).hex()}
    return topics.deadletter(prefix, sensor), json.dumps(doc)


class Router(AckRules):
    def __init__(self, cfg: Config, stats: Counter[str] | None = None) -> None:
        self.cfg = cfg
        self.prefix: str = cfg["mqtt.topic_prefix"]
        self.sensors = [s.strip() for s in cfg["monitor.sensors"].split(",") if s.strip()] or ["+"]
        self.will_grace_s = float(cfg.values.get("monitor.will_grace_s", 300.0))
        self.streams: dict[str, SensorStream] = {}
        #: sensor -> (last sequence number, last sample time) of its last finished night
        self.ended: dict[str, tuple[int | None, float | None]] = {}
        self.stats: Counter[str] = Counter() if stats is None else stats
        self.rejected: Counter[str] = Counter()
        self.nights: list[tuple[str, str, Night]] = []
        #: sensor -> (session, first) a sender announced before its stream started
        self.announced: dict[str, tuple[str, int | None]] = {}
        #: sensor -> (session, last sequence number) of its last finished night
        self.ended_sessions: dict[str, tuple[str, int | None]] = {}
        #: sensor -> "online", "offline" or "lost" (its last will), for the progress lines
        self.presence: dict[str, str] = {}

    # -- which messages are ours -------------------------------------------------------------
    def topic_filters(self) -> list[str]:
        """The MQTT subscriptions of this configuration."""
        wanted = []
        for s in self.sensors:
            wanted += [topics.samples(self.prefix, s), topics.status(self.prefix, s), topics.sender(self.prefix, s)]
        wanted.append(topics.habits(self.prefix))  # habit log messages (phone, Home Assistant)
        return wanted

    def follows(self, sensor: str) -> bool:
        return "+" in self.sensors or sensor in self.sensors

    def sensor_of(self, topic: str) -> str | None:
        """The sensor whose stream a message on ``topic`` changes (samples and status), else None."""
        parsed = topics.parse(self.prefix, topic)
        if parsed is None or parsed[1] not in LEAVES or not self.follows(parsed[0]):
            return None
        return parsed[0]

    # -- one message -------------------------------------------------------------------------
    def route(self, msg: Any) -> Routed:
        """``msg`` has ``topic``, ``payload``, ``retain`` and ``dup`` (as paho's messages)."""
        out = Routed()
        if msg.topic == topics.habits(self.prefix):
            self._habit(msg, out)
            return out
        parsed = topics.parse(self.prefix, msg.topic)
        if parsed is None:
            return out
        sensor, leaf = parsed
        if leaf not in LEAVES:
            return out
        if not self.follows(sensor):
            # a subscription this configuration no longer has (kept by a persistent session)
            self.stats["ignored"] += 1
            return out
        if leaf == "samples":
            self._samples(sensor, msg, out)
        elif leaf == "sender":
            self._report(sensor, msg, out)
        else:
            self._status(sensor, msg, out)
        return out

    def reject(self, msg: Any, out: Routed, kind: str, message: str, sensor: str | None = None) -> None:
        self.rejected[kind] += 1
        if self.rejected[kind] == 1:
            log.warning("set aside a %s payload on %s: %s (further ones are counted)", kind, msg.topic, message)
        if sensor is None:
            sensor = (topics.parse(self.prefix, msg.topic) or ("unknown", ""))[0]
        out.publish.append(_dead_letter(self.prefix, sensor, msg.topic, kind, message, msg.payload))

    def _samples(self, sensor: str, msg: Any, out: Routed) -> None:
        try:
            batch = payload.decode(msg.payload)
        except payload.PayloadError as exc:
            self.reject(msg, out, exc.kind, str(exc))
            return
        if batch.sensor != sensor:
            self.reject(msg, out, "sensor_mismatch", f"payload sensor {batch.sensor!r} on topic of {sensor!r}")
            return
        first, last = float(batch.t[0]), float(batch.t[-1])
        if not (math.isfinite(first) and math.isfinite(last) and first >= EARLIEST_T and last <= LATEST_T):
            self.reject(msg, out, "bad_time", f"sample times {first!r}..{last!r} are not between 2000 and 2100")
            return
        st = self.streams.get(sensor)
        if st is None:
            ended = self.ended.get(sensor)
            if ended is not None and _of_ended_night(batch, ended):
                # delivered again after a restart: its night is already finished and stored
                self.stats["stale"] += 1
                return
            st = self.streams[sensor] = self._new_stream(sensor)
        seqs = st.seq
        if st.last_seq is not None:
            self._take_lost(sensor, st, out)
            diff = (batch.seq - st.last_seq) % 2**32
            if diff == 0 or diff > 2**31:
                if getattr(msg, "dup", False) or getattr(msg, "journaled", False):
                    # the broker's redelivery of one handled before (the journal keeps both copies
                    # but not the DUP flag: a repeat in it is such a redelivery)
                    self.stats["redelivered"] += 1
                    return
                if seqs.session is not None and seqs.is_resend(batch.seq):
                    self.stats["resent"] += 1  # the sender sent more again than was missing
                    return
                self.reject(msg, out, "duplicate" if diff == 0 else "out_of_order", f"sequence {batch.seq}")
                return
            if diff > 1:
                if seqs.session is not None:
                    self._hole(sensor, st, batch, out)
                    return
                self._skip(
                    sensor,
                    st,
                    inc(st.last_seq),
                    inc(batch.seq, -1),
                    f"{BROKER_DROPPED}, and this publisher does not take part in acknowledgements, so it "
                    "cannot be asked again",
                    out,
                    per_batch=len(batch),
                )
        if seqs.ahead is not None and not after(seqs.ahead, batch.seq):
            log.warning("%s: no batch missing any more (up to %d); the stream goes on", sensor, batch.seq)
            seqs.ahead = None
        if seqs.session is not None:
            out.acks.add(sensor)
        if st.will_since is not None:
            st.will_since = None
            log.info("data from %s again after its connection was lost: the night goes on", sensor)
        st.last_seq = batch.seq
        st.batches += 1
        st.batch_len = len(batch)
        before, st.last_t = st.last_t, last
        up = st.detector.push(batch.t, batch.xyz)
        self.stats["batches"] += 1
        self.stats["samples"] += len(batch)
        reason = seqs.gap_reason
        self._results(sensor, up, out)
        if reason is not None and not up.gaps and before is not None:
            # lost batches shorter than the detector's gap: recorded all the same, with the reason
            out.points.append(schema.gap_point(self.cfg.subject_for(sensor), sensor, Gap(before, first), reason=reason))
        seqs.gap_reason = None  # the gap it explains, if any, came with this batch

    def _results(self, sensor: str, up: Update, out: Routed) -> None:
        subject = self.cfg.subject_for(sensor)
        st = self.streams.get(sensor)
        reason = None
        if st is not None and st.seq.gap_reason is not None and up.gaps:
            reason, st.seq.gap_reason = st.seq.gap_reason, None
        out.points += [schema.episode_point(subject, sensor, e) for e in up.episodes]
        out.points += [schema.activity_point(subject, sensor, e) for e in up.epochs]
        out.points += [schema.gap_point(subject, sensor, g, reason=reason) for g in up.gaps]
        for e in up.episodes:
            self.stats["episodes"] += 1
            event = {"subject": subject, "sensor": sensor, **e.to_dict()}
            out.publish.append((topics.episodes(self.prefix, sensor), json.dumps(event)))

    def _status(self, sensor: str, msg: Any, out: Routed) -> None:
        if not msg.payload:  # an empty message clears a retained status
            return
        try:
            doc = status.parse(msg.payload)
        except status.StatusError as exc:
            self.reject(msg, out, "malformed_status", str(exc))
            return
        health = status.health_fields(doc)
        if health and doc.time is not None and EARLIEST_T <= doc.time <= LATEST_T:  # a `status` point
            out.points.append(schema.status_point(self.cfg.subject_for(sensor), sensor, doc.time, health))
        st = self.streams.get(sensor)
        session = doc.fields.get("session") if ack.valid_session(doc.fields.get("session")) else None
        first, last = _seq_field(doc.fields, "first"), _seq_field(doc.fields, "last")
        if doc.state == "online":
            self.presence[sensor] = "online"
            if not msg.retain and not getattr(msg, "dup", False):
                self.ended.pop(sensor, None)  # a new night may reuse sequence numbers and times
                self.ended_sessions.pop(sensor, None)
            if session is not None and not msg.retain:  # a retained status is old news
                self._announce(sensor, session, first, out)
            if st is not None:
                st.will_since = None
            return
        if doc.state != "offline":
            return
        self.presence[sensor] = "lost" if doc.is_will else "offline"
        if st is None:
            if session is not None and not doc.is_will and not msg.retain and sensor in self.ended:
                # the sender asks again whether its night ended: yes
                self.ended_sessions.setdefault(sensor, (session, self.ended[sensor][0]))
                out.acks.add(sensor)
            return
        if doc.is_will:
            # the publisher's connection was lost (or the broker shut down, which sends every will):
            # it may well come back and go on; the night ends only if it stays away
            if st.will_since is None:
                st.will_since = time.time()
                log.warning(
                    "%s lost its connection (last will); its night ends if no data comes within %.0f s",
                    sensor,
                    self.will_grace_s,
                )
            return
        ours = session is not None and session == st.seq.session
        if ours and last is not None and st.last_seq is not None and after(last, st.last_seq):
            # batches before the end are missing: ask for them first
            st.seq.ahead = last if st.seq.ahead is None or after(last, st.seq.ahead) else st.seq.ahead
            st.seq.expect_resend(st.last_seq)
            out.acks.add(sensor)
            log.warning(
                "%s: its sender ended the night at batch %d, but batches %d-%d did not arrive; asked for them",
                sensor,
                last,
                inc(st.last_seq),
                last,
            )
            return
        self.end_night(sensor, out)
        out.acks.add(sensor)

    def _new_stream(self, sensor: str) -> SensorStream:
        st = SensorStream()
        announced = self.announced.pop(sensor, None)
        if announced is not None:
            st.seq.session, first = announced
            if first is not None:
                st.last_seq = inc(first, -1)  # the sender holds nothing before ``first``
        return st

    # -- nights ------------------------------------------------------------------------------
    def end_night(self, sensor: str, out: Routed) -> None:
        """Flush ``sensor``'s stream into ``out``: its last results, the night point, the ``NightEnd``."""
        st = self.streams[sensor]
        up, night = st.detector.finish()
        subject = self.cfg.subject_for(sensor)
        self._results(sensor, up, out)
        out.points += schema.night_points(subject, sensor, night)
        out.night_end = NightEnd(subject, sensor, night, st.last_seq, st.seq.session)

    def commit_night(self, end: NightEnd) -> None:
        """The night of ``end`` is stored: its stream is gone, its redeliveries are stale from now on."""
        del self.streams[end.sensor]
        self.ended[end.sensor] = (end.last_seq, end.night.end)
        if end.session is not None:
            self.ended_sessions[end.sensor] = (end.session, end.last_seq)
        self.nights.append((end.subject, end.sensor, end.night))
        log.info("night of %s/%s stored: %s", end.subject, end.sensor, end.night.summary()["counts"])

    def abandoned(self, now: float) -> list[str]:
        """Sensors whose publisher left with its last will and did not come back within
        ``will_grace_s`` (a broker restart, a collector restart: they come back sooner)."""
        return [
            s
            for s, st in self.streams.items()
            if st.will_since is not None and now - st.will_since >= self.will_grace_s
        ]

    # -- habits ------------------------------------------------------------------------------
    def _habit(self, msg: Any, out: Routed) -> None:
        """A habit message (validated as ``legwatch log`` validates) becomes ``out.habit``; bad ones are set aside."""
        if not msg.payload:  # an empty message clears a retained one: nothing to log
            return
        try:
            if msg.retain:
                raise HabitError("habit messages must not be retained (it would be logged again on every restart)")
            out.habit = entry_from_message(msg.payload, self.cfg["subject"])
        except (HabitError, ValueError, TypeError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, HabitError) else f"habit message cannot be read: {exc}"
            self.reject_habit(msg, out, reason, first_loud=True)

    def reject_habit(self, msg: Any, out: Routed, reason: str, *, first_loud: bool = False) -> None:
        self.rejected["bad_habit"] += 1
        if first_loud:
            if self.rejected["bad_habit"] == 1:
                log.warning("set aside a habit message: %s (further ones are counted)", reason)
            else:
                log.info("set aside a habit message: %s", reason)
        out.publish.append(_dead_letter(self.prefix, "habits", msg.topic, "bad_habit", reason, msg.payload))


def _seq_field(fields: Mapping[str, Any], key: str) -> int | None:
    v = fields.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 else None


def _of_ended_night(batch: payload.Batch, ended: tuple[int | None, float | None]) -> bool:
    seq, end = ended
    if seq is not None and (seq - batch.seq) % 2**32 >= 2**31:
        return False  # a later sequence number: new data
    return end is None or float(batch.t[0]) <= end
