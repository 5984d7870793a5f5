"""The policy node's ROS-free parts: the transition sender, the weights inbox, the inputs, the tick scheduler."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mentor.policy_inputs import PolicyInputs
from mentor.tick_clock import TickScheduler
from mentor.transition_sender import TransitionSender
from mentor.transport import Outbox
from mentor.weights_inbox import WeightsInbox
from mentor_policy.step_record import decode_step_record


def _record(t: int) -> dict:
    return {"image": np.full((3, 4, 4), t, np.uint8), "proprio": np.zeros(2, np.float32),
            "action": np.zeros(2, np.float32), "reward": float(t), "discount": 1.0, "is_first": t == 0,
            "is_last": False, "intervention": False}


def test_sender_makes_records_durable_then_resends_what_dds_refused(tmp_path):
    accept = {"on": False}
    published: list[bytes] = []

    def publish(payload: bytes) -> bool:
        if accept["on"]:
            published.append(payload)
        return accept["on"]

    sender = TransitionSender(Outbox(tmp_path), publish, "robot_a", resend_after_s=1e-3)
    seqs = [sender.send(_record(t), {"episode_id": 3, "t": t}) for t in range(3)]
    assert seqs == [0, 1, 2] and sender.counts == {"sent": 0, "resent": 0, "refused": 3}
    sender.close()
    again = TransitionSender(Outbox(tmp_path), publish, "robot_a", resend_after_s=1e-3)  # a restarted node
    eid, t, record = again.newest()
    assert (eid, t) == (3, 2) and record["reward"] == 2.0
    accept["on"] = True
    time.sleep(0.01)
    again.resend()
    metas = [decode_step_record(p)[1] for p in published]
    assert [m["seq"] for m in metas] == [0, 1, 2] and {m["source"] for m in metas} == {"robot_a"}
    again.ack(2)
    assert len(again.outbox) == 0
    again.close()


def test_inbox_stages_the_newest_arrival_and_reports_malformed_payloads():
    errors: list[str] = []
    release = threading.Event()

    def decode(payload: bytes):
        if payload == b"slow":
            release.wait(5)
        if payload == b"bad":
            raise ValueError("not weights")
        return int(payload == b"new") + 1, 0, {"w": payload}

    inbox = WeightsInbox(errors.append, decode=decode)
    slow = inbox.offer(b"slow")  # arrives first, decodes last: must not replace the newer weights
    inbox.offer(b"new").join()
    release.set()
    slow.join()
    assert inbox.staged_version == 2 and inbox.take()[2] == {"w": b"new"} and inbox.take() is None
    inbox.offer(b"bad").join()
    assert inbox.take() is None and errors == ["ignoring weights message: not weights"]


def test_inputs_refuse_frames_of_a_new_size_and_report_stale_or_missing_frames():
    inputs = PolicyInputs(["front", "wrist"], (84, 84), teleop_timeout_s=10.0, frame_timeout_s=10.0)
    with pytest.raises(ValueError, match="smaller than the policy input"):
        inputs.add_frame("front", np.zeros((1, 1, 3), np.uint8), 0.0, 0.0)
    inputs.add_frame("front", np.zeros((96, 128, 3), np.uint8), 1.0, 1.0)
    with pytest.raises(ValueError, match="differs"):
        inputs.add_frame("front", np.zeros((84, 84, 3), np.uint8), 2.0, 2.0)
    assert inputs.snapshot().frames is None  # the wrist camera has sent nothing yet
    inputs.add_frame("wrist", np.zeros((84, 84, 3), np.uint8), 1.0, 1.0)
    inputs.set_teleop(np.array([3.0, -0.5], np.float32))
    snap = inputs.snapshot()
    assert set(snap.frames) == {"front", "wrist"} and snap.frames["front"].image.shape == (96, 128, 3)
    np.testing.assert_array_equal(snap.teleop, [1.0, -0.5])  # clipped to the action box
    stale = PolicyInputs(["front"], (84, 84), teleop_timeout_s=0.0, frame_timeout_s=0.0)
    stale.add_frame("front", np.zeros((84, 84, 3), np.uint8), 1.0, 1.0)
    stale.set_teleop(np.zeros(2))
    time.sleep(0.01)
    assert stale.snapshot().frames is None and stale.snapshot().teleop is None


def test_frame_source_ticks_once_per_period_of_the_camera_clock():
    sched = TickScheduler("frame", 0.1, ["front", "wrist"])
    due = []
    for k in range(8):  # cameras at 20 Hz (2 x the control rate), stamps on the camera clock
        stamp = 100.0 + 0.05 * k
        front = sched.on_frame("front", stamp, stamp + 0.01)
        wrist = sched.on_frame("wrist", stamp, stamp + 0.01)
        assert not front  # never before every camera has its frame
        if wrist:
            sched.mark_ticked()
            due.append(k)
    assert due == [0, 2, 4, 6]
    assert not sched.threaded and not sched.fallback_due()


def test_timer_source_runs_ticks_on_its_thread_until_stopped():
    sched = TickScheduler("timer", 0.01, ["front"])
    stop, ticks = threading.Event(), []

    def tick():
        sched.mark_ticked()
        ticks.append(time.time())
        if len(ticks) == 5:
            stop.set()

    thread = threading.Thread(target=sched.run, args=(tick, stop, lambda _msg: None))
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and len(ticks) == 5 and sched.threaded
    with pytest.raises(ValueError, match="tick_source"):
        TickScheduler("vsync", 0.1, ["front"])
