"""ReplayBuffer, EpisodeJournal and the step-record codec (real files, real fsync, tiny shapes)."""
import logging
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mentor_policy.journal import EpisodeJournal, JournalConfig
from mentor_policy.replay import ReplayBuffer, ReplayConfig, ReplayError
from mentor_policy.specs import EnvSpec
from mentor_policy.step_record import (
    RecordFormatError,
    decode_step_record,
    encode_step_record,
    read_step_header,
    records_to_episode,
)

SPEC = EnvSpec(frame_channels=3, image_size=(16, 16), proprio_dim=2, action_dim=2)


def make_episode(length, tag=0, terminal=False, rewards=None):
    """Episode of ``length`` transitions whose frame t is filled with value tag*50 + t (t < 50)."""
    n = length + 1
    steps = np.arange(n)
    image = np.broadcast_to((tag * 50 + steps).astype(np.uint8)[:, None, None, None], (n, 3, 16, 16)).copy()
    reward = np.zeros(n, np.float32) if rewards is None else np.concatenate([[0.0], rewards]).astype(np.float32)
    if rewards is None:
        reward[1:] = steps[1:]
    discount = np.ones(n, np.float32)
    if terminal:
        discount[-1] = 0.0
    action = np.stack([steps, -steps], axis=1).astype(np.float32)
    action[0] = 0
    return {
        "image": image,
        "proprio": np.stack([steps, steps + tag * 100], axis=1).astype(np.float32),
        "action": action,
        "reward": reward,
        "discount": discount,
        "intervention": steps % 2 == 0,
    }


def make_buffer(tmp_path, **kw):
    cfg = ReplayConfig(**{"capacity": 1000, "frame_stack": 3, "nstep": 3, "discount": 0.9, "batch_size": 64, **kw})
    return ReplayBuffer(tmp_path / "replay", cfg, SPEC)


def frame_values(stacked):
    """(B, fs*3, H, W) -> (B, fs) the fill value of each stacked frame."""
    return stacked[:, ::3, 0, 0].astype(int)


def test_round_trip_and_batch_shapes(tmp_path):
    rb = make_buffer(tmp_path)
    path = rb.add_episode(make_episode(10))
    assert path.exists() and path.suffix == ".npz"
    assert (rb.num_transitions, rb.num_episodes) == (10, 1)
    with np.load(path, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["image"], make_episode(10)["image"])
    batch = rb.sample(32)
    assert batch["image"].shape == (32, 9, 16, 16) and batch["image"].dtype == np.uint8
    assert batch["next_image"].shape == (32, 9, 16, 16)
    assert batch["proprio"].shape == (32, 2) and batch["proprio"].dtype == np.float32
    assert batch["action"].shape == (32, 2) and batch["reward"].shape == (32,) and batch["discount"].shape == (32,)
    # The action is the one taken *from* the sampled step t (stored at row t+1).
    t = batch["proprio"][:, 0].astype(int)
    np.testing.assert_array_equal(batch["action"][:, 0], t + 1)


