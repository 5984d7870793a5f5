"""Simulated world: franky-sim FR3 + MuJoCo task scene + rendered cameras.

Headless rendering: MUJOCO_GL defaults to "egl" (set before mujoco is imported anywhere in here).
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

from robot_envs.sim.scene import SceneBuilder  # noqa: E402
from robot_envs.sim.world import SimCameraConfig, SimWorld, SimWorldConfig  # noqa: E402
from robot_envs.sim.camera import SimCamera  # noqa: E402

__all__ = ["SceneBuilder", "SimCameraConfig", "SimWorld", "SimWorldConfig", "SimCamera"]
