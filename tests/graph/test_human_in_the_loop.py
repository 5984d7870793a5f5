"""Human-in-the-loop data through the real graph (rclpy + DDS + franky-sim + MuJoCo), the scripted expert
standing in for the operator at the teleop device:

- ``record`` mode: the expert drives whole episodes, the learner stores them without updating and exits;
  its ``demos/`` is a demo store. Meanwhile the expert, as the operator, labels frames every 0.3 s with
  the sim's own success flag (the success/failure keys = ``episode/label_success``); a classifier trained
  on them reports its held-out accuracy, and the episode node's reward switches to it by configuration.
- ``train`` mode with an intervention mid-episode: the intervened steps are flagged in the replay and
  the demonstration buffer, and the learner's batches draw ``demo_ratio`` of their rows from the latter.
"""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("franky_sim")
from _graph_util import AGENT_OVERRIDES, wait_for, write_run_config  # noqa: E402

from mentor import wire  # noqa: E402
from mentor.graph import GraphArgs, NodeSpec, build_graph, write_params_yaml  # noqa: E402
from mentor.runner import GraphProcesses, node_env  # noqa: E402
from mentor_policy.specs import EnvSpec  # noqa: E402
from robot_envs.labels import LabelStore  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]
SPEC = EnvSpec(frame_channels=3, image_size=(84, 84), proprio_dim=4, action_dim=3)


def _episodes(directory: Path) -> list[dict]:
    return [dict(np.load(p)) for p in sorted(directory.glob("ep_*.npz"))]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A record run: 3 expert episodes of sim reach, frames labelled on the way, a classifier trained."""
    tmp = tmp_path_factory.mktemp("record")
    _, params = write_run_config(tmp)  # the graph tests' node parameters; the task: reach with its own workspace
    task_yaml = tmp / "reach_80_steps.yaml"  # the arm gets to the target in ~40 steps: about half are successes
    task_yaml.write_text(yaml.safe_dump({"episode_length": 80}))
    args = GraphArgs(mode="record", task="reach", task_config=str(task_yaml), use_sim=True, run_dir=str(tmp / "run"),
                     agent_config="tiny", agent_overrides=AGENT_OVERRIDES, config_file=str(params), episodes=3,
                     use_expert=True, expert_label_every_s=0.3, label_frames_dir=str(tmp / "labels"))
    graph = GraphProcesses(build_graph(args), tmp / "run", node_env())
    graph.start_all()
    try:
        wait_for(graph, "the learner to store 3 episodes and exit", lambda: "learner" in graph.exited(), 400)
        assert graph.exited()["learner"] == 0, graph.read_log("learner")[-3000:]
        learner_log = graph.read_log("learner")
        episode_log = graph.read_log("episode")
    finally:
        graph.stop_all()
    clf = tmp / "clf.pt"
    trained = subprocess.run([sys.executable, "-m", "robot_envs.labels", "train", "--labels", str(tmp / "labels"),
                              "--camera", "front", "--out", str(clf), "--holdout", "0.34", "--train-steps", "300"],
                             capture_output=True, text=True, timeout=600)
    return {"tmp": tmp, "run": tmp / "run", "learner_log": learner_log, "episode_log": episode_log,
            "train": trained, "clf": clf}


def test_record_mode_stores_expert_demonstrations_in_a_demo_store(recorded):
    run = recorded["run"]
    assert "3 episodes stored (max_episodes 3)" in recorded["learner_log"]
    demos = _episodes(run / "learner" / "demos")
    assert len(demos) == 3 and len(_episodes(run / "learner" / "replay")) == 3
    for ep in demos:
        # the expert drove the episode: every step but, at most, the first tick or two after the reset (before
        # its first message arrived) when the arm held still (row 0 is the reset observation)
        assert ep["intervention"][3:].all() and ep["intervention"][1:].mean() > 0.9
        assert np.abs(ep["action"][1:]).max() > 0.5  # the expert's actions, not the hold-still policy's zeros
    assert sum(bool(ep["reward"].max() > 1.0) for ep in demos) >= 2  # the reach expert gets there (success bonus)
    assert not re.search(r"updates [1-9]", recorded["learner_log"])  # record mode never updates
    # the store is what `mentor-run train --demo-dir` loads
    from mentor_policy.replay import ReplayBuffer, ReplayConfig, seed_episodes
    buffer = ReplayBuffer(recorded["tmp"] / "seeded", ReplayConfig(capacity=1000, fsync=False),
                          EnvSpec(6, (84, 84), 4, 3))
    assert seed_episodes(buffer, run / "learner" / "demos", EnvSpec(6, (84, 84), 4, 3), "demo") == 3


def test_labels_from_the_graph_train_a_classifier_with_a_heldout_report(recorded):
    frames = LabelStore(recorded["tmp"] / "labels").frames("front")
    assert len(frames["success"]) >= 3 and len(frames["failure"]) >= 3, {k: len(v) for k, v in frames.items()}
    assert all(im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8  # (episode id, rendered RGB frame)
               for _eid, im in frames["success"] + frames["failure"])
    with open(recorded["run"] / "episodes.csv", newline="") as fh:  # each episode's (last) operator label
        assert all(row["human_label"] in ("0", "1") for row in csv.DictReader(fh))
    out = recorded["train"]
    assert out.returncode == 0, out.stderr[-3000:]
    acc = re.search(r"held-out balanced accuracy ([0-9.]+)", out.stdout)
    assert acc and 0.0 <= float(acc.group(1)) <= 1.0, out.stdout
    print(f"classifier from graph labels: {out.stdout.strip()}")  # the figure, for the closing note
    assert recorded["clf"].is_file() and Path(str(recorded["clf"]) + ".json").is_file()


def test_episode_node_reward_switches_to_the_classifier_by_configuration(recorded, tmp_path):
    """With classifier_path in the task config the episode node publishes the classifier's verdict as the
    reward (sparse), not the task's own dense reward."""
    from robot_envs.classifier import SuccessClassifier

    clf = SuccessClassifier.load(recorded["clf"])
    frames = LabelStore(recorded["tmp"] / "labels").frames("front")
    task_yaml = tmp_path / "task.yaml"
    task_yaml.write_text(yaml.safe_dump({"classifier_path": str(recorded["clf"]), "classifier_threshold": 0.5}))
    params = {"task": "reach", "task_config": str(task_yaml), "use_sim": False, "run_dir": str(tmp_path / "run"),
              "cameras": ["front"], "service_timeout_s": 0.5, "reset_retries": 1}
    path = write_params_yaml(NodeSpec("episode", "episode_node", "", params), tmp_path / "params")
    rclpy.init(args=["--ros-args", "--params-file", str(path)])
    from mentor.common import RUNNING
    from mentor.episode_node import EpisodeNode
    node = EpisodeNode()
    try:
        assert node.task.needs_images
        pose = wire.PoseStamped()
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = 0.45, 0.0, 0.25
        pose.pose.orientation.x = 1.0
        node.robot_state.on_pose(pose)
        node.objects["target"] = np.array([0.45, 0.0, 0.25, 0, 0, 0, 1.0])  # the dense reward would pay ~max
        node.phase = RUNNING
        verdicts = []
        for _eid, image in frames["success"][:3] + frames["failure"][:3]:
            node._on_image("front", wire.image_to_msg(image, 0.0, "front"))
            node.success = False
            node._publish_reward()
            verdicts.append((node.last_reward, clf.predict_success(image, 0.5)))
        bonus = node.task.cfg.success_bonus
        assert all(r == ((1.0 + bonus) if ok else 0.0) for r, ok in verdicts), verdicts
    finally:
        node.destroy_node()
        rclpy.shutdown()


