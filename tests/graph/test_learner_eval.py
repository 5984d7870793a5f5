"""Learner node (real rclpy, in this process): evaluation blocks -> eval.csv, best.pt, best score across a restart.

Step records are encoded as the policy sends them and handed to the node's transition callback; no updates
run (num_seed_frames is out of reach), so the test only exercises ingest and evaluation bookkeeping.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rclpy

from mentor import wire
from mentor.graph import NodeSpec, write_params_yaml

pytestmark = pytest.mark.ros

OVERRIDES = ("{batch_size: 4, hidden_dim: 16, feature_dim: 8, encoder_channels: 4, num_experts: 2, moe_top_k: 1, "
             "expert_hidden_dim: 8, gate_hidden_dim: 8, frame_stack: 2}")
BLOCK = 2  # eval_episodes in the records' meta


class Robot:
    """Plays one policy node: numbered step records of short episodes."""

    def __init__(self) -> None:
        self.seq = 0

    def episode(self, node, eid: int, version: int, success: bool, block: int = -1, intervention: bool = False) -> None:
        from mentor_policy.step_record import encode_step_record
        for t in range(3):
            last = t == 2
            record = {"image": np.zeros((3, 84, 84), np.uint8), "proprio": np.zeros(4, np.float32),
                      "action": np.zeros(3, np.float32), "reward": 0.0 if t == 0 else 1.0, "discount": 1.0,
                      "is_first": t == 0, "is_last": last, "intervention": intervention and t == 1}
            meta = {"source": "robot", "seq": self.seq, "episode_id": eid, "t": t, "eval": block >= 0,
                    "eval_block": block, "weights_version": version}
            if last:
                meta.update(success=success, truncated=False, eval_episodes=BLOCK if block >= 0 else 0)
            node._on_transition(wire.bytes_to_msg(encode_step_record(record, meta)))
            self.seq += 1


def _start(tmp: Path, **extra):
    params = {"task": "reach", "cameras": ["front"], "agent_config": "tiny", "agent_overrides": OVERRIDES,
              "learner_dir": str(tmp / "learner"), "num_seed_frames": 10**9, "log_every_s": 60.0, **extra}
    path = write_params_yaml(NodeSpec("learner", "learner_node", "", params), tmp / "params")
    rclpy.init(args=["--ros-args", "--params-file", str(path)])
    from mentor.learner_node import LearnerNode
    return LearnerNode()


def _stop(node) -> None:
    node.shutdown()
    node.destroy_node()
    rclpy.shutdown()


def _wait_rows(csv: Path, rows: int, node, timeout_s: float = 60.0) -> None:
    """Until eval.csv holds ``rows`` rows and the trainer thread has handled every finished episode."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if csv.exists() and len(csv.read_text().splitlines()) - 1 >= rows and node.ended.empty():
            time.sleep(0.3)  # the block of the last row is scored right after it
            return
        time.sleep(0.05)
    raise AssertionError(f"eval.csv did not reach {rows} rows")


def _best(tmp: Path) -> dict:
    from mentor_policy.checkpoint import load_checkpoint
    return load_checkpoint(tmp / "learner" / "checkpoints" / "best.pt")


