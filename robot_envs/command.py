"""The one path from a normalised action to a command the robot may execute.

``action (A,) in [-1, 1]`` -> :func:`robot_envs.actions.action_to_target` (relative to the current TCP
pose, base frame) -> :meth:`robot_envs.safety.SafetyLayer.clamp` (workspace box, step limits,
orientation cone) and ``clamp_gripper``. The plain env (``RobotEnv.step``) and the ROS robot node both
call :func:`safe_command`, so whatever any node sends, the robot is never commanded outside its
configured workspace. NaN/inf or wrong-length actions raise before anything is computed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from robot_envs.actions import ActionSpaceConfig, action_to_target
from robot_envs.safety import SafetyLayer


@dataclass(frozen=True)
class SafeCommand:
    """A command inside the safety limits, with what was asked for."""

    target: np.ndarray  # (7,) TCP pose to command [m, xyzw quaternion], base frame, after the safety layer
    gripper: Optional[float]  # gripper width to command [m] (None: the arm has no gripper command)
    requested: np.ndarray  # (7,) the target the action asked for, before the safety layer

    @property
    def clamped(self) -> bool:
        """The safety layer changed the target."""
        return not np.allclose(self.target, self.requested, atol=1e-9)

    @property
    def clamp_distance(self) -> float:
        """How far the safety layer moved the target position [m]."""
        return float(np.linalg.norm(self.target[:3] - self.requested[:3]))


def safe_command(current_pose: np.ndarray, action: np.ndarray, action_cfg: ActionSpaceConfig, safety: SafetyLayer,
                 default_gripper_width: Optional[float] = None) -> SafeCommand:
    """The safe command for ``action`` with the TCP at ``current_pose`` (7,). Without a gripper dim in the
    action, ``default_gripper_width`` [m] (clamped) is commanded. Raises ``NonFiniteActionError`` /
    ``ValueError`` for NaN, inf or wrong-shape actions and poses."""
    requested, width = action_to_target(current_pose, action, action_cfg)
    target = safety.clamp(current_pose, requested)
    return SafeCommand(target, safety.clamp_gripper(default_gripper_width if width is None else width), requested)
