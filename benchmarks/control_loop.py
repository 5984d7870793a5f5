"""Control-loop timing of the full graph on the simulated FR3 while the learner trains.

Starts the training graph (mentor-run machinery: one process per node, real rclpy/DDS, franky-sim,
MuJoCo rendering) at ``--hz`` (default 20) and, after a warm-up, records the policy node's
``policy/timing`` messages for ``--seconds``: tick period jitter (|period - 1/hz|) and
frame-to-command latency (camera frame stamp -> action published), p50/p99, plus the learner's
update count so the numbers are known to be measured while it trains.

    .venv/bin/python benchmarks/control_loop.py [--hz 20] [--seconds 60] [--agent-config tiny]
        [--tick-source frame|camera|timer] [--realtime-priority 0] [--sim-camera-realtime-priority 0]
        [--max-updates-per-s 4] [--learner-nice 0] [--samples-out samples.csv]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "ros2_ws" / "src" / "mentor")]
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
os.environ.setdefault("MUJOCO_GL", "egl")

import rclpy  # noqa: E402
import yaml  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from mentor import qos  # noqa: E402
from mentor.graph import GraphArgs, build_graph  # noqa: E402
from mentor.runner import GraphProcesses, node_env  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hz", type=float, default=20.0)
    p.add_argument("--seconds", type=float, default=60.0, help="measurement window after warm-up")
    p.add_argument("--warmup", type=float, default=240.0, help="max wait for the learner's first updates [s]")
    p.add_argument("--agent-config", default="tiny")
    p.add_argument("--task", default="reach")
    p.add_argument("--tick-source", default="frame", choices=("frame", "camera", "timer"),
                   help="policy tick_source: on frame arrival (default), phase-locked to the camera, or free-running")
    p.add_argument("--realtime-priority", type=int, default=0,
                   help="policy realtime_priority: SCHED_FIFO priority of the ticking thread (0 = normal)")
    p.add_argument("--max-updates-per-s", type=float, default=4.0, help="learner update rate cap (0 = none)")
    p.add_argument("--sim-camera-realtime-priority", type=int, default=0,
                   help="sim_world camera_realtime_priority: SCHED_FIFO priority of the simulated cameras (0 = normal)")
    p.add_argument("--samples-out", default="", help="also write the raw policy/timing samples to this CSV")
    p.add_argument("--learner-nice", type=int, default=0, help="learner niceness (0-19): control path first")
    a = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mentor_bench_loop_"))
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump({"learner": {"ros__parameters": {
        "num_seed_frames": 100, "max_updates_per_s": a.max_updates_per_s, "replay_capacity": 20000,
        "log_every_s": 2.0, "nice": a.learner_nice}},
        "policy": {"ros__parameters": {"tick_source": a.tick_source, "realtime_priority": a.realtime_priority}},
        "sim_world": {"ros__parameters": {"camera_realtime_priority": a.sim_camera_realtime_priority}}}))
    task_yaml = tmp / "task.yaml"
    task_yaml.write_text(yaml.safe_dump({"episode_length": 200, "control_hz": a.hz}))
    args = GraphArgs(mode="train", task=a.task, task_config=str(task_yaml), use_sim=True, robot_ip="auto",
                     run_dir=str(tmp / "run"), agent_config=a.agent_config, control_hz=a.hz, config_file=str(params))
    graph = GraphProcesses(build_graph(args), tmp / "run", node_env())
    rclpy.init()
    node = rclpy.create_node("bench_control_loop")
    samples: list[tuple[float, float, float]] = []
    recording = threading.Event()
    node.create_subscription(Float64MultiArray, "policy/timing",
                             lambda m: recording.is_set() and samples.append(tuple(m.data)), qos.STATE)
    spin = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    spin.start()
    graph.start_all()
    try:
        deadline = time.monotonic() + a.warmup
        while "perturbation at update" not in graph.read_log("learner") and "updates" not in _updates_line(graph):
            if time.monotonic() > deadline or graph.exited():
                print(f"learner did not start training within {a.warmup} s; exited: {graph.exited()}")
                return 1
            time.sleep(1.0)
        updates_before = _updates(graph)
        recording.set()
        time.sleep(a.seconds)
        recording.clear()
        updates_after = _updates(graph)
    finally:
        graph.stop_all()
        node.destroy_node()
        rclpy.try_shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"policy tick_source: {a.tick_source}, realtime_priority {a.realtime_priority}; sim camera realtime "
          f"priority {a.sim_camera_realtime_priority}; learner max_updates_per_s {a.max_updates_per_s}, "
          f"nice {a.learner_nice}")
    report(samples, a.hz, updates_after - updates_before, a.seconds)
    if a.samples_out and samples:
        np.savetxt(a.samples_out, np.array(samples), delimiter=",", fmt="%.6f",
                   header="tick_start_s,frame_to_command_s,tick_compute_s,frame_to_arrival_s")
    return 0


def _updates_line(graph) -> str:
    lines = [line for line in graph.read_log("learner").splitlines() if line.startswith("learner: env_steps")]
    last = lines[-1] if lines else ""
    return last if _parse_updates(last) > 0 else ""


def _parse_updates(line: str) -> int:
    parts = line.split()
    return int(parts[parts.index("updates") + 1]) if "updates" in parts else 0


def _updates(graph) -> int:
    return _parse_updates(_updates_line(graph))


def report(samples, hz: float, updates: int, seconds: float) -> None:
    if len(samples) < 10:
        print(f"only {len(samples)} control ticks recorded: the policy was not acting")
        return
    arr = np.array(samples)
    starts = np.sort(arr[:, 0])
    periods = np.diff(starts)
    periods = periods[periods < 0.5]  # drop the gaps of episode resets (no ticks while RESETTING)
    jitter = np.abs(periods - 1.0 / hz) * 1e3
    lat = arr[:, 1] * 1e3
    comp = arr[:, 2] * 1e3
    transport = arr[:, 3] * 1e3
    print(f"control loop at {hz:.0f} Hz over {seconds:.0f} s, learner updates during the window: {updates}")
    print(f"  ticks acting: {len(arr)}  mean period {periods.mean() * 1e3:.1f} ms (target {1e3 / hz:.1f} ms)")
    print(f"  period jitter |T - 1/hz|: p50 {np.percentile(jitter, 50):.1f} ms  p99 {np.percentile(jitter, 99):.1f} ms")
    print(f"  frame-to-command latency: p50 {np.percentile(lat, 50):.1f} ms  p99 {np.percentile(lat, 99):.1f} ms")
    print(f"  of which frame stamp -> arrival at the policy (render + DDS + wake-up): "
          f"p50 {np.percentile(transport, 50):.1f} ms  p99 {np.percentile(transport, 99):.1f} ms")
    age = lat - comp
    print(f"  frame age at tick start: p10 {np.percentile(age, 10):.1f}  p50 {np.percentile(age, 50):.1f}  "
          f"p90 {np.percentile(age, 90):.1f} ms")
    print(f"  tick compute (observe + act + publish): p50 {np.percentile(comp, 50):.1f} ms  "
          f"p99 {np.percentile(comp, 99):.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
