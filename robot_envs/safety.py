"""Safety clamp applied to every Cartesian target before it reaches a robot.

Order of operations in ``SafetyLayer.clamp`` (current pose -> safe target):
1. reject non-finite targets (``NonFiniteActionError``; the caller keeps holding its position);
2. limit the step: translation to ``max_translation_per_step`` [m] (along the requested direction),
   rotation to ``max_rotation_per_step`` [rad] (along the requested rotation, base frame);
3. limit the orientation to a cone of ``orientation_cone_rad`` around ``nominal_quat`` (optional);
4. clip the position to the workspace box. Because the box comes last, the result is ALWAYS inside
   the box, even when the current pose is outside it (the arm is then sent back toward the box,
   possibly by more than one step: getting back in takes precedence).
All poses: (7,) [x,y,z,qx,qy,qz,qw] TCP in the robot base frame, metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_envs import transforms as tf


class NonFiniteActionError(ValueError):
    """A target, action or pose contained NaN/inf; nothing was sent to the robot."""


def _vec(values, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have {n} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


@dataclass
class SafetyConfig:
    """Limits of the safety layer (base frame, SI units)."""

    workspace_min: tuple[float, float, float] = (0.30, -0.25, 0.05)  # box lower corner [m]
    workspace_max: tuple[float, float, float] = (0.70, 0.25, 0.60)  # box upper corner [m]
    max_translation_per_step: float = 0.03  # longest TCP step per command [m]
    max_rotation_per_step: float = 0.15  # largest rotation per command [rad]
    nominal_quat: tuple[float, float, float, float] | None = None  # cone centre [qx,qy,qz,qw]; None = no cone
    orientation_cone_rad: float = np.pi  # max angle from nominal_quat [rad] (pi = unrestricted)
    gripper_min_width: float = 0.0  # narrowest allowed gripper command [m]
    gripper_max_width: float = 0.08  # widest allowed gripper command [m]

    def __post_init__(self) -> None:
        lo = _vec(self.workspace_min, 3, "workspace_min")
        hi = _vec(self.workspace_max, 3, "workspace_max")
        if np.any(lo >= hi):
            raise ValueError(f"workspace_min {lo.tolist()} must be < workspace_max {hi.tolist()} on every axis")
        self.workspace_min, self.workspace_max = tuple(lo.tolist()), tuple(hi.tolist())
        for name in ("max_translation_per_step", "max_rotation_per_step"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite value > 0, got {v}")
        if not (0 < float(self.orientation_cone_rad) <= np.pi):
            raise ValueError(f"orientation_cone_rad must be in (0, pi], got {self.orientation_cone_rad}")
        if self.nominal_quat is not None:
            self.nominal_quat = tuple(tf.quat_normalize(_vec(self.nominal_quat, 4, "nominal_quat")).tolist())
        if not (0 <= self.gripper_min_width < self.gripper_max_width):
            raise ValueError(f"need 0 <= gripper_min_width < gripper_max_width, got "
                             f"{self.gripper_min_width}, {self.gripper_max_width}")


class SafetyLayer:
    """Stateless clamp of Cartesian targets and gripper widths (see module docstring)."""

    def __init__(self, cfg: SafetyConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else SafetyConfig()
        self._lo = np.array(self.cfg.workspace_min)
        self._hi = np.array(self.cfg.workspace_max)

    def in_workspace(self, position, tol: float = 0.0) -> bool:
        """True when the (3,) position [m] is inside the box grown by ``tol`` [m]."""
        p = np.asarray(position, dtype=np.float64)[:3]
        return bool(np.all(p >= self._lo - tol) and np.all(p <= self._hi + tol))

    def clamp(self, current_pose, target_pose) -> np.ndarray:
        """Return a safe (7,) target for a robot currently at ``current_pose`` (7,).

        Raises:
            NonFiniteActionError: ``target_pose`` or ``current_pose`` contains NaN/inf.
            ValueError: wrong shapes or a zero quaternion.
        """
        current = self._checked(current_pose, "current_pose")
        target = self._checked(target_pose, "target_pose")
        out = np.empty(7)
        out[:3] = self._clamp_position(current[:3], target[:3])
        out[3:] = self._clamp_orientation(current[3:], target[3:])
        return out

    def clamp_gripper(self, width: float | None) -> float | None:
        """Clip a gripper width [m] to the configured range; None passes through."""
        if width is None:
            return None
        w = float(width)
        if not np.isfinite(w):
            raise NonFiniteActionError(f"gripper width is not finite: {width}")
        return float(np.clip(w, self.cfg.gripper_min_width, self.cfg.gripper_max_width))

    # -- internals ---------------------------------------------------------------------------
    @staticmethod
    def _checked(pose, name: str) -> np.ndarray:
        arr = np.asarray(pose, dtype=np.float64)
        if arr.shape != (7,):
            raise ValueError(f"{name} must have shape (7,) [x,y,z,qx,qy,qz,qw], got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise NonFiniteActionError(f"{name} contains NaN/inf ({arr.tolist()}); command rejected, "
                                       "hold the current position")
        return tf.as_pose(arr, name)

    def _clamp_position(self, current: np.ndarray, target: np.ndarray) -> np.ndarray:
        step = target - current
        dist = float(np.linalg.norm(step))
        limit = self.cfg.max_translation_per_step
        if dist > limit:
            step *= limit / dist
        return np.clip(current + step, self._lo, self._hi)

    def _clamp_orientation(self, current: np.ndarray, target: np.ndarray) -> np.ndarray:
        angle = tf.quat_angle(current, target)
        limit = self.cfg.max_rotation_per_step
        q = target if angle <= limit else tf.quat_slerp(current, target, limit / angle)
        if self.cfg.nominal_quat is not None:
            nominal = np.array(self.cfg.nominal_quat)
            off = tf.quat_angle(nominal, q)
            cone = self.cfg.orientation_cone_rad
            if off > cone:
                q = tf.quat_slerp(nominal, q, cone / off)
        q = tf.quat_normalize(q)
        # keep the hemisphere of the current orientation (same rotation, no sign flips downstream)
        return -q if float(np.dot(q, current)) < 0 else q
