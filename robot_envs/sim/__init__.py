"""Simulated world: franky-sim FR3 + MuJoCo task scene + rendered cameras (served to franky by
``SimWorld``, or stepped in-process by ``DirectSimWorld`` / ``MujocoRobot``: ``robot_envs.sim.direct``).

Headless rendering: MUJOCO_GL defaults to "egl" (set before mujoco is imported anywhere in here).
Names are imported lazily so that ``python -m robot_envs.sim.world`` runs cleanly.
"""
import importlib
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

_EXPORTS = {
    "SceneBuilder": "robot_envs.sim.scene",
    "SimCameraConfig": "robot_envs.sim.world",
    "SimWorld": "robot_envs.sim.world",
    "SimWorldConfig": "robot_envs.sim.world",
    "SimWorldError": "robot_envs.sim.world",
    "SimCamera": "robot_envs.sim.camera",
    "DirectSimWorld": "robot_envs.sim.direct",
    "MujocoBackendConfig": "robot_envs.sim.direct",
    "MujocoRobot": "robot_envs.sim.direct",
    "MujocoRobotConfig": "robot_envs.sim.direct",
    "SteppedClock": "robot_envs.sim.direct",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'robot_envs.sim' has no attribute {name!r}")
