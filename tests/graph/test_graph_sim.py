"""The full MENTOR graph on the simulated FR3: real rclpy + DDS + franky-sim + MuJoCo + torch.

One training run (shared by the tests below, started once) checks that frames flow, actions move
the arm, episodes end and reset, transitions reach the learner's disk without gaps, updates run, a
perturbation fires, weights reach the policy and checkpoints are written; then malformed inputs
are injected, the learner, the policy, the robot and the episode node are killed with SIGKILL (mid-episode)
and restarted, and finally every
sequence number the policy produced is shown to be stored exactly once on the learner's disk.
A deploy run evaluates the checkpoint (summary + videos).
"""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("franky_sim")
from _graph_util import (  # noqa: E402
    BOX_MAX,
    BOX_MIN,
    LEARNER_PARAMS,
    episode_phase,
    episode_state,
    episodes_csv_rows,
    ledger_acked,
    start_graph,
    stored_rows,
    tails,
    wait_for,
)
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Float32MultiArray, Int64, String, UInt8MultiArray  # noqa: E402

from mentor import qos, wire  # noqa: E402
from mentor.transport import Outbox  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]


class Probe:
    """A node in the test process: records robot poses and weight versions, injects bad inputs."""

    def __init__(self) -> None:
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("graph_test_probe", context=self.ctx)
        self.poses: list[np.ndarray] = []
        self.versions: list[int] = []
        self.images = 0
        self.camera_k: list[float] = []
        self.node.create_subscription(PoseStamped, "robot/current_pose",
                                      lambda m: self.poses.append(wire.msg_to_pose(m)), qos.STATE)
        self.node.create_subscription(Int64, "policy/weights_version", lambda m: self.versions.append(m.data),
                                      qos.LATCHED)
        self.node.create_subscription(Image, "front/color/image_raw", self._on_image, qos.SENSOR)
        self.node.create_subscription(CameraInfo, "front/color/camera_info",
                                      lambda m: setattr(self, "camera_k", list(m.k)), qos.SENSOR)
        self.pub_teleop = self.node.create_publisher(Float32MultiArray, "teleop/action", qos.COMMAND)
        self.pub_image = self.node.create_publisher(Image, "front/color/image_raw", qos.SENSOR)
        self.pub_status = self.node.create_publisher(String, "episode/status", qos.LATCHED)
        self.pub_tr = self.node.create_publisher(UInt8MultiArray, "transitions", qos.TRANSITIONS)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_image(self, msg: Image) -> None:
        if msg.encoding == "rgb8":
            self.images += 1

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.ctx)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Run the training graph through all phases; yields (run_dir, probe observations)."""
    tmp = tmp_path_factory.mktemp("graph")
    run, learner_dir = tmp / "run", tmp / "run" / "learner"
    graph = start_graph(tmp)
    probe = Probe()
    facts: dict = {}
    try:
        # -- phase 1: the loop closes --------------------------------------------------------------
        wait_for(graph, "two finished episodes", lambda: episodes_csv_rows(run) >= 2, 300)
        wait_for(graph, "new weights in the policy",
                 lambda: "acting with weights version" in graph.read_log("policy"), 120)
        wait_for(graph, "a perturbation", lambda: "perturbation at update" in graph.read_log("learner"), 120)
        wait_for(graph, "a checkpoint", lambda: (learner_dir / "checkpoints" / "latest.pt").exists(), 60)
        facts["images"] = probe.images
        facts["camera_k"] = probe.camera_k
        facts["poses_phase1"] = np.array(probe.poses)
        facts["learner_nice"] = os.getpriority(os.PRIO_PROCESS, graph.procs["learner"].pid)
        facts["versions"] = list(probe.versions)

        # -- phase 2: malformed inputs ----------------------------------------------------------------
        # on teleop/action: policy/action has a competing publisher and the command topics keep only the
        # newest message (the robot node validates both topics with the same code); each bad action is
        # repeated until the robot node has logged its rejection
        for bad, expected in (([float("nan"), 0.0, 0.0], "NaN/inf: [nan"), ([0.1, 0.2], "2 values, expected 3"),
                              ([float("inf")] * 3, "NaN/inf: [inf")):
            deadline = time.monotonic() + 20.0
            while expected not in graph.read_log("robot") and time.monotonic() < deadline:
                probe.pub_teleop.publish(Float32MultiArray(data=bad))
                time.sleep(0.2)
        bad_img = wire.image_to_msg(np.zeros((10, 10, 3), np.uint8), time.time(), "front_color_optical_frame")
        bad_img.encoding = "mono16"
        tiny_img = wire.image_to_msg(np.zeros((1, 1, 3), np.uint8), time.time(), "front_color_optical_frame")
        bad_status = ('{"phase": "RUNNING", "step": 3, "return": 0.0, "success": false}',  # no episode_id
                      '{"episode_id": null, "phase": "RUNNING", "step": 3, "return": 0.0, "success": false}',
                      '{"episode_id": 2, "phase": "FLYING", "step": 3, "return": 0.0, "success": false}', "[]", "{")
        for i in range(5):
            probe.pub_image.publish(bad_img)
            probe.pub_image.publish(tiny_img)  # a valid rgb8 frame of the wrong size (it once killed the policy)
            probe.pub_status.publish(String(data=bad_status[i]))
            probe.pub_tr.publish(wire.bytes_to_msg(b"\x00garbage" * 10))
            time.sleep(0.05)
        wait_for(graph, "rejections in the robot log", lambda: "NaN/inf" in graph.read_log("robot")
                 and "expected 3" in graph.read_log("robot"), 10)
        wait_for(graph, "bad frame in the policy log", lambda: "bad frame from front" in graph.read_log("policy"), 10)
        wait_for(graph, "wrong-size frame and bad status in the policy log",
                 lambda: "differs from the expected" in graph.read_log("policy")
                 and "bad episode/status dropped" in graph.read_log("policy"), 10)
        wait_for(graph, "malformed transition in the learner log",
                 lambda: "dropping malformed transition" in graph.read_log("learner"), 10)

        # -- phase 3: kill -9 learner and policy, restart --------------------------------------------
        time.sleep(2.0)
        graph.kill("learner")
        time.sleep(2.0)
        graph.start("learner")
        wait_for(graph, "learner resumed", lambda: graph.read_log("learner").count("resumed from") >= 1, 240)
        episodes_before = episodes_csv_rows(run)
        time.sleep(3.0)
        graph.kill("policy")
        time.sleep(1.0)
        graph.start("policy")
        wait_for(graph, "two more episodes after the restarts",
                 lambda: episodes_csv_rows(run) >= episodes_before + 2, 240)

        # -- phase 3b: kill -9 the robot node mid-episode, then the episode node mid-episode -------------
        # robot: nothing commands the arm meanwhile (it holds); the policy skips ticks on the stale state,
        # a reset that finds no robot is retried; the restarted node reconnects to the same franky-sim
        wait_for(graph, "a running episode", lambda: episode_phase(run) == "RUNNING", 120)
        time.sleep(0.5)
        graph.kill("robot")
        facts["robot_killed_in_episode"] = episode_state(run)["episode_id"]
        time.sleep(2.0)
        n_poses = len(probe.poses)
        graph.start("robot")
        wait_for(graph, "the robot node back", lambda: graph.read_log("robot").count("robot node up") >= 2, 120)
        episodes_before = episodes_csv_rows(run)
        wait_for(graph, "two episodes after the robot restart",
                 lambda: episodes_csv_rows(run) >= episodes_before + 2, 240)
        facts["poses_after_robot_restart"] = np.array(probe.poses[n_poses:])
        # episode: the interrupted episode is truncated and never continued; the count goes on from disk
        wait_for(graph, "a running episode", lambda: episode_phase(run) == "RUNNING", 120)
        time.sleep(0.5)
        facts["episode_killed_in"] = episode_state(run)["episode_id"]
        graph.kill("episode")
        time.sleep(2.0)
        graph.start("episode")
        episodes_before = episodes_csv_rows(run)
        wait_for(graph, "two episodes after the episode-node restart",
                 lambda: episodes_csv_rows(run) >= episodes_before + 2, 240)

        # -- phase 4: drain: stop the episode node, the policy finishes its episode and resends ------
        graph.kill("episode", signal.SIGINT)
        time.sleep(3.0)
        def drained():  # the policy stopped producing (its episode ended) and everything is acknowledged
            last = Outbox(run / "actor" / "outbox").next_seq - 1
            if last < 0 or ledger_acked(learner_dir).get("robot") != last:
                return None
            time.sleep(2.0)
            return last if Outbox(run / "actor" / "outbox").next_seq - 1 == last else None
        facts["last_seq"] = wait_for(graph, "every record acknowledged", drained, 60, allowed_exits=("episode",))
        # -- phase 5: no episodes run any more: the operator pushes far out of the box ---------------
        log_len = len(graph.read_log("robot"))
        n_before = len(probe.poses)
        t_end, first_clip = time.monotonic() + 20.0, None
        while time.monotonic() < t_end:  # the operator pushes far out of the box: the box holds
            probe.pub_teleop.publish(wire.array_to_msg(np.array([5.0, 5.0, 5.0])))
            time.sleep(0.05)
            if first_clip is None and "clipped" in graph.read_log("robot")[log_len:]:
                first_clip = time.monotonic()  # executed (not during a reset move)
                n_before = len(probe.poses)
            if first_clip is not None and time.monotonic() - first_clip > 5.0:
                break
        facts["poses_pushed"] = np.array(probe.poses[n_before:])
        facts["versions"] = list(probe.versions)
        facts["logs"] = {n: graph.read_log(n) for n in graph.nodes}
        facts["exits_before_stop"] = graph.exited()
    except BaseException:
        print(tails(graph, 6000))
        raise
    finally:
        probe.close()
        facts["exit_codes"] = graph.stop_all()
    yield run, facts


def test_frames_flow_and_actions_move_the_arm(trained):
    _run, facts = trained
    assert facts["images"] > 10
    # the graph's sim camera is the one robot_envs.make(backend="sim") renders: same images in both
    from robot_envs.env import default_sim_cameras
    from robot_envs.tasks import get_task
    cam = default_sim_cameras(["front"], get_task("reach").cfg.image_size)[0]
    focal = 0.5 * cam.height / np.tan(np.deg2rad(cam.fovy) / 2)
    assert facts["camera_k"] and facts["camera_k"][0] == pytest.approx(focal), facts["camera_k"]
    poses = facts["poses_phase1"]
    assert len(poses) > 50
    assert np.ptp(poses[:, :3], axis=0).max() > 0.01, "the arm never moved"


def test_episodes_end_and_reset(trained):
    run, _facts = trained
    lines = (run / "episodes.csv").read_text().splitlines()
    assert lines[0].startswith("episode_id,steps,return,success")
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) >= 4
    ids = [int(r[0]) for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(int(r[1]) > 0 for r in rows)
    # episodes.csv counts what the policy sent the learner (its episode/summary), episode by episode
    policy_steps = {int(e): int(n) for e, n in re.findall(r"episode (\d+) done: (\d+) steps",
                                                          (run / "logs" / "policy.log").read_text())}
    both = [(int(r[0]), int(r[1])) for r in rows if int(r[0]) in policy_steps]
    assert len(both) >= 4 and all(policy_steps[e] == n for e, n in both), (both, policy_steps)
    # training records every video_every-th episode (default 10): episode 0's video is complete
    import cv2
    video = run / "videos" / "episode_00000.mp4"
    assert video.exists(), (sorted(p.name for p in (run / "videos").glob("*"))
                            if (run / "videos").exists() else "no videos/")
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (84, 84, 3)


def test_learning_machinery_ran(trained):
    run, facts = trained
    learner_log = facts["logs"]["learner"]
    assert "perturbation at update" in learner_log
    assert (run / "learner" / "checkpoints" / "latest.pt").exists()
    assert list((run / "learner" / "tb").rglob("events.out.tfevents.*"))
    assert list((run / "learner" / "topk").iterdir())
    assert max(facts["versions"]) > 1, f"policy never used new weights: {facts['versions']}"
    assert "acting with weights version" in facts["logs"]["policy"]
    assert re.search(r"swapped in [0-9.]+ ms", facts["logs"]["policy"])  # benchmarks/weight_sync.py reads this
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + LEARNER_PARAMS["nice"])  # relative to this process
    assert facts["learner_nice"] == expected, "the learner did not lower its priority"


def test_no_transition_lost_or_duplicated_across_kill9(trained):
    run, facts = trained
    last = facts["last_seq"]
    rows = stored_rows(run / "learner")
    assert rows["replay"] > 0
    assert rows["replay"] + rows["journal"] + rows["discarded"] == last + 1, rows
    assert ledger_acked(run / "learner") == {"robot": last}
    assert "resumed from" in facts["logs"]["learner"]


def test_robot_and_episode_nodes_survive_kill9(trained):
    run, facts = trained
    # the arm held still and inside the box while no robot node commanded it
    after = facts["poses_after_robot_restart"][:, :3]
    assert len(after) > 10
    assert np.all(after <= np.array(BOX_MAX) + 0.01) and np.all(after >= np.array(BOX_MIN) - 0.01)
    assert facts["logs"]["robot"].count("robot node up") >= 2
    # the episode interrupted by the episode node's death is never continued: ids go on, unique, increasing
    rows = [line.split(",") for line in (run / "episodes.csv").read_text().splitlines()[1:]]
    ids = [int(r[0]) for r in rows]
    assert ids == sorted(set(ids)), ids
    killed = facts["episode_killed_in"]
    assert killed not in ids, f"episode {killed} was interrupted but written as finished: {ids}"
    assert max(ids) > killed
    assert f"restarted while episode {killed} was running" in facts["logs"]["episode"]
    # the learner's update counter came back from its newest checkpoint, not from zero
    log = facts["logs"]["learner"]
    before, _, after = log.partition("resumed from")
    saved = [int(n) for n in re.findall(r"checkpoint \S+ at update (\d+)", before)]
    resumed = re.match(r"\s*\S+: updates (\d+)", after)
    assert saved and resumed, "no checkpoint before the learner kill, or no resume line"
    assert int(resumed.group(1)) >= saved[-1] > 0


def test_malformed_inputs_are_logged_and_the_arm_stays_in_the_box(trained):
    _run, facts = trained
    pushed = facts["poses_pushed"][:, :3]
    assert len(pushed) > 20
    tol = 0.01  # tracking error of the impedance controller [m]
    assert np.all(pushed <= np.array(BOX_MAX) + tol), pushed.max(axis=0)
    assert np.all(pushed >= np.array(BOX_MIN) - tol), pushed.min(axis=0)
    reached = np.abs(pushed - np.array(BOX_MAX)).min(axis=0)
    assert np.sum(reached < 0.02) >= 2, f"the push never reached the box faces: closest {reached}"
    assert facts["exits_before_stop"] == {"episode": 0} or set(facts["exits_before_stop"]) == {"episode"}
    logs = facts["logs"]
    assert "NaN/inf" in logs["robot"] and "expected 3" in logs["robot"] and "clipped" in logs["robot"]
    assert "mono16" in logs["policy"] and "image size 1x1 differs from the expected" in logs["policy"]
    assert "bad episode/status dropped" in logs["policy"]  # and the policy kept acting: later phases need it
    assert "dropping malformed transition" in logs["learner"]


def test_deploy_evaluates_the_checkpoint(trained, tmp_path):
    """Deploy with ticks phase-locked to the camera (the control thread), at SCHED_FIFO where permitted."""
    run, _facts = trained
    from _graph_util import AGENT_OVERRIDES, fifo_threads, may_use_fifo, write_run_config

    from mentor.graph import GraphArgs, build_graph
    from mentor.runner import GraphProcesses, node_env
    rt = 10 if may_use_fifo() else 0
    task_yaml, params = write_run_config(tmp_path, episode_length=8,
                                         policy={"tick_source": "camera", "realtime_priority": rt},
                                         sim_world={"camera_realtime_priority": max(rt - 1, 0)})
    args = GraphArgs(mode="deploy", task="reach", task_config=str(task_yaml), use_sim=True, robot_ip="auto",
                     run_dir=str(tmp_path / "eval"), agent_config="tiny", agent_overrides=AGENT_OVERRIDES,
                     checkpoint=str(run / "learner" / "checkpoints" / "latest.pt"), episodes=2,
                     config_file=str(params))
    graph = GraphProcesses(build_graph(args), tmp_path / "eval", node_env())
    graph.start_all()
    fifo = {}
    try:
        wait_for(graph, "ticks locked to the camera", lambda: "ticks locked to the camera" in graph.read_log("policy"),
                 150)
        fifo = {name: fifo_threads(graph.procs[name].pid) for name in ("policy", "sim_world")}
        wait_for(graph, "deploy summary", lambda: (tmp_path / "eval" / "deploy_summary.json").exists(), 150,
                 allowed_exits=("policy", "episode"))
        # after its episodes the policy exits by itself: the control thread stops, the node shuts down cleanly
        wait_for(graph, "the policy's own exit", lambda: graph.procs["policy"].poll() is not None, 30,
                 allowed_exits=("policy", "episode"))
    finally:
        codes = graph.stop_all()
    summary = json.loads((tmp_path / "eval" / "deploy_summary.json").read_text())
    assert summary["episodes"] >= 2 and 0.0 <= summary["success_rate"] <= 1.0
    assert len(list((tmp_path / "eval" / "videos").glob("episode_*.mp4"))) >= 2
    assert "ticks on camera" in graph.read_log("policy")
    assert codes.get("policy") == 0, graph.read_log("policy")[-3000:]  # the control thread ended cleanly
    if rt:  # the control and executor threads and the sim's render threads at FIFO; DDS, decoders, physics are not
        policy_fifo, policy_threads = fifo["policy"]
        sim_fifo, sim_threads = fifo["sim_world"]
        assert policy_fifo == 2 and policy_threads > 2
        assert 1 <= sim_fifo < sim_threads


def _maps_libtorch(pid: int) -> bool:
    """True when the process has torch's shared library mapped (i.e. imported torch)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text(errors="replace")
    except OSError:
        return False