def test_stacking_repeats_first_frame_at_episode_start(tmp_path):
    rb = make_buffer(tmp_path, nstep=1)
    rb.add_episode(make_episode(6, tag=1))
    rb.add_episode(make_episode(6, tag=2))
    batch = rb.sample(400)
    t = batch["proprio"][:, 0].astype(int)
    tag = (batch["proprio"][:, 1].astype(int) - t) // 100
    got = frame_values(batch["image"])
    expect = tag[:, None] * 50 + np.maximum(t[:, None] + np.array([-2, -1, 0]), 0)
    np.testing.assert_array_equal(got, expect)
    assert set(t.tolist()) == set(range(6)), "every transition index of an episode must be sampled"
    # the two episodes never bleed into each other's stacks
    assert np.all(got // 50 == tag[:, None])
    np.testing.assert_array_equal(frame_values(batch["next_image"])[:, -1], tag * 50 + t + 1)


def test_nstep_reward_and_discount_match_hand_computation(tmp_path):
    rb = make_buffer(tmp_path, nstep=3, discount=0.9)
    rewards = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    rb.add_episode(make_episode(5, terminal=False, rewards=rewards))  # truncated: keeps bootstrapping
    batch = rb.sample(300)
    t = batch["proprio"][:, 0].astype(int)
    expected_r = {0: 1 + 0.9 * 2 + 0.81 * 3, 1: 2 + 0.9 * 3 + 0.81 * 4, 2: 3 + 0.9 * 4 + 0.81 * 5,
                  3: 4 + 0.9 * 5, 4: 5.0}
    expected_d = {0: 0.729, 1: 0.729, 2: 0.729, 3: 0.81, 4: 0.9}
    expected_next = {0: 3, 1: 4, 2: 5, 3: 5, 4: 5}
    for i in range(len(t)):
        assert batch["reward"][i] == pytest.approx(expected_r[t[i]], rel=1e-6)
        assert batch["discount"][i] == pytest.approx(expected_d[t[i]], rel=1e-6)
        assert batch["next_proprio"][i, 0] == expected_next[t[i]]
    assert set(t.tolist()) == set(range(5))


def test_terminal_zeroes_discount_but_truncation_does_not(tmp_path):
    rb = make_buffer(tmp_path, nstep=2, discount=0.5)
    rb.add_episode(make_episode(4, terminal=True, rewards=np.array([1.0, 1.0, 1.0, 10.0])))
    batch = rb.sample(300)
    t = batch["proprio"][:, 0].astype(int)
    for i in range(len(t)):
        if t[i] >= 2:  # the n-step window reaches the terminal step
            assert batch["discount"][i] == 0.0
            expected = {2: 1 + 0.5 * 10, 3: 10.0}[t[i]]
            assert batch["reward"][i] == pytest.approx(expected)
        else:
            assert batch["discount"][i] == pytest.approx(0.25)
    rb2 = make_buffer(tmp_path / "b", nstep=2, discount=0.5)
    rb2.add_episode(make_episode(4, terminal=False))
    b2 = rb2.sample(200)
    assert np.all(b2["discount"] > 0), "a time-limit truncation must keep bootstrapping"


def test_eviction_deletes_oldest_files_after_new_one_is_durable(tmp_path):
    rb = make_buffer(tmp_path, capacity=25)
    paths = [rb.add_episode(make_episode(10, tag=i)) for i in range(4)]
    assert rb.num_transitions == 20 and rb.num_episodes == 2
    assert [p.exists() for p in paths] == [False, False, True, True]
    assert rb.episode_paths() == paths[2:]
    assert set(np.unique(frame_values(rb.sample(200)["image"]) // 50).tolist()) == {2, 3}


def test_evicted_episodes_can_stay_on_disk_and_reload_loads_the_newest(tmp_path):
    rb = make_buffer(tmp_path, capacity=25, delete_evicted=False)
    paths = [rb.add_episode(make_episode(10, tag=i)) for i in range(4)]
    assert rb.num_episodes == 2 and rb.episode_paths() == paths[2:]  # memory holds what fits
    assert all(p.exists() for p in paths)  # the disk keeps every transition the robot paid for
    again = make_buffer(tmp_path, capacity=25, delete_evicted=False)
    assert again.episode_paths() == paths[2:] and all(p.exists() for p in paths)
    assert set(np.unique(frame_values(again.sample(200)["image"]) // 50).tolist()) == {2, 3}


def test_ring_wraparound_keeps_episodes_intact(tmp_path):
    # 31 slots: episodes of 7 frames wrap; eviction must free the overlapped slots.
    rb = make_buffer(tmp_path, capacity=29, frame_slots=31, nstep=1)
    for i in range(9):
        rb.add_episode(make_episode(6, tag=i))
        batch = rb.sample(256)
        t = batch["proprio"][:, 0].astype(int)
        tag = (batch["proprio"][:, 1].astype(int) - t) // 100
        expect = tag[:, None] * 50 + np.maximum(t[:, None] + np.array([-2, -1, 0]), 0)
        np.testing.assert_array_equal(frame_values(batch["image"]), expect % 256)  # uint8 fill wraps
    assert rb.num_transitions <= 29
    assert len(list((tmp_path / "replay").glob("ep_*.npz"))) == rb.num_episodes


def test_reload_after_restart(tmp_path):
    rb = make_buffer(tmp_path)
    for i in range(3):
        rb.add_episode(make_episode(5 + i, tag=i))
    rb2 = make_buffer(tmp_path)
    assert (rb2.num_episodes, rb2.num_transitions) == (3, 18)
    assert [p.name for p in rb2.episode_paths()] == [p.name for p in rb.episode_paths()]
    new = rb2.add_episode(make_episode(4, tag=3))
    assert new.name.startswith("ep_000000003_"), "indices continue after a restart"
    # reloading with a smaller capacity keeps the newest episodes
    rb3 = make_buffer(tmp_path, capacity=12)
    assert rb3.num_transitions == 11 and rb3.num_episodes == 2


def test_leftover_temp_and_corrupt_files_are_never_loaded(tmp_path, caplog):
    rb = make_buffer(tmp_path)
    rb.add_episode(make_episode(5, tag=0))
    good = rb.add_episode(make_episode(5, tag=1))
    d = tmp_path / "replay"
    (d / ".tmp-abc.npz").write_bytes(good.read_bytes()[:100])
    truncated = d / "ep_000000002_5.npz"
    truncated.write_bytes(good.read_bytes()[:-200])
    wrong_shape = d / "ep_000000003_5.npz"
    ep = make_episode(5)
    ep["proprio"] = np.zeros((6, 7), np.float32)
    np.savez(wrong_shape, **ep)
    with caplog.at_level(logging.WARNING):
        rb2 = make_buffer(tmp_path)
    assert rb2.num_episodes == 2 and rb2.num_transitions == 10
    assert not (d / ".tmp-abc.npz").exists()
    assert (d / "ep_000000002_5.npz.corrupt").exists() and (d / "ep_000000003_5.npz.corrupt").exists()
    assert "proprio" in caplog.text and "temp file" in caplog.text
    assert rb2.add_episode(make_episode(3)).name.startswith("ep_000000004_")


def test_bad_episodes_are_rejected_with_clear_errors(tmp_path):
    rb = make_buffer(tmp_path)
    ep = make_episode(5)
    ep["reward"][2] = np.nan
    with pytest.raises(ReplayError, match="reward.*non-finite"):
        rb.add_episode(ep)
    ep = make_episode(5)
    ep["image"] = ep["image"].astype(np.float32)
    with pytest.raises(ReplayError, match="uint8"):
        rb.add_episode(ep)
    ep = make_episode(5)
    del ep["action"]
    with pytest.raises(ReplayError, match="missing"):
        rb.add_episode(ep)
    with pytest.raises(ReplayError, match="capacity"):
        make_buffer(tmp_path / "small", capacity=3).add_episode(make_episode(5))
    with pytest.raises(ReplayError, match="empty"):
        rb.sample(4)
    assert rb.num_episodes == 0 and not list((tmp_path / "replay").iterdir())
    with pytest.raises(ValueError, match="nstep"):
        ReplayConfig(nstep=0)


# ---------------------------------------------------------------------------- codec / journal
def make_record(t, first=False, last=False):
    return {
        "image": np.full((3, 16, 16), t, np.uint8),
        "proprio": np.array([t, 0.5], np.float32),
        "action": np.array([0.1 * t, -0.1], np.float32),
        "reward": float(t),
        "discount": 0.0 if last else 1.0,
        "is_first": first,
        "is_last": last,
        "intervention": t == 2,
    }


def test_codec_round_trip():
    rec = make_record(3, first=True)
    meta = {"source": "actor_0", "seq": 17, "episode_id": "run1-ep5", "t": 3}
    data = encode_step_record(rec, meta)
    assert len(data) < 3 * 16 * 16 + 400
    out, meta_out = decode_step_record(data)
    assert meta_out == meta
    for k in ("image", "proprio", "action"):
        np.testing.assert_array_equal(out[k], rec[k])
        assert out[k].dtype == rec[k].dtype
    flags = (out["reward"], out["discount"], out["is_first"], out["is_last"], out["intervention"])
    assert flags == (3.0, 1.0, True, False, False)
    out2, _ = decode_step_record(bytearray(data))
    np.testing.assert_array_equal(out2["image"], rec["image"])


def test_codec_rejects_garbage_and_truncation():
    data = encode_step_record(make_record(1), {"seq": 1})
    rng = np.random.default_rng(0)
    bad_inputs = [b"", b"MSR", data[:10], data[:-1], data[:-5], data + b"\x00", rng.bytes(len(data)), b"XYZ" + data[3:]]
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    bad_inputs.append(bytes(flipped))
    for bad in bad_inputs:
        with pytest.raises(RecordFormatError):
            decode_step_record(bad)
    wrong_version = bytearray(data)
    wrong_version[3] = 9
    with pytest.raises(RecordFormatError):
        decode_step_record(bytes(wrong_version))


def test_codec_rejects_bad_records():
    rec = make_record(1)
    rec["action"] = np.array([np.nan, 0], np.float32)
    with pytest.raises(RecordFormatError, match="action.*non-finite"):
        encode_step_record(rec)
    rec = make_record(1)
    rec["image"] = rec["image"].astype(np.float32)
    with pytest.raises(RecordFormatError, match="uint8"):
        encode_step_record(rec)
    rec = make_record(1)
    del rec["is_last"]
    with pytest.raises(RecordFormatError, match="missing"):
        encode_step_record(rec)
    with pytest.raises(RecordFormatError, match="JSON"):
        encode_step_record(make_record(1), {"x": object()})


def test_records_to_episode_layout():
    records = [make_record(0, first=True)] + [make_record(t) for t in range(1, 4)] + [make_record(4, last=True)]
    ep = records_to_episode(records)
    assert ep["image"].shape == (5, 3, 16, 16)
    assert ep["action"][0].tolist() == [0, 0] and ep["reward"][0] == 0
    np.testing.assert_allclose(ep["reward"][1:], [1, 2, 3, 4])
    assert ep["discount"].tolist() == [1, 1, 1, 1, 0]
    with pytest.raises(ReplayError, match="is_first"):
        records_to_episode(records[1:])
    with pytest.raises(ReplayError, match="at least 2"):
        records_to_episode(records[:1])


def test_journal_commit_removes_journal_only_after_durable(tmp_path):
    rb = make_buffer(tmp_path)
    j = EpisodeJournal(tmp_path / "journal")
    for t in range(5):
        j.append("actor0-ep1", make_record(t, first=t == 0, last=t == 4), {"t": t})
    assert j.keys() == ["actor0-ep1"]
    path = rb.add_episode(j.finish("actor0-ep1"), key="actor0-ep1")  # the learner's order: durable, then discard
    j.discard("actor0-ep1")
    assert path.exists() and j.keys() == [] and rb.num_transitions == 4
    with pytest.raises(ValueError, match="invalid episode key"):
        j.append("../evil", make_record(0, first=True))


def test_journal_failed_add_keeps_journal(tmp_path):
    rb = make_buffer(tmp_path, capacity=2)
    j = EpisodeJournal(tmp_path / "journal")
    for t in range(5):
        j.append("ep", make_record(t, first=t == 0))
    with pytest.raises(ReplayError):
        rb.add_episode(j.finish("ep"), key="ep")
    assert j.keys() == ["ep"], "the journal must survive a failed add_episode"


def test_journal_torn_tail_is_ignored_and_truncated(tmp_path, caplog):
    d = tmp_path / "journal"
    with EpisodeJournal(d) as j:
        for t in range(4):
            j.append("ep7", make_record(t, first=t == 0))
    path = d / "ep7.journal"
    full = path.read_bytes()
    path.write_bytes(full[:-30])  # torn last record
    j2 = EpisodeJournal(d)
    with caplog.at_level(logging.WARNING):
        (key, records), = [(k, [r for r, _m in j2.read(k, repair=True)]) for k in j2.keys()]
    assert key == "ep7" and [r["reward"] for r in records] == [0, 1, 2]
    assert "torn" in caplog.text
    j2.append("ep7", make_record(3))  # continue after repair
    j2.append("ep7", make_record(4, last=True))
    ep = j2.finish("ep7")
    assert ep["reward"].tolist() == [0, 1, 2, 3, 4] and ep["discount"][-1] == 0
    j2.close()


def test_journal_survives_kill_9(tmp_path):
    """A writer process killed with SIGKILL mid-episode loses at most the record being written."""
    d = tmp_path / "journal"
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(os.getcwd())!r})
        from mentor_policy.journal import EpisodeJournal, JournalConfig
        j = EpisodeJournal({str(d)!r}, JournalConfig(fsync_every=1))
        t = 0
        while True:
            j.append("ep", {{"image": np.full((3, 16, 16), t % 256, np.uint8), "proprio": np.zeros(2, np.float32),
                            "action": np.zeros(2, np.float32), "reward": float(t), "discount": 1.0,
                            "is_first": t == 0, "is_last": False, "intervention": False}})
            t += 1
            if t == 20:
                print("ready", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=os.getcwd())
    try:
        assert proc.stdout.readline().strip() == b"ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    journal = EpisodeJournal(d)
    (key, records), = [(k, [r for r, _m in journal.read(k, repair=True)]) for k in journal.keys()]
    assert len(records) >= 20
    assert [r["reward"] for r in records] == [float(i) for i in range(len(records))]
    ep = records_to_episode(records)
    assert ep["image"].shape[0] == len(records)


def test_journal_fsync_policy_validation():
    assert JournalConfig(fsync_every=0).fsync_every == 0
    with pytest.raises(ValueError):
        JournalConfig(fsync_every=-1)


def test_adding_an_episode_with_a_key_is_idempotent_across_a_reload(tmp_path):
    rb = make_buffer(tmp_path)
    ep = make_episode(5)
    first = rb.add_episode(ep, key="robot-ep7")
    assert rb.add_episode(ep, key="robot-ep7") == first and rb.num_episodes == 1 and rb.episodes_added == 1
    again = make_buffer(tmp_path)
    assert again.has_episode("robot-ep7") and again.add_episode(ep, key="robot-ep7") == first
    assert again.num_episodes == 1 and again.episodes_added == 1 and len(again) == 5
    assert again.add_episode(ep, key="robot-ep8").name.endswith("_5.robot-ep8.npz") and again.episodes_added == 2
    assert again.add_episode(ep).name.endswith("_5.npz") and make_buffer(tmp_path).num_episodes == 3
    with pytest.raises(ValueError, match="invalid episode key"):
        again.add_episode(ep, key="../evil")


def test_a_header_read_checks_the_whole_record_without_decoding_its_arrays(tmp_path):
    rec = {**make_record(3, last=True), "success": True}
    data = encode_step_record(rec, {"source": "a", "seq": 9})
    scalars, meta = read_step_header(data)
    assert meta == {"source": "a", "seq": 9} and scalars["is_last"] and scalars["success"] and scalars["reward"] == 3.0
    assert "image" not in scalars
    decoded, _ = decode_step_record(data)
    assert decoded["success"] is True and decode_step_record(encode_step_record(make_record(1)))[0]["success"] is False
    for bad in (data[:-1], data[:40] + bytes([data[40] ^ 1]) + data[41:]):
        with pytest.raises(RecordFormatError):
            read_step_header(bad)
    j = EpisodeJournal(tmp_path / "journal")  # the learner stores what it received, verbatim
    first = encode_step_record(make_record(0, first=True), {"t": 0})
    j.append_encoded("ep", first)
    j.append_encoded("ep", data)
    assert first in (tmp_path / "journal" / "ep.journal").read_bytes()
    ep = j.finish("ep")
    assert ep["reward"].tolist() == [0.0, 3.0] and ep["success"].tolist() == [False, True]


def test_a_journal_of_the_earlier_frame_format_is_read_and_migrated_on_append(tmp_path):
    import struct
    import zlib
    d = tmp_path / "journal"
    d.mkdir()
    payloads = [encode_step_record(make_record(t, first=t == 0), {"t": t}) for t in range(3)]
    v1 = b"MJRNL\x01\n\x00" + b"".join(struct.pack("<II", len(p), zlib.crc32(p)) + p for p in payloads)
    (d / "ep3.journal").write_bytes(v1 + b"\x05\x00")  # and a torn tail
    j = EpisodeJournal(d)
    assert [r["reward"] for r, _m in j.read("ep3")] == [0.0, 1.0, 2.0]
    j.append("ep3", make_record(3, last=True), {"t": 3})  # migrates the file, then appends in the shared format
    data = (d / "ep3.journal").read_bytes()
    assert data.startswith(b"MJRNL\x02\n\x00") and all(p in data for p in payloads)
    ep = j.finish("ep3")
    assert ep["reward"].tolist() == [0.0, 1.0, 2.0, 3.0] and ep["discount"][-1] == 0.0



def test_step_records_and_the_episode_tally_follow_one_rule():
    from mentor_policy.step_record import EpisodeTally, make_step_record
    img, prop, act = np.zeros((3, 16, 16), np.uint8), np.zeros(2, np.float32), np.zeros(2, np.float32)
    first = make_step_record(img, prop, act, 5.0, first=True, last=False, terminal=False, success=True)
    assert first["reward"] == 0.0 and first["success"] is False and first["is_first"]  # nothing led to it
    tally = EpisodeTally()
    for record in (first, make_step_record(img, prop, act, 1.5, first=False, last=False, terminal=False, success=True),
                   make_step_record(img, prop, act, 2.0, first=False, last=True, terminal=True)):
        tally.add(record)
    assert (tally.steps, tally.episode_return, tally.success) == (2, 3.5, True)
    assert decode_step_record(encode_step_record(first))[0]["discount"] == 1.0
