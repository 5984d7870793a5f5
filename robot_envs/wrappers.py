"""Small composable env wrappers: ``ActionRepeat`` and ``FrameStack``.

An env here is anything with ``reset() -> obs`` and ``step(action) -> (obs, reward, terminated,
truncated, info)`` where ``obs = {"image": (C, H, W) uint8, "proprio": (P,) float32}``.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class Wrapper:
    """Forwards everything it does not override to the wrapped env (``spec``, ``close``, ``task``...)."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def reset(self) -> dict[str, np.ndarray]:
        return self.env.reset()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        return self.env.step(action)

    def close(self) -> None:
        self.env.close()

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not yet set (e.g. during unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.env, name)

    def __enter__(self) -> "Wrapper":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


class ActionRepeat(Wrapper):
    """Apply each action ``repeat`` times; rewards are summed, the episode stops early when it ends.

    ``info`` is the last inner step's, with ``success`` True if any inner step succeeded and
    ``action_repeats`` the number of inner steps actually run.
    """

    def __init__(self, env: Any, repeat: int) -> None:
        super().__init__(env)
        if int(repeat) != repeat or repeat < 1:
            raise ValueError(f"repeat must be a positive integer, got {repeat}")
        self.repeat = int(repeat)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        total, success = 0.0, False
        for i in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            success = success or bool(info.get("success", False))
            if terminated or truncated:
                break
        info = dict(info, success=success, action_repeats=i + 1)
        return obs, total, terminated, truncated, info


class FrameStack(Wrapper):
    """Stack the last ``k`` images along channels: ``(k * C, H, W)`` uint8, oldest step first.

    After ``reset`` the stack is filled with copies of the first image. ``proprio`` is the latest
    one (not stacked). ``self.spec`` stays the per-step EnvSpec; the stacked channel count is
    ``spec.stacked_channels(k)``.
    """

    def __init__(self, env: Any, k: int) -> None:
        super().__init__(env)
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        self.k = int(k)
        self._frames: deque[np.ndarray] = deque(maxlen=self.k)

    def _check(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        image = obs.get("image")
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
            raise ValueError(f"FrameStack needs obs['image'] as (C, H, W) uint8, got "
                             f"{getattr(image, 'shape', type(image))} {getattr(image, 'dtype', '')}")
        if self._frames and image.shape != self._frames[-1].shape:
            raise ValueError(f"image shape changed from {self._frames[-1].shape} to {image.shape}")
        return image

    def _stacked(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(obs, image=np.concatenate(list(self._frames), axis=0))

    def reset(self) -> dict[str, np.ndarray]:
        obs = self.env.reset()
        self._frames.clear()
        image = self._check(obs)
        for _ in range(self.k):
            self._frames.append(image)
        return self._stacked(obs)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        if not self._frames:
            raise RuntimeError("FrameStack.step called before reset()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(self._check(obs))
        return self._stacked(obs), reward, terminated, truncated, info