def test_deploy_with_onnx_runtime_never_loads_torch(trained, tmp_path):
    """The robot-PC path: export the trained policy to ONNX, deploy it; the policy process has no torch."""
    run, _facts = trained
    import yaml
    from _graph_util import AGENT_OVERRIDES, write_run_config

    from mentor.graph import GraphArgs, build_graph
    from mentor.runner import GraphProcesses, node_env
    from mentor_policy.checkpoint import load_checkpoint
    from mentor_policy.config import load_agent_config
    from mentor_policy.export import export_onnx
    from mentor_policy.policy import ActorPolicy
    from robot_envs.tasks import get_task

    task_yaml, params = write_run_config(tmp_path, episode_length=8, policy={"tick_source": "timer"})
    agent_cfg = load_agent_config("tiny", yaml.safe_load(AGENT_OVERRIDES))
    task = get_task("reach", str(task_yaml))
    spec = task.env_spec(len(task.cfg.cameras))
    policy = ActorPolicy(spec, agent_cfg, device="cpu")
    policy.load_policy_state(load_checkpoint(run / "learner" / "checkpoints" / "latest.pt")["policy"])
    onnx_path = export_onnx(policy, tmp_path / "policy.onnx")

    args = GraphArgs(mode="deploy", task="reach", task_config=str(task_yaml), use_sim=True, robot_ip="auto",
                     run_dir=str(tmp_path / "eval"), agent_config="tiny", agent_overrides=AGENT_OVERRIDES,
                     onnx=str(onnx_path), episodes=2, config_file=str(params))
    graph = GraphProcesses(build_graph(args), tmp_path / "eval", node_env())
    graph.start_all()
    torch_seen = False
    try:
        def summary_written():
            nonlocal torch_seen
            proc = graph.procs["policy"]
            if proc.poll() is None:
                torch_seen = torch_seen or _maps_libtorch(proc.pid)
            return (tmp_path / "eval" / "deploy_summary.json").exists()
        wait_for(graph, "ONNX deploy summary", summary_written, 150, allowed_exits=("policy", "episode"))
    finally:
        graph.stop_all()
    summary = json.loads((tmp_path / "eval" / "deploy_summary.json").read_text())
    assert summary["episodes"] >= 2 and 0.0 <= summary["success_rate"] <= 1.0
    assert not torch_seen, "the ONNX Runtime policy process loaded torch"
    assert "policy node up: deploy" in graph.read_log("policy") and "ticks on timer" in graph.read_log("policy")
