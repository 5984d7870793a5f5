"""Policy node (real rclpy, in this process, ticks called directly): evaluation episodes act deterministically,
hold new weights until the block ended, and say so in their step records' meta and episode summaries."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml

from mentor import wire
from mentor.graph import NodeSpec, write_params_yaml

pytestmark = pytest.mark.ros

OVERRIDES = ("{hidden_dim: 16, feature_dim: 8, encoder_channels: 4, num_experts: 2, moe_top_k: 1, "
             "expert_hidden_dim: 8, gate_hidden_dim: 8, frame_stack: 2, num_expl_steps: 1000000}")


def _node_params(tmp_path: Path, **kw) -> Path:
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"episode_length": 3}))
    params = {"mode": "train", "task": "reach", "task_config": str(task), "cameras": ["front"],
              "agent_config": "tiny", "agent_overrides": OVERRIDES, "outbox_dir": str(tmp_path / "outbox"),
              "videos_dir": str(tmp_path / "videos"), "video_every": 0, "eval_every_episodes": 2, "eval_episodes": 2,
              **kw}
    return write_params_yaml(NodeSpec("policy", "policy_node", "", params), tmp_path / "params")


@pytest.fixture
def node(tmp_path: Path):
    path = _node_params(tmp_path)
    rclpy.init(args=["--ros-args", "--params-file", str(path)])
    from mentor.policy_node import PolicyNode
    n = PolicyNode()
    yield n
    n.shutdown()
    n.destroy_node()
    rclpy.shutdown()


def _tick(node, eid: int, phase: str = "RUNNING", reward=(0.0, False), colours=None) -> None:
    """One control tick with fresh (constant) observations; ``colours``: camera -> grey level of its frame."""
    now = time.time()
    for cam in node.cfg.cameras:
        node.inputs.add_frame(cam, np.full((84, 84, 3), (colours or {}).get(cam, 100), np.uint8), now, now)
    node.robot_state.on_pose(wire.pose_to_msg(np.array([0.45, 0.0, 0.25, 1.0, 0.0, 0.0, 0.0]), now, "base"))
    node.inputs.set_status({"phase": phase, "episode_id": eid})
    node.inputs.set_reward(*reward)
    node._tick()


def _stage(node, version: int, step: int, state) -> None:
    """Weights as the learner sends them (encoded, decoded on the inbox's thread)."""
    from mentor.weights import encode_weights
    node.inbox.offer(encode_weights(version, step, state)).join()


def _episode(node, eid: int, success_at: int | None = None) -> None:
    for t in range(4):  # episode_length 3: t = 0..3, the last record at t = 3
        _tick(node, eid, reward=(1.0, True) if t == success_at else (0.0, False))
    _tick(node, eid, phase="RESETTING")


def _records(node) -> list[tuple[dict, dict]]:
    from mentor.transport import read_records
    from mentor_policy.step_record import decode_step_record
    out = []
    for seg in sorted(Path(node.cfg.outbox_dir).glob("seg_*.bin")):
        out += [decode_step_record(payload) for _seq, payload in read_records(seg)]
    return out


def test_eval_block_is_deterministic_holds_weights_and_is_recorded(node):
    state = node.policy.policy_state()
    _stage(node, 1, 0, state)
    _episode(node, 0)  # training: weights v1 swapped in after the first tick
    assert node.version == 1
    _episode(node, 1)
    _tick(node, 2)  # eval block 0 starts with v1
    _stage(node, 2, 50, state)
    for _ in range(3):
        _tick(node, 2, reward=(1.0, True) if node.recorder.current.t == 1 else (0.0, False))
    _tick(node, 2, phase="RESETTING")
    assert node.version == 1 and node.inbox.staged_version == 2  # held through the reset inside the block
    _episode(node, 3)
    assert node.version == 2  # swapped once the block ended
    recs = _records(node)
    assert len(recs) == 16 and all(m["weights_version"] in (0, 1) for _r, m in recs)
    by_ep = {e: [(r, m) for r, m in recs if m["episode_id"] == e] for e in range(4)}
    for e in range(4):
        last_rec, last_meta = by_ep[e][-1]
        assert last_rec["is_last"] and last_meta["eval"] == (e >= 2)
        assert last_meta["eval_block"] == (0 if e >= 2 else -1)
        assert last_meta["truncated"] is False and last_meta["eval_episodes"] == (2 if e >= 2 else 0)
        assert all(m["eval"] == (e >= 2) for _r, m in by_ep[e])
    assert [by_ep[e][-1][1]["success"] for e in range(4)] == [False, False, True, False]
    assert {m["weights_version"] for e in (2, 3) for _r, m in by_ep[e]} == {1}
    # actions: uniform random while exploring (num_expl_steps not reached), the same mean action when evaluating
    train_actions = [r["action"] for e in (0, 1) for r, _m in by_ep[e][1:]]
    eval_actions = [r["action"] for e in (2, 3) for r, _m in by_ep[e][1:]]
    assert len({a.tobytes() for a in train_actions}) == len(train_actions)
    assert all(np.array_equal(a, eval_actions[0]) for a in eval_actions)
    assert [s["eval"] for s in node.recorder.done] == [False, False, True, True]


def test_training_videos_show_the_chosen_camera(tmp_path):
    """The video once showed whichever camera came last in the observation loop, not a chosen one."""
    import cv2
    path = _node_params(tmp_path, cameras=["front", "wrist"], video_every=1, video_camera="front",
                        eval_every_episodes=0)
    rclpy.init(args=["--ros-args", "--params-file", str(path)])
    from mentor.policy_node import PolicyNode
    node = PolicyNode()
    try:
        for _ in range(4):
            _tick(node, 0, colours={"front": 200, "wrist": 30})
        _tick(node, 0, phase="RESETTING")
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    video = cv2.VideoCapture(str(tmp_path / "videos" / "episode_00000.mp4"))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 4 and all(abs(float(f.mean()) - 200) < 10 for f in frames), [f.mean() for f in frames]