def test_an_intervention_mid_episode_reaches_both_buffers_and_the_batches(tmp_path):
    """Train mode; the expert takes over at step 4 of every episode for 4 steps (an operator's takeover)."""
    task_yaml, params = write_run_config(tmp_path)
    args = GraphArgs(mode="train", task="reach", task_config=str(task_yaml), use_sim=True,
                     run_dir=str(tmp_path / "run"), agent_config="tiny", agent_overrides=AGENT_OVERRIDES,
                     config_file=str(params), use_expert=True, expert_from_step=4, expert_steps=4, demo_ratio=0.5,
                     eval_every_episodes=0)
    learner = tmp_path / "run" / "learner"
    graph = GraphProcesses(build_graph(args), tmp_path / "run", node_env())
    graph.start_all()
    try:
        wait_for(graph, "updates with a batch demo share", lambda: re.search(
            r"updates [1-9]\d* .*batch demo share 0\.50", graph.read_log("learner")), 400)
        wait_for(graph, "two intervened episodes", lambda: len(_episodes(learner / "demos")) >= 2, 300)
    finally:
        graph.stop_all()
    replay, demos = _episodes(learner / "replay"), _episodes(learner / "demos")
    # (an episode that began before the expert node was up has no takeover; it stays out of the demos)
    intervened = [ep for ep in replay if ep["intervention"].any()]
    assert len(intervened) >= 2 and len(demos) == len(intervened)
    for ep in intervened:
        flags = ep["intervention"]
        assert not flags.all()  # the policy's steps and the expert's, in one episode
        assert not flags[1:4].any()  # before the takeover the policy acted
    # the same episodes (same rows, same flags) in the demonstration buffer
    assert [len(e["reward"]) for e in demos] == [len(e["reward"]) for e in intervened]
    assert all((d["intervention"] == r["intervention"]).all() for d, r in zip(demos, intervened))
    assert "batch demo share 0.50" in graph.read_log("learner")
