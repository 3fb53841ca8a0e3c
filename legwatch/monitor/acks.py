"""The router's rules of the end-to-end acknowledgement (``contracts.ack``), as a part of
``router.Router``: a sender's session and reports, holes asked again, ranges nobody has skipped
(recorded as a gap with the reason), and the acknowledgement to publish. Pure, like the router;
the bookkeeping of one stream is ``sequence.AckState``.
"""

from __future__ import annotations

import logging
from typing import Any

from legwatch.contracts import ack, payload
from legwatch.monitor.sequence import after, dist, inc

log = logging.getLogger("legwatch.monitor")

#: What a hole in an acknowledging sender's numbering means, and the settings that cause it.
BROKER_DROPPED = (
    "the MQTT broker dropped them (Mosquitto drops what is beyond max_queued_messages per client, "
    "1000 by default: raise it as deploy/mosquitto/mosquitto.conf does) or lost them in a restart "
    "(set persistence true)"
)


class AckRules:
    """Mixed into ``router.Router``; uses its ``streams``, ``ended``, ``ended_sessions``,
    ``announced``, ``stats`` and ``reject``."""

    streams: dict[str, Any]
    ended: dict[str, tuple[int | None, float | None]]
    ended_sessions: dict[str, tuple[str, int | None]]
    announced: dict[str, tuple[str, int | None]]
    stats: Any

    def _report(self, sensor: str, msg: Any, out: Any) -> None:
        """A sender's report (``contracts.ack``): where its numbering starts, what it sent, what it lost."""
        try:
            rep = ack.parse_report(msg.payload)
        except ack.AckError as exc:
            self.reject(msg, out, "malformed_report", str(exc))
            return
        st = self.streams.get(sensor)
        if st is not None and st.seq.session == rep.session:
            for lo, hi, why in rep.lost:  # before ``first`` says the same without the reason
                st.seq.add_lost(lo, hi, f"the sender no longer has them: {why}")
        self._announce(sensor, rep.session, rep.first, out)
        st = self.streams.get(sensor)
        if st is None:
            if sensor in self.ended and self.ended_sessions.get(sensor, (rep.session,))[0] == rep.session:
                self.ended_sessions[sensor] = (rep.session, self.ended[sensor][0])
                out.acks.add(sensor)
            return
        self._take_lost(sensor, st, out)
        sent = rep.sent
        if sent is not None and st.last_seq is not None and after(sent, st.last_seq):
            if st.seq.ahead is None:
                log.warning(
                    "%s: its sender sent up to batch %d, but batches %d-%d did not arrive: %s; asked for them",
                    sensor,
                    sent,
                    inc(st.last_seq),
                    sent,
                    BROKER_DROPPED,
                )
            if st.seq.ahead is None or after(sent, st.seq.ahead):
                st.seq.ahead = sent
            st.seq.expect_resend(st.last_seq)
        out.acks.add(sensor)

    def _announce(self, sensor: str, session: str, first: int | None, out: Any) -> None:
        st = self.streams.get(sensor)
        if st is None:
            self.announced[sensor] = (session, first)
            return
        out.acks.add(sensor)
        seqs = st.seq
        if seqs.session != session:
            old, seqs.session = seqs.session, session
            if old is not None:
                log.warning(
                    "%s: a new session of its sender (%s); its numbering starts again%s",
                    sensor,
                    session,
                    "" if first is None else f" at {first}",
                )
                st.last_seq = None if first is None else inc(first, -1)
                seqs.ahead, seqs.resent, seqs.lost = None, None, []
                return
        if first is not None and st.last_seq is not None and after(first, inc(st.last_seq)):
            # everything before ``first`` was sent before this message: what did not come is lost
            seqs.add_lost(inc(st.last_seq), inc(first, -1), "the sender no longer has them")
            self._take_lost(sensor, st, out)

    def _take_lost(self, sensor: str, st: Any, out: Any) -> None:
        while st.last_seq is not None and (found := st.seq.take_lost(st.last_seq)) is not None:
            self._skip(sensor, st, *found, out)

    def _hole(self, sensor: str, st: Any, batch: payload.Batch, out: Any) -> None:
        """A batch beyond a hole from an acknowledging sender: not handled; the hole is asked again."""
        seqs = st.seq
        assert st.last_seq is not None
        if seqs.ahead is None:
            n = dist(st.last_seq, batch.seq) - 1
            log.warning(
                "%s: batches %d-%d (%d, ~%d samples) did not arrive: %s; asked the sender to send them again",
                sensor,
                inc(st.last_seq),
                inc(batch.seq, -1),
                n,
                n * len(batch),
                BROKER_DROPPED,
            )
        if seqs.ahead is None or after(batch.seq, seqs.ahead):
            seqs.ahead = batch.seq
        seqs.expect_resend(st.last_seq)
        self.stats["batches_ahead"] += 1
        out.acks.add(sensor)

    def _skip(self, sensor: str, st: Any, lo: int, hi: int, why: str, out: Any, per_batch: int = 0) -> None:
        """Batches ``lo``..``hi`` are lost for good: recorded as a gap with ``why``; the stream goes on."""
        n = dist(lo, hi) + 1
        samples = n * (per_batch or st.batch_len)
        log.warning(
            "%s: batches %d-%d (%d, ~%d samples) are lost: %s; recorded as a gap", sensor, lo, hi, n, samples, why
        )
        st.last_seq = hi
        st.seq.gap_reason = why
        st.seq.gaps += 1
        st.seq.lost_batches += n
        self.stats["batches_missing"] += n
        if st.seq.ahead is not None and not after(st.seq.ahead, hi):
            st.seq.ahead = None
        if st.seq.session is not None:
            out.acks.add(sensor)

    def watermark(self, sensor: str) -> bytes | None:
        """The acknowledgement to publish for ``sensor`` (None: its sender does not take part)."""
        st = self.streams.get(sensor)
        if st is not None:
            if st.seq.session is None:
                return None
            return ack.build_watermark(st.seq.session, st.last_seq, st.seq.missing(st.last_seq))
        ended = self.ended_sessions.get(sensor)
        if ended is None:
            return None
        return ack.build_watermark(ended[0], ended[1], ended=True)
