"""Outbox (actor) and ingest ledger (learner): durability, resend, trimming, dedupe, gaps, torn tails."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from mentor.transport import IngestLedger, Outbox, TransportError, read_records


def _payload(i: int) -> bytes:
    return f"record-{i}".encode() * (i % 5 + 1)


def test_outbox_persists_and_reloads_unacked(tmp_path):
    box = Outbox(tmp_path, segment_records=4)
    for i in range(10):
        box.append(box.next_seq, _payload(i))
    box.close()
    again = Outbox(tmp_path, segment_records=4)  # as after kill -9: everything pending, counter continues
    assert again.pending_seqs() == list(range(10)) and again.next_seq == 10
    assert [p for _s, p in again.due(0.0, 100)] == [_payload(i) for i in range(10)]


def test_outbox_rejects_out_of_order_seq(tmp_path):
    box = Outbox(tmp_path)
    with pytest.raises(TransportError, match="expects seq 0, got 3"):
        box.append(3, b"x")


def test_outbox_resend_timing_and_limit(tmp_path):
    box = Outbox(tmp_path)
    for i in range(5):
        box.append(i, _payload(i))
        box.mark_sent(i, now=100.0)
    assert box.due(1.0, 10, now=100.5) == []
    due = box.due(1.0, 3, now=101.5)
    assert [s for s, _ in due] == [0, 1, 2]  # oldest first, bounded
    box.mark_sent(0, now=101.5)
    assert [s for s, _ in box.due(1.0, 10, now=101.6)] == [1, 2, 3, 4]


def test_outbox_ack_trims_segments_but_keeps_counter(tmp_path):
    box = Outbox(tmp_path, segment_records=3)
    for i in range(8):
        box.append(i, _payload(i))
    assert len(list(tmp_path.glob("seg_*.bin"))) == 3
    assert box.ack(5) == 6
    assert box.pending_seqs() == [6, 7]
    assert sorted(p.name for p in tmp_path.glob("seg_*.bin")) == ["seg_000000000006.bin"]
    box.ack(7)
    box.close()
    again = Outbox(tmp_path, segment_records=3)
    assert again.next_seq == 8  # the newest segment survives, so seqs never restart at 0
    assert again.ack(7) == 2 and len(again) == 0
    again.append(8, b"next")


def test_outbox_newest_pending_record_survives_a_restart(tmp_path):
    box = Outbox(tmp_path, segment_records=3)
    assert box.newest() is None
    for i in range(7):
        box.append(i, _payload(i))
    assert box.newest() == (6, _payload(6))
    box.ack(4)
    box.close()
    again = Outbox(tmp_path, segment_records=3)  # what a restarted policy node reads to truncate its episode
    # acks live in memory: the partly acknowledged segment comes back whole (the learner drops duplicates)
    assert again.newest() == (6, _payload(6)) and again.pending_seqs() == [3, 4, 5, 6]
    again.ack(6)
    assert again.newest() is None and again.due(0.0, 10) == []


def test_restarted_outbox_keeps_its_counter_when_everything_is_acked(tmp_path):
    box = Outbox(tmp_path, segment_records=2)
    for i in range(5):
        box.append(i, _payload(i))
    box.close()
    again = Outbox(tmp_path, segment_records=2)  # restarted: no segment open yet when the ack arrives
    again.ack(4)
    again.close()
    assert Outbox(tmp_path, segment_records=2).next_seq == 5


def test_outbox_appends_in_one_thread_while_another_acks(tmp_path):
    """The policy's control thread appends (fsync, no lock held) while the executor thread acknowledges."""
    box = Outbox(tmp_path, segment_records=8)
    n, done, errors = 200, threading.Event(), []

    def acker():
        try:
            while not done.is_set():
                box.ack(box.next_seq - 5)  # the learner trails the actor by a few records
                box.due(0.0, 20)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=acker)
    thread.start()
    try:
        for i in range(n):
            box.append(box.next_seq, _payload(i))
            box.mark_sent(i)
    finally:
        done.set()
        thread.join()
    assert not errors
    assert box.pending_seqs() == list(range(box.acked + 1, n))  # exactly the unacknowledged tail, in order
    # the acker's last word (on a loaded machine it may trail further than 5 when the appends end)
    box.ack(n - 5)
    assert len(list(tmp_path.glob("seg_*.bin"))) <= 2  # finished segments were deleted as acks came in
    box.ack(n - 1)
    box.close()
    again = Outbox(tmp_path, segment_records=8)  # only the newest segment (it carries the counter) is left
    assert again.next_seq == n and all(seq >= n - 8 for seq in again.pending_seqs())