def test_eval_blocks_write_eval_csv_and_keep_the_best_across_a_restart(tmp_path):
    from mentor_policy.checkpoint import load_checkpoint
    csv = tmp_path / "learner" / "eval.csv"
    robot = Robot()
    node = _start(tmp_path)
    try:
        v1 = node.version
        robot.episode(node, 0, v1, success=True)  # training episodes: not in eval.csv
        robot.episode(node, 1, v1, success=False)
        robot.episode(node, 2, v1, success=True, block=0)
        node._publish_weights()  # a new version arrives during the block: the policy holds it back
        robot.episode(node, 3, v1, success=False, block=0)
        _wait_rows(csv, 2, node)
        best = _best(tmp_path)
        assert (best["weights_version"], best["eval_success"], best["eval_episodes"], best["eval_block"]) == \
            (v1, 0.5, BLOCK, 0)
        assert best["eval_return"] == 2.0 and best["task"] == "reach" and best["cameras"] == ["front"]
        assert best["agent_config"]["hidden_dim"] == 16 and best["env_steps"] == 0 and best["eval_env_steps"] == 12
        cached = node.policy_cache.get(v1)[0]
        assert best["policy"].keys() == cached.keys()
        assert all(bool((best["policy"][k] == cached[k]).all()) for k in cached)
        v2 = node.version
        robot.episode(node, 6, v2, success=False, block=1)  # a worse block does not replace best.pt
        robot.episode(node, 7, v2, success=False, block=1)
        _wait_rows(csv, 4, node)
        assert _best(tmp_path)["weights_version"] == v1
    finally:
        _stop(node)
    latest = load_checkpoint(tmp_path / "learner" / "checkpoints" / "latest.pt")
    assert latest["task"] == "reach" and latest["cameras"] == ["front"] and latest["agent_config"]["frame_stack"] == 2
    rows = csv.read_text().splitlines()
    assert rows[0] == "env_steps,source,episode_id,weights_version,block,success,return"
    assert [r.split(",")[2:6] for r in rows[1:]] == [["2", str(v1), "0", "1"], ["3", str(v1), "0", "0"],
                                                     ["6", str(v2), "1", "0"], ["7", str(v2), "1", "0"]]

    node = _start(tmp_path)  # restart: the best score comes back from best.pt
    try:
        assert node.best_success == 0.5
        v3 = node.version
        robot.episode(node, 10, v3, success=False, block=2)
        robot.episode(node, 11, v3, success=True, block=2)  # a tie: the newer weights win
        _wait_rows(csv, 6, node)
        assert _best(tmp_path)["weights_version"] == v3 > v1
        robot.episode(node, 14, v3, success=True, block=3)  # mixed versions: not scored
        robot.episode(node, 15, v3 + 1, success=True, block=3)
        _wait_rows(csv, 8, node)
        assert _best(tmp_path)["weights_version"] == v3
    finally:
        _stop(node)


def test_deploy_loads_the_learners_best_and_latest(tmp_path):
    """``mentor-run deploy --checkpoint .../best.pt`` or ``.../latest.pt``: both build the trained networks."""
    from mentor.common import load_task
    from mentor.policy_io import load_deploy_policy
    from mentor_policy.config import load_agent_config
    robot = Robot()
    node = _start(tmp_path)
    try:
        for eid in (2, 3):
            robot.episode(node, eid, node.version, success=True, block=0)
        _wait_rows(tmp_path / "learner" / "eval.csv", 2, node)
    finally:
        _stop(node)
    spec = load_task("reach", "").env_spec(1)
    ckpts = tmp_path / "learner" / "checkpoints"
    for name in ("best.pt", "latest.pt"):
        warnings: list[str] = []
        policy = load_deploy_policy("", str(ckpts / name), spec, load_agent_config("tiny"), device="cpu",
                                    log=warnings.append, task="reach", cameras=["front"])
        assert policy.cfg.hidden_dim == 16 and policy.cfg.frame_stack == 2 and policy.in_channels == 6
        action = policy.act(np.zeros((6, 84, 84), np.uint8), np.zeros(4, np.float32))
        assert action.shape == (3,) and any("hidden_dim" in w for w in warnings)


def test_a_foreign_or_garbled_checkpoint_stops_the_learner_with_a_clear_error_and_is_kept(tmp_path):
    """A policy-only file where latest.pt belongs once gave a bare KeyError: 'agent'; garbled bytes loaded as NaN."""
    from mentor_policy.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    node = _start(tmp_path)
    try:
        node._checkpoint()
        policy_state = node.agent.policy_state()
    finally:
        _stop(node)
    ckpt = tmp_path / "learner" / "checkpoints" / "latest.pt"
    assert set(load_checkpoint(ckpt)) >= {"agent", "updates", "weights_version", "episodes"}
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2:len(data) // 2 + 32] = bytes(range(32))
    for content, match in ((bytes(data), "SHA-256"),
                           (None, "is not a learner checkpoint: it holds a bare policy state")):
        if content is None:
            save_checkpoint(ckpt, policy_state)
            content = ckpt.read_bytes()
        ckpt.write_bytes(content)
        with pytest.raises(CheckpointError, match=match):
            _start(tmp_path)
        rclpy.shutdown()
        assert ckpt.read_bytes() == content  # left as it was, for the user to inspect


