"""Normalised policy actions in [-1, 1]^A -> Cartesian targets (base frame) and gripper widths.

Layout of an action vector (in this order, each part only when enabled):
``[dx, dy, dz]`` (always), ``[drx, dry, drz]`` (rotation vector, if ``rotation``), ``[g]`` (if ``gripper``).
Translation ``d* * translation_scale`` [m] and rotation ``dr* * rotation_scale`` [rad] are applied in the
robot base frame to the current TCP pose. Values outside [-1, 1] are clipped; NaN/inf are rejected.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_envs import transforms as tf
from robot_envs.safety import NonFiniteActionError


@dataclass
class ActionSpaceConfig:
    """Which action dimensions exist and how they scale."""

    translation_scale: float = 0.02  # TCP translation for an action of 1.0 [m/step]
    rotation: bool = False  # include 3 rotation dims (base-frame rotation vector)
    rotation_scale: float = 0.1  # rotation for an action of 1.0 [rad/step]
    gripper: bool = False  # include 1 gripper dim
    gripper_mode: str = "binary"  # "binary": g > 0 closes, else opens; "continuous": -1 closed .. +1 open
    gripper_open_width: float = 0.08  # finger distance when open [m]
    gripper_closed_width: float = 0.0  # finger distance when closed [m]

    def __post_init__(self) -> None:
        for name in ("translation_scale", "rotation_scale"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite value > 0, got {v}")
        if self.gripper_mode not in ("binary", "continuous"):
            raise ValueError(f"gripper_mode must be 'binary' or 'continuous', got {self.gripper_mode!r}")
        if not (0 <= self.gripper_closed_width < self.gripper_open_width):
            raise ValueError(f"need 0 <= gripper_closed_width < gripper_open_width, got "
                             f"{self.gripper_closed_width}, {self.gripper_open_width}")

    @property
    def action_dim(self) -> int:
        """Length A of an action vector."""
        return 3 + (3 if self.rotation else 0) + (1 if self.gripper else 0)

    @property
    def gripper_index(self) -> int | None:
        """Index of the gripper dim in an action vector (the last one), or None when there is none."""
        return self.action_dim - 1 if self.gripper else None


def validate_action(action, cfg: ActionSpaceConfig) -> np.ndarray:
    """Return the action as a (A,) float64 array clipped to [-1, 1]; raise on wrong shape or NaN/inf."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (cfg.action_dim,):
        raise ValueError(f"action must have shape ({cfg.action_dim},) for this action space "
                         f"(rotation={cfg.rotation}, gripper={cfg.gripper}), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise NonFiniteActionError(f"action contains NaN/inf: {a.tolist()}")
    return np.clip(a, -1.0, 1.0)


def gripper_width_from_action(g: float, cfg: ActionSpaceConfig) -> float:
    """Gripper width [m] for a gripper action value g in [-1, 1]."""
    if cfg.gripper_mode == "binary":
        return cfg.gripper_closed_width if g > 0 else cfg.gripper_open_width
    frac = (float(g) + 1.0) / 2.0
    return cfg.gripper_closed_width + frac * (cfg.gripper_open_width - cfg.gripper_closed_width)


def gripper_action(closed: bool, cfg: ActionSpaceConfig) -> float:
    """The gripper action value that closes (``closed``) or opens the gripper fully under ``cfg.gripper_mode``."""
    if cfg.gripper_mode == "binary":
        return 1.0 if closed else -1.0
    return -1.0 if closed else 1.0  # continuous: -1 closed .. +1 open


def with_gripper_command(action, closed: bool, cfg: ActionSpaceConfig) -> np.ndarray:
    """Copy of an action vector (A,) with its gripper dim set to close/open the gripper.

    Only the gripper slot is written; without a gripper dim (``cfg.gripper`` False) the copy is unchanged,
    so a translation or rotation dim never receives a gripper command.
    """
    a = np.array(action, copy=True)
    if a.shape != (cfg.action_dim,):
        raise ValueError(f"action must have shape ({cfg.action_dim},) for this action space "
                         f"(rotation={cfg.rotation}, gripper={cfg.gripper}), got {a.shape}")
    if cfg.gripper_index is not None:
        a[cfg.gripper_index] = gripper_action(closed, cfg)
    return a


def action_to_target(current_pose, action, cfg: ActionSpaceConfig) -> tuple[np.ndarray, float | None]:
    """Map an action to ``(target_pose (7,), gripper_width [m] | None)`` relative to ``current_pose`` (7,).

    The target is NOT clamped to the workspace: pass it through ``SafetyLayer.clamp``.
    """
    a = validate_action(action, cfg)
    pose = tf.as_pose(current_pose, "current_pose")
    dpos = a[:3] * cfg.translation_scale
    drot = a[3:6] * cfg.rotation_scale if cfg.rotation else None
    target = tf.compose_delta(pose, dpos, drot)
    width = gripper_width_from_action(float(a[-1]), cfg) if cfg.gripper else None
    return target, width
