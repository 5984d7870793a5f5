"""Frame stacking, the one rule: the policy image at step ``t`` is the single-step images of steps
``t-k+1 .. t`` concatenated on the channel axis, oldest first, with step 0 repeated before an
episode's start (DrQ-v2's convention).

Two forms of the same rule: :class:`FrameStacker` online (one step at a time: the train loop, the
policy node) and :func:`stack_indices` / :func:`stack_episode` for whole episodes and replay batches.
A unit test checks that both give the same images.
"""
from __future__ import annotations

from collections import deque

import numpy as np


def stack_indices(steps: np.ndarray, k: int) -> np.ndarray:
    """``(N,)`` step indices within an episode -> ``(N, k)`` indices of the frames each stack holds."""
    if k < 1:
        raise ValueError(f"frame_stack must be >= 1, got {k}")
    steps = np.asarray(steps, dtype=np.int64)
    return np.maximum(steps[:, None] + np.arange(k)[None, :] - (k - 1), 0)


def stack_episode(frames: np.ndarray, k: int) -> np.ndarray:
    """``(T, C, H, W)`` single-step images of one episode -> ``(T, k*C, H, W)`` policy images."""
    stacked = frames[stack_indices(np.arange(len(frames)), k)]  # (T, k, C, H, W)
    return stacked.reshape(len(frames), -1, *frames.shape[2:])


class FrameStacker:
    """The last ``k`` single-step images ``(C, H, W)`` of one episode, stacked to ``(k*C, H, W)``."""

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"frame_stack must be >= 1, got {k}")
        self.k = k
        self._frames: deque[np.ndarray] = deque(maxlen=k)

    def reset(self, image: np.ndarray) -> np.ndarray:
        """Start an episode: the stack is ``k`` copies of its first image."""
        self._frames.clear()
        self._frames.extend([image] * self.k)
        return self.stacked()

    def push(self, image: np.ndarray) -> np.ndarray:
        """Add the next step's image (same shape as the others) and return the stack."""
        if not self._frames:
            return self.reset(image)
        if image.shape != self._frames[-1].shape:
            raise ValueError(f"image shape {image.shape} differs from the stack's {self._frames[-1].shape}")
        self._frames.append(image)
        return self.stacked()

    def stacked(self) -> np.ndarray:
        return np.concatenate(list(self._frames), axis=0)
