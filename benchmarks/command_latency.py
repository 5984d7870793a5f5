"""Latency from FrankyRobot.command_pose (a 1 cm step) to measurable TCP motion (> 0.5 mm) on franky-sim.

Usage: python benchmarks/command_latency.py [--trials 30] [--dynamics 0.3]
Prints median / p99 in wall-clock ms and in simulated ms (the robot's own clock; the sim may run
slower than real time on a loaded machine, which inflates the wall-clock figure).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig  # noqa: E402
from robot_envs.sim import SimWorld, SimWorldConfig  # noqa: E402

DOWN = np.array([1.0, 0.0, 0.0, 0.0])


def one_trial(robot, world, start, direction, threshold=5e-4, timeout_s=5.0):
    """Return (wall latency s, sim latency s) from command to > threshold displacement."""
    target = start.copy()
    target[:3] += 0.01 * direction
    t_sim0 = world.sim_time()
    t0 = time.perf_counter()
    robot.command_pose(target)
    while time.perf_counter() - t0 < timeout_s:
        s = robot.read_state()
        if np.linalg.norm(s.ee_pose[:3] - start[:3]) > threshold:
            return time.perf_counter() - t0, world.sim_time() - t_sim0
    raise RuntimeError(f"no motion within {timeout_s} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--dynamics", type=float, default=0.3, help="relative dynamics factor")
    args = ap.parse_args()
    wall, sim = [], []
    with SimWorld(SimWorldConfig(cameras=[], hostname="auto")) as world:
        cfg = FrankyRobotConfig(hostname=world.hostname, ignore_realtime=True, gripper_enabled=False,
                                relative_dynamics_factor=args.dynamics)
        with FrankyRobot(cfg) as robot:
            home = np.concatenate([[0.5, 0.0, 0.4], DOWN])
            robot.move_to(home, timeout_s=30.0)
            for i in range(args.trials):
                world.clock.sleep(0.3)  # settle
                start = robot.read_state().ee_pose
                direction = np.array([1.0, 0, 0]) if i % 2 == 0 else np.array([-1.0, 0, 0])
                w, s = one_trial(robot, world, start, direction)
                wall.append(w)
                sim.append(s)
    wall_ms, sim_ms = np.array(wall) * 1e3, np.array(sim) * 1e3
    print(f"command_pose -> >0.5 mm TCP motion, {args.trials} trials, franky -> franky-sim, "
          f"relative_dynamics_factor={args.dynamics}, load avg {os.getloadavg()[0]:.1f}")
    print(f"  wall-clock: median {np.median(wall_ms):.1f} ms, p99 {np.percentile(wall_ms, 99):.1f} ms")
    print(f"  sim time:   median {np.median(sim_ms):.1f} ms, p99 {np.percentile(sim_ms, 99):.1f} ms")


if __name__ == "__main__":
    main()