def test_outbox_ignores_torn_tail(tmp_path):
    box = Outbox(tmp_path)
    for i in range(3):
        box.append(i, _payload(i))
    box.close()
    seg = next(tmp_path.glob("seg_*.bin"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-3])  # crash in the middle of the last write
    assert [s for s, _ in read_records(seg)] == [0, 1]
    seg.write_bytes(data[:-len(_payload(2))] + b"X" * len(_payload(2)))  # corrupt payload: CRC catches it
    assert [s for s, _ in read_records(seg)] == [0, 1]


def test_a_torn_first_record_of_a_new_segment_is_cut_before_appending(tmp_path):
    """The restarted outbox once appended after the torn bytes, so the records written then were lost."""
    box = Outbox(tmp_path, segment_records=2)
    for i in range(3):  # seg 0: records 0, 1; seg 2: record 2 (torn below)
        box.append(i, _payload(i))
    box.close()
    seg2 = tmp_path / "seg_000000000002.bin"
    seg2.write_bytes(seg2.read_bytes()[:-4])  # the crash tore the only record of the new segment
    again = Outbox(tmp_path, segment_records=2)
    assert again.next_seq == 2 and seg2.stat().st_size == 0  # the torn bytes are gone
    for i in (2, 3):
        again.append(i, _payload(i))
    again.close()
    assert [s for s, _ in read_records(seg2)] == [2, 3]
    third = Outbox(tmp_path, segment_records=2)
    assert third.pending_seqs() == [0, 1, 2, 3] and third.newest() == (3, _payload(3))


def test_a_torn_ledger_line_does_not_swallow_the_next_commit(tmp_path):
    path = tmp_path / "ingest.ledger"
    ledger = IngestLedger(path)
    ledger.commit("robot", 0)
    ledger.commit("robot", 1)
    ledger.close()
    path.write_bytes(path.read_bytes() + b"robot 2")  # torn: no newline, the crash came before it
    ledger = IngestLedger(path)
    assert ledger.acked == {"robot": 1}  # the unterminated line was not durable: not counted
    ledger.commit("robot", 2)
    ledger.close()
    assert IngestLedger(path).acked == {"robot": 2} and path.read_text().splitlines()[-1] == "robot 2"


def test_ledger_dedupe_gap_commit_and_restart(tmp_path):
    path = tmp_path / "ingest.ledger"
    led = IngestLedger(path)
    assert led.check("r1", 0) == "new"
    led.commit("r1", 0)
    assert led.check("r1", 0) == "dup"
    assert led.check("r1", 3) == "gap" and led.gaps == 1
    assert led.check("r2", 0) == "new"
    led.commit("r2", 0)
    led.commit("r1", 1)
    with pytest.raises(TransportError, match="out of order"):
        led.commit("r1", 5)
    led.close()
    with open(path, "a") as fh:
        fh.write("r1 2")  # torn last line (no newline, but parseable) then garbage
        fh.write("\nr1 x\n")
    again = IngestLedger(path)
    assert again.acked == {"r1": 2, "r2": 0}
    assert again.check("r1", 2) == "dup" and again.check("r1", 3) == "new"
    with pytest.raises(TransportError, match="invalid transition source"):
        again.check("bad name", 0)


def test_ledger_compaction_keeps_state(tmp_path):
    path = tmp_path / "l"
    led = IngestLedger(path, fsync=False)
    for i in range(10_020):
        led.commit("a", i)
    assert led.acked == {"a": 10_019}
    assert len(path.read_text().splitlines()) < 100  # compacted atomically
    led.close()
    assert IngestLedger(path).acked == {"a": 10_019}


def test_outbox_and_journal_write_the_same_frames(tmp_path):
    from mentor_policy.framed_log import read_frames
    from mentor_policy.journal import EpisodeJournal
    from mentor_policy.step_record import encode_step_record
    payload = encode_step_record({"image": np.zeros((3, 4, 4), np.uint8), "proprio": np.zeros(2, np.float32),
                                  "action": np.zeros(2, np.float32), "reward": 0.0, "discount": 1.0,
                                  "is_first": True, "is_last": False, "intervention": False})
    box = Outbox(tmp_path / "outbox")
    box.append(0, payload)
    box.close()
    j = EpisodeJournal(tmp_path / "journal")
    j.append_encoded("ep", payload)
    j.close()
    (seg,) = (tmp_path / "outbox").glob("seg_*.bin")
    assert read_frames(seg) == [(0, payload)]
    assert read_frames(tmp_path / "journal" / "ep.journal", start=8) == [(0, payload)]  # after the file header
