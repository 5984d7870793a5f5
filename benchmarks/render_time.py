"""Simulated camera rendering cost (MuJoCo, MUJOCO_GL=egl): ms per frame at 84x84.

Usage: python benchmarks/render_time.py [--frames 20] [--size 84] [--pause-physics] [--quality-sweep]
Cases: 1 and 2 cameras, collision geoms only (default) vs the FR3's visual meshes, at the default render
quality (no shadows, no MSAA); ``--quality-sweep`` adds one collision-geometry camera with shadows and/or
4x MSAA (``SimWorldConfig.shadow_map_size`` / ``render_samples``), what they cost on software GL.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robot_envs.sim import SimCameraConfig, SimWorld, SimWorldConfig  # noqa: E402


def measure(n_cams: int, visual: bool, frames: int, size: int, pause_physics: bool,
            shadow_map_size: int = 0, render_samples: int = 0) -> float:
    """Median ms to render one frame from every camera (one control tick's images)."""
    cams = [SimCameraConfig(name=f"cam{i}", position=(1.1, -0.3 + 0.6 * i, 0.6), target=(0.5, 0.0, 0.1),
                            width=size, height=size, draw_visual_meshes=visual) for i in range(n_cams)]
    cfg = SimWorldConfig(cameras=cams, hostname="auto", shadow_map_size=shadow_map_size, render_samples=render_samples)
    with SimWorld(cfg, ()) as world:
        for c in cams:
            world.render(c.name)  # warm-up: GL context and buffers
        if pause_physics:
            world.pause()
        times = []
        for _ in range(frames):
            t0 = time.perf_counter()
            for c in cams:
                world.render(c.name)
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=84)
    ap.add_argument("--pause-physics", action="store_true",
                    help="measure rendering alone (physics thread paused: no competition for the CPU/GIL)")
    ap.add_argument("--quality-sweep", action="store_true", help="also time shadows (256 px) and 4x MSAA, 1 camera")
    args = ap.parse_args()
    print(f"render time per control tick ({args.size}x{args.size}, MUJOCO_GL={os.environ.get('MUJOCO_GL')}, "
          f"median of {args.frames}, physics {'paused' if args.pause_physics else 'running at 1 kHz'}, "
          f"load avg {os.getloadavg()[0]:.1f})")
    for visual in (False, True):
        for n in (1, 2):
            ms = measure(n, visual, args.frames, args.size, args.pause_physics)
            kind = "visual meshes " if visual else "collision only"
            print(f"  {kind} {n} camera(s): {ms:6.1f} ms/tick  ({ms / n:6.1f} ms/frame)")
    if args.quality_sweep:
        for shadow, samples in ((256, 0), (0, 4), (256, 4)):
            ms = measure(1, False, args.frames, args.size, args.pause_physics, shadow, samples)
            print(f"  collision only 1 camera, shadow map {shadow} px, MSAA {samples}x: {ms:6.1f} ms/frame")


if __name__ == "__main__":
    main()
