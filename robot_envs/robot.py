"""The robot interface every backend implements (real Franka through franky, franky-sim).

Frames and units: poses are ``(7,)`` float64 ``[x, y, z, qx, qy, qz, qw]`` of the TCP (franky's
end-effector frame) in the robot base frame, metres; joints in radians; gripper width in metres
(distance between the fingers); wrench ``[fx, fy, fz, tx, ty, tz]`` in N / Nm in the base frame.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


class RobotError(RuntimeError):
    """A robot-side failure (reflex, control/network exception, timeout); carries the original message."""


@dataclass
class RobotState:
    """One snapshot of the arm.

    Attributes:
        stamp: time of the reading [s], ``time.monotonic()`` of this process.
        ee_pose: (7,) TCP pose in the base frame.
        joint_positions: (7,) joint angles [rad].
        gripper_width: finger distance [m] (0.0 when there is no gripper).
        external_wrench: (6,) estimated external wrench on the TCP [N, Nm] in the base frame, or None.
        error: None when healthy, else the robot's / driver's error message (call ``recover()``).
    """

    stamp: float
    ee_pose: np.ndarray
    joint_positions: np.ndarray
    gripper_width: float
    external_wrench: np.ndarray | None = None
    error: str | None = None
    extras: dict = field(default_factory=dict)  # backend-specific extras (e.g. robot time), never required

    def __post_init__(self) -> None:
        self.ee_pose = np.asarray(self.ee_pose, dtype=np.float64).reshape(-1)
        self.joint_positions = np.asarray(self.joint_positions, dtype=np.float64).reshape(-1)
        if self.ee_pose.shape != (7,):
            raise ValueError(f"ee_pose must have shape (7,), got {self.ee_pose.shape}")
        if self.joint_positions.shape != (7,):
            raise ValueError(f"joint_positions must have shape (7,), got {self.joint_positions.shape}")
        if self.external_wrench is not None:
            self.external_wrench = np.asarray(self.external_wrench, dtype=np.float64).reshape(-1)
            if self.external_wrench.shape != (6,):
                raise ValueError(f"external_wrench must have shape (6,), got {self.external_wrench.shape}")

    @property
    def ok(self) -> bool:
        """True when the robot reports no error."""
        return self.error is None


class Robot(abc.ABC):
    """A Cartesian-controlled arm with a parallel gripper. Use as a context manager."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Connect to the robot (and gripper); raises RobotError with a clear message on failure."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop motion and release the connection. Safe to call twice."""

    @abc.abstractmethod
    def read_state(self) -> RobotState:
        """Return the current state; robot errors are reported in ``RobotState.error``."""

    @abc.abstractmethod
    def command_pose(self, target_pose: np.ndarray, gripper_width: float | None = None) -> None:
        """Start moving toward ``target_pose`` (7,) and return at once (non-blocking).

        Each call replaces the previous target. ``gripper_width`` [m] or None (leave the gripper).
        The target must already be safe (see ``safety.SafetyLayer``). Raises RobotError when the robot
        is in error (call ``recover()``).
        """

    @abc.abstractmethod
    def move_to(self, pose: np.ndarray, timeout_s: float) -> None:
        """Move to ``pose`` (7,) and block until reached; RobotError on failure or timeout."""

    @abc.abstractmethod
    def recover(self) -> bool:
        """Clear errors (bounded retries). True when the robot is usable again; RobotError when the
        retry budget is exhausted."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the current motion (the arm holds its pose)."""

    def __enter__(self) -> "Robot":
        self.connect()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
