"""The end-to-end acknowledgement's rules, in-process: the monitor's router (pure) and the sender's
bookkeeping (``collector.confirm``). The real processes over a real broker are in
``tests/test_end_to_end_ack.py``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from collector.confirm import REWIND_HOLDOFF_S, Confirmations
from legwatch.contracts import ack, payload, status
from legwatch.contracts.config import load_config
from legwatch.monitor.router import Router, SensorStream

T0 = 1767650000.0
RATE = 52.0


def router() -> Router:
    return Router(load_config(env={"LEGWATCH_SUBJECT": "me"}))


def msg(topic: str, data: bytes, *, retain: bool = False, dup: bool = False) -> SimpleNamespace:
    return SimpleNamespace(topic=topic, payload=data, retain=retain, dup=dup, qos=1, mid=None)


def batch(seq: int, sensor: str = "s1") -> SimpleNamespace:
    t = T0 + seq + np.arange(52) / RATE
    xyz = np.tile([0.0, 0.0, 1.0], (52, 1))
    return msg(f"legwatch/{sensor}/samples", payload.encode(sensor, seq, t, xyz, RATE))


def online(session: str | None, first: int | None = None) -> SimpleNamespace:
    return msg("legwatch/s1/status", status.online(source="test", session=session, first=first))


def watermark(r: Router, sensor: str = "s1") -> ack.Watermark:
    body = r.watermark(sensor)
    assert body is not None
    return ack.parse_watermark(body)


def test_a_hole_from_an_acknowledging_sender_is_asked_again_and_nothing_beyond_it_is_handled() -> None:
    r = router()
    assert r.route(online("abc", first=0)).acks == set()  # no stream yet: announced
    for seq in (0, 1, 2):
        assert r.route(batch(seq)).acks == {"s1"}
    wm = watermark(r)
    assert wm == ack.Watermark("abc", 2, (), False, wm.time)  # one reading: its time is the clock's
    out = r.route(batch(5))  # 3 and 4 did not arrive
    assert out.acks == {"s1"} and not out.points
    assert r.stats["batches"] == 3 and r.stats["batches_ahead"] == 1 and not r.stats["batches_missing"]
    assert watermark(r).stored == 2 and watermark(r).missing == ((3, 5),)
    for seq in (3, 4, 5):  # the sender goes back to 3
        r.route(batch(seq))
    assert watermark(r).stored == 5 and watermark(r).missing == ()
    r.route(batch(4))  # one more sent again than was missing: expected, not set aside
    assert r.stats["resent"] == 1 and not r.rejected


def test_what_the_sender_no_longer_has_becomes_a_gap_with_its_reason() -> None:
    r = router()
    r.route(online("abc", first=0))
    for seq in range(10):
        r.route(batch(seq))
    r.route(batch(16))  # 10..15 missing; asked again
    report = ack.build_report("abc", 16, 16, [(10, 15, "dropped from the full spool")])
    out = r.route(msg("legwatch/s1/sender", report))
    assert watermark(r).stored == 15 and out.acks == {"s1"}
    assert r.stats["batches_missing"] == 6
    out = r.route(batch(16))
    gaps = [p for p in out.points if p.measurement == "gap"]
    assert len(gaps) == 1 and "dropped from the full spool" in gaps[0].fields["reason"]
    assert gaps[0].time == pytest.approx(T0 + 9 + 51 / RATE, abs=1e-5)


def test_a_first_beyond_what_arrived_is_lost_and_a_new_session_starts_numbering_again() -> None:
    r = router()
    r.route(online("abc", first=0))
    for seq in range(3):
        r.route(batch(seq))
    r.route(msg("legwatch/s1/sender", ack.build_report("abc", 7, 9)))  # it holds nothing before 7
    st: SensorStream = r.streams["s1"]
    assert st.last_seq == 6 and st.seq.gaps == 1
    assert watermark(r).missing == ((7, 9),)  # it sent up to 9: those did not arrive
    r.route(online("new-session", first=100))
    assert st.last_seq == 99 and watermark(r).session == "new-session" and watermark(r).missing == ()


def test_a_publisher_without_a_session_gets_no_acknowledgement_and_a_hole_is_a_gap_at_once() -> None:
    r = router()
    r.route(online(None))
    assert not r.route(batch(0)).acks
    out = r.route(batch(3))
    assert r.stats["batches"] == 2 and r.stats["batches_missing"] == 2
    assert any(p.measurement == "gap" and "does not take part" in p.fields["reason"] for p in out.points)
    assert r.watermark("s1") is None
    r.route(batch(3))
    assert r.rejected["duplicate"] == 1


def test_the_end_of_the_night_is_confirmed_and_confirmed_again_when_asked_again() -> None:
    r = router()
    r.route(online("abc", first=0))
    for seq in range(3):
        r.route(batch(seq))
    early = msg("legwatch/s1/status", status.offline(source="test", session="abc", first=3, last=4))
    out = r.route(early)  # 3 and 4 are not here yet: not the end
    assert out.night_end is None and watermark(r).missing == ((3, 4),)
    for seq in (3, 4):
        r.route(batch(seq))
    out = r.route(early)
    assert out.night_end is not None and out.acks == {"s1"}
    r.commit_night(out.night_end)
    wm = watermark(r)
    assert wm.ended and wm.stored == 4 and wm.session == "abc"
    again = r.route(early)  # its confirmation was lost: the sender asks again
    assert again.acks == {"s1"} and watermark(r).ended


def test_stream_state_with_acknowledgements_survives_a_checkpoint_and_old_ones_still_load() -> None:
    r = router()
    r.route(online("abc", first=0))
    r.route(batch(0))
    r.route(batch(3))
    st = r.streams["s1"]
    plain = {k: v for k, v in st.state().items() if k != "detector"}
    assert json.loads(json.dumps(plain)) == plain  # plain data, as a checkpoint file needs
    again = SensorStream.from_state(st.state())
    assert again.seq == st.seq and again.seq.ahead == 3 and again.last_t == st.last_t
    old = {k: v for k, v in st.state().items() if k not in ("seq", "last_t", "batch_len")}
    assert SensorStream.from_state(old).seq.session is None


def test_sender_confirmations_unwrap_rewind_once_and_count_lost() -> None:
    now = [0.0]
    c = Confirmations(clock=lambda: now[0])
    base = 2**32 - 2  # the sender's numbering passes the payload's 32-bit wrap
    for s in range(base, base + 6):
        c.sent(s)
    assert c.confirm((base + 2) % 2**32) == [base, base + 1, base + 2] and c.stored == base + 2
    assert len(c) == 3 and c.covered(base + 1) and not c.covered(base + 3)
    lo = (base + 3) % 2**32
    assert c.rewind(lo, lo) == [base + 3, base + 4, base + 5]
    assert c.rewind(lo, lo) == []  # asked again before the re-sends could arrive
    now[0] += REWIND_HOLDOFF_S + 1
    assert c.rewind(lo, lo) == [base + 3, base + 4, base + 5]
    c.missing_from_spool(base + 4)
    c.missing_from_spool(base + 5)
    assert c.take_lost() == [[base + 4, base + 5]] and c.lost_total == 2 and len(c) == 1