def test_a_crash_between_storing_an_episode_and_retiring_its_journal_entry_stores_it_once(tmp_path):
    """Kill after replay.add_episode, before journal.discard: the restart once re-added the episode (two
    identical files); counters (episodes, weights versions) once went back to the last checkpoint's."""
    replay_dir = tmp_path / "learner" / "replay"
    robot = Robot()
    node = _start(tmp_path)
    versions_before = node.version

    def crash(key):
        raise KeyboardInterrupt("killed between storing the episode and retiring its journal entry")

    node.journal.discard = crash
    with pytest.raises(KeyboardInterrupt):
        robot.episode(node, 0, version=1, success=True)
    robot.seq += 1  # the last record was sent (and stored) before the crash: the robot's next seq follows it
    assert len(list(replay_dir.glob("ep_*.npz"))) == 1 and node.journal.keys() == ["robot-ep0"]
    node.destroy_node()  # no shutdown(): no final checkpoint, as after kill -9
    rclpy.shutdown()

    node = _start(tmp_path)
    try:
        assert node.episodes == 1 and node.version > versions_before  # no version number named twice
        robot.episode(node, 1, version=node.version, success=False)  # the next episode closes the recovered one
        files = sorted(p.name for p in replay_dir.glob("ep_*.npz"))
        assert len(files) == 2 and files[0].endswith(".robot-ep0.npz") and files[1].endswith(".robot-ep1.npz")
        assert node.episodes == 2 and node.journal.keys() == []
        assert node.replay.num_transitions == 2 * 2  # 3 records = 2 transitions per episode
    finally:
        _stop(node)


def test_interventions_and_demo_stores_fill_the_demo_buffer_and_batches_mix(tmp_path):
    """Human-in-the-loop data: an intervened episode goes to the replay and the demonstration buffer; a demo
    store and an earlier run's replay seed the run once (a restart adds nothing); batches draw demo_ratio."""
    from mentor_policy.replay import ReplayBuffer, ReplayConfig
    earlier = tmp_path / "earlier"
    node = _start(earlier)
    robot = Robot()
    for eid in range(2):
        robot.episode(node, eid, version=1, success=False)
    spec = node.spec
    _stop(node)
    store = ReplayBuffer(tmp_path / "demo_store", ReplayConfig(capacity=1000, fsync=False), spec)
    for i in range(3):  # three recorded demonstrations of 4 transitions
        store.add_episode({"image": np.zeros((5, 3, 84, 84), np.uint8), "proprio": np.zeros((5, 4), np.float32),
                           "action": np.zeros((5, 3), np.float32), "reward": np.full(5, float(i), np.float32),
                           "discount": np.ones(5, np.float32)})
    seeds = {"demo_dirs": [str(tmp_path / "demo_store")], "seed_replay_from": [str(earlier / "learner" / "replay")],
             "seed_topk_from": [str(earlier / "learner" / "topk")], "demo_ratio": 0.25}
    for attempt in range(2):  # the second start must not add the seeds again
        node = _start(tmp_path, **seeds)
        try:
            if attempt == 0:
                robot = Robot()
                robot.episode(node, 0, version=1, success=False)
                robot.episode(node, 1, version=1, success=False, intervention=True)
            assert node.demos.num_transitions == 3 * 4 + 2  # the store's demos + the intervened episode
            assert node.replay.num_transitions == 2 * 2 + 2 * 2  # the earlier run's 2 episodes + this run's 2
            batch = node.mixed.sample(8)
            assert batch["from_demo"].sum() == 2 and batch["image"].shape[0] == 8
        finally:
            _stop(node)
    marker = (tmp_path / "learner" / "seeded_topk.txt").read_text().strip()
    assert marker == str((earlier / "learner" / "topk").resolve())
