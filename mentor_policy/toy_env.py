"""A tiny rendered point-reaching task (numpy only) for learning tests and benchmarks.

A point mass moves in the square arena [-1, 1]^2 (arena units; image row 0 is y = +1) and must
reach a target. The policy sees an RGB image of the arena (target and point drawn as coloured
discs) and, optionally, the point's own position. The target position is visible only in the image,
so the task cannot be solved without vision.

Observations follow the robot_envs contract: ``{"image": (3, S, S) uint8, "proprio": (P,) float32}``;
``step(action)`` returns ``(obs, reward, terminated, truncated, info)`` with ``info["success"]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mentor_policy.specs import EnvSpec

_BACKGROUND = np.array([30, 30, 30], np.uint8)
_TARGET_RGB = np.array([40, 220, 60], np.uint8)
_POINT_RGB = np.array([230, 50, 40], np.uint8)


@dataclass
class ToyReachConfig:
    """Settings of the point-reaching task (validated on construction)."""

    image_size: int = 32  # rendered image is (3, image_size, image_size), pixels
    episode_length: int = 30  # steps per episode; the episode is truncated (not terminated) after it
    max_step: float = 0.15  # displacement per step at |action| = 1, arena units (arena is 2 wide)
    success_radius: float = 0.2  # the point counts as at the target within this distance, arena units
    reward_scale: float = 1.0  # dense reward = 1 - tanh(reward_scale * distance), in (0, 1]; 1 shapes the whole arena
    target_radius_px: float = 3.0  # drawn radius of the target disc, pixels
    point_radius_px: float = 2.5  # drawn radius of the point disc, pixels
    min_start_distance: float = 0.6  # resets place the point at least this far from the target
    proprio_position: bool = True  # proprio = point (x, y) when True, else empty (P = 0)
    seed: int = 0  # seed of the reset RNG (reset(seed=...) re-seeds it)

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 16:
            raise ValueError(f"ToyReachConfig.image_size must be an int >= 16, got {self.image_size!r}")
        if not isinstance(self.episode_length, int) or self.episode_length < 1:
            raise ValueError(f"ToyReachConfig.episode_length must be an int >= 1, got {self.episode_length!r}")
        for name in ("max_step", "success_radius", "reward_scale", "target_radius_px", "point_radius_px"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"ToyReachConfig.{name} must be a finite number > 0, got {value!r}")
        if not 0 <= self.min_start_distance < 1.6:
            raise ValueError(f"ToyReachConfig.min_start_distance must lie in [0, 1.6), got {self.min_start_distance!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"ToyReachConfig.seed must be a non-negative int, got {self.seed!r}")


class ToyReachEnv:
    """Point mass in 2-D reaching a target, rendered to a small RGB image.

    Action: ``(2,)`` float in [-1, 1] (clipped), a velocity; the point moves ``max_step * action``
    arena units per step and stays inside [-0.9, 0.9]^2. Episodes last exactly ``episode_length``
    steps and end as truncated (time limit); the reward is dense.
    """

    ARENA = 0.9  # the point and target stay within [-ARENA, ARENA]^2 (arena units)

    def __init__(self, cfg: ToyReachConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else ToyReachConfig()
        s = self.cfg.image_size
        self.spec = EnvSpec(frame_channels=3, image_size=(s, s), proprio_dim=2 if self.cfg.proprio_position else 0,
                            action_dim=2)
        centres = (np.arange(s) + 0.5) / s * 2.0 - 1.0  # pixel centres in arena units
        self._px = centres[None, :]  # x grows with the column
        self._py = -centres[:, None]  # y grows upwards (row 0 is the top)
        self._rng = np.random.default_rng(self.cfg.seed)
        self._point = np.zeros(2)
        self._target = np.zeros(2)
        self._t = 0
        self._started = False

    # ---- dynamics ----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode: random target and start point (at least min_start_distance apart)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._target = self._rng.uniform(-self.ARENA, self.ARENA, 2)
        for _ in range(1000):
            self._point = self._rng.uniform(-self.ARENA, self.ARENA, 2)
            if np.linalg.norm(self._point - self._target) >= self.cfg.min_start_distance:
                break
        self._t = 0
        self._started = True
        return self._obs()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply a velocity action (2,) in [-1, 1]; returns (obs, reward, terminated, truncated, info)."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a}")
        self._point = np.clip(self._point + self.cfg.max_step * np.clip(a, -1.0, 1.0), -self.ARENA, self.ARENA)
        self._t += 1
        dist = float(np.linalg.norm(self._point - self._target))
        reward = float(1.0 - np.tanh(self.cfg.reward_scale * dist))
        truncated = self._t >= self.cfg.episode_length
        if truncated:
            self._started = False
        info = {"success": dist <= self.cfg.success_radius, "distance": dist}
        return self._obs(), reward, False, truncated, info

    # ---- observation ---------------------------------------------------------------------------
    def _disc(self, centre: np.ndarray, radius_px: float) -> np.ndarray:
        r = radius_px * 2.0 / self.cfg.image_size
        return (self._px - centre[0]) ** 2 + (self._py - centre[1]) ** 2 <= r * r

    def render(self) -> np.ndarray:
        """The arena as an ``(S, S, 3)`` uint8 RGB frame (point drawn over the target)."""
        s = self.cfg.image_size
        frame = np.empty((s, s, 3), np.uint8)
        frame[:] = _BACKGROUND
        frame[self._disc(self._target, self.cfg.target_radius_px)] = _TARGET_RGB
        frame[self._disc(self._point, self.cfg.point_radius_px)] = _POINT_RGB
        return frame

    def _obs(self) -> dict[str, np.ndarray]:
        image = np.ascontiguousarray(self.render().transpose(2, 0, 1))
        proprio = self._point.astype(np.float32) if self.cfg.proprio_position else np.zeros(0, np.float32)
        return {"image": image, "proprio": proprio}

    @property
    def target(self) -> np.ndarray:
        """Target position (2,) in arena units (for tests and scripted baselines; not observed)."""
        return self._target.copy()

    @property
    def point(self) -> np.ndarray:
        """Point position (2,) in arena units."""
        return self._point.copy()

    def close(self) -> None:
        """Nothing to release; present for the env interface."""
