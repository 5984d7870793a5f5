"""Simulated env throughput: env steps per second at 84x84 with one and two cameras, render time per frame.

Each configuration runs in its own process (one SimWorld per process). A step is paced to the
task's control rate (10 Hz) on the simulator's clock, so steps/s is bounded by 10 x the achieved
sim speed (sim seconds per wall second, also printed).

    .venv/bin/python benchmarks/env_steps.py [--steps 50] [--renders 50] [--task reach]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")


def measure(task: str, cameras: tuple[str, ...], steps: int, renders: int) -> dict:
    import numpy as np

    from robot_envs.env import EnvConfig, make

    with make(task, env_config=EnvConfig(seed=0, move_timeout_s=120.0), cameras=list(cameras),
              episode_length=steps + 1) as env:
        env.reset()
        rng = np.random.default_rng(0)
        sim0, t0 = env.world.sim_time(), time.perf_counter()
        for _ in range(steps):
            env.step(rng.uniform(-0.3, 0.3, env.spec.action_dim))
        wall = time.perf_counter() - t0
        sim = env.world.sim_time() - sim0
        r0 = time.perf_counter()
        for _ in range(renders):
            for cam in cameras:
                env.world.render(cam)
        render_ms = (time.perf_counter() - r0) / (renders * len(cameras)) * 1000
    return {"cameras": len(cameras), "steps_per_s": steps / wall, "ms_per_step": wall / steps * 1000,
            "sim_speed": sim / wall, "render_ms_per_frame": render_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="reach")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--renders", type=int, default=50)
    args = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    print(f"task={args.task} image=84x84 control=10 Hz steps={args.steps} renders={args.renders} "
          f"cpus={os.cpu_count()} load1={os.getloadavg()[0]:.1f}")
    for cams in (("front",), ("front", "side")):
        with ctx.Pool(1) as pool:
            r = pool.apply(measure, (args.task, cams, args.steps, args.renders))
        print(f"cameras={r['cameras']}: {r['steps_per_s']:.2f} env steps/s ({r['ms_per_step']:.1f} ms/step), "
              f"sim speed {r['sim_speed']:.2f}x real time, render {r['render_ms_per_frame']:.1f} ms/frame")


if __name__ == "__main__":
    main()
