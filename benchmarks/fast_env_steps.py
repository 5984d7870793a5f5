"""Env throughput of the directly stepped MuJoCo backend (``make(task, backend="mujoco")``) at 84x84
with rendering, one and two cameras, single process; the franky-sim backend for comparison.

Each configuration runs in its own process. A step is one 10 Hz control period: 100 physics steps
of 1 ms plus one render per camera. Printed per configuration: env steps/s (wall clock), CPU time
per step (this process; the machine's load changes the wall figure far more than the CPU figure),
and for the mujoco backend the parts of a step: physics + arm control per control period, render
per frame.

    nice -n 19 .venv/bin/python benchmarks/fast_env_steps.py [--steps 200] [--franky-steps 40] [--no-franky]
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


def measure(backend: str, task: str, cameras: tuple[str, ...], steps: int) -> dict:
    import numpy as np

    from robot_envs.env import EnvConfig, make

    # franky-sim: generous wall-clock timeouts, a loaded machine slows its reset moves and renders
    env_config = EnvConfig(seed=0, move_timeout_s=120.0, camera_timeout_s=10.0)
    with make(task, backend=backend, env_config=env_config, cameras=list(cameras), episode_length=steps + 1) as env:
        env.reset()
        rng = np.random.default_rng(0)
        actions = rng.uniform(-0.5, 0.5, (steps, env.spec.action_dim))
        sim0, t0, c0 = env.world.sim_time(), time.perf_counter(), time.process_time()
        for a in actions:
            env.step(a)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        sim = env.world.sim_time() - sim0
        out = {"backend": backend, "cameras": len(cameras), "steps": steps, "steps_per_s": steps / wall,
               "ms_per_step": wall / steps * 1000, "cpu_ms_per_step": cpu / steps * 1000, "sim_speed": sim / wall}
        if backend == "mujoco":
            n = 20
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                env.world.advance(env.period)  # the arm holds its pose: physics + controller only
            out["physics_ms_per_period"] = (time.perf_counter() - t0) / n * 1000
            out["physics_cpu_ms_per_period"] = (time.process_time() - c0) / n * 1000
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                for cam in cameras:
                    env.world.render(cam)
            out["render_ms_per_frame"] = (time.perf_counter() - t0) / (n * len(cameras)) * 1000
            out["render_cpu_ms_per_frame"] = (time.process_time() - c0) / (n * len(cameras)) * 1000
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="reach")
    ap.add_argument("--steps", type=int, default=200, help="env steps per mujoco-backend configuration")
    ap.add_argument("--franky-steps", type=int, default=40, help="env steps per franky-sim configuration")
    ap.add_argument("--no-franky", action="store_true", help="skip the franky-sim comparison")
    args = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    print(f"task={args.task} image=84x84 control=10 Hz cpus={os.cpu_count()} load1={os.getloadavg()[0]:.1f} "
          f"nice={os.nice(0)}")
    runs = [("mujoco", args.steps)] + ([] if args.no_franky else [("sim", args.franky_steps)])
    for backend, steps in runs:
        for cams in (("front",), ("front", "side")):
            with ctx.Pool(1) as pool:
                r = pool.apply(measure, (backend, args.task, cams, steps))
            line = (f"backend={r['backend']:6s} cameras={r['cameras']}: {r['steps_per_s']:6.1f} env steps/s "
                    f"({r['ms_per_step']:.1f} ms/step, CPU {r['cpu_ms_per_step']:.1f} ms/step, "
                    f"sim speed {r['sim_speed']:.2f}x real time, {r['steps']} steps)")
            if backend == "mujoco":
                line += (f"; physics+control {r['physics_ms_per_period']:.1f} ms "
                         f"(CPU {r['physics_cpu_ms_per_period']:.1f}) per 100 ms period, "
                         f"render {r['render_ms_per_frame']:.1f} ms (CPU {r['render_cpu_ms_per_frame']:.1f}) per frame")
            print(line, flush=True)
    print(f"load1 at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
