"""The policy node's newest inputs, shared between the executor thread that receives them and the
thread that ticks: one frame per camera, the episode status, the reward, a teleop action.

Pure Python (no rclpy). Frames are checked on arrival: a camera's first good frame fixes its size
(later frames of another size are refused, not resized) and a frame smaller than the policy input is
refused, with a ``ValueError`` the node logs (the camera's last good frame stays).
"""
from __future__ import annotations

import threading
import time
from typing import NamedTuple, Optional

import numpy as np


class ReceivedFrame(NamedTuple):
    image: np.ndarray  # (H, W, 3) uint8 RGB
    stamp: float  # capture stamp from the header [wall s, the camera's clock]
    arrival: float  # arrival at this node [wall s] (timing: stamp -> arrival)
    received: float  # arrival at this node [monotonic s] (freshness checks, immune to clock steps)


class TickInputs(NamedTuple):
    """What one tick sees (a consistent snapshot)."""

    status: dict  # the episode node's last episode/status
    reward: float  # the last episode/reward value for the current observation
    success: bool  # ... and its success flag
    teleop: Optional[np.ndarray]  # a teleop action fresher than teleop_timeout_s (A,) float32 in [-1, 1], or None
    frames: Optional[dict[str, ReceivedFrame]]  # every camera's frame when all are fresher than frame_timeout_s


class PolicyInputs:
    """Thread-safe store of the newest inputs; see the module docstring. ``min_hw``: the policy input (H, W)."""

    def __init__(self, cameras: list[str] | tuple[str, ...], min_hw: tuple[int, int], teleop_timeout_s: float,
                 frame_timeout_s: float) -> None:
        self.cameras, self.min_hw = tuple(cameras), (int(min_hw[0]), int(min_hw[1]))
        self.teleop_timeout_s, self.frame_timeout_s = float(teleop_timeout_s), float(frame_timeout_s)
        self._lock = threading.Lock()
        self._frames: dict[str, ReceivedFrame] = {}
        self.frame_hw: dict[str, tuple[int, int]] = {}  # camera -> (H, W) of its frames
        self._status: dict = {}
        self._reward = (0.0, False)
        self._teleop: Optional[tuple[float, np.ndarray]] = None

    def add_frame(self, camera: str, image: np.ndarray, stamp: float, arrival: float) -> None:
        """Store ``image`` (H, W, 3) uint8 RGB captured at ``stamp``; ``ValueError`` for a size it refuses."""
        h, w = image.shape[:2]
        if camera not in self.frame_hw:
            if h < self.min_hw[0] or w < self.min_hw[1]:
                raise ValueError(f"frame {h}x{w} is smaller than the policy input {self.min_hw[0]}x{self.min_hw[1]}")
            self.frame_hw[camera] = (h, w)
        elif self.frame_hw[camera] != (h, w):
            eh, ew = self.frame_hw[camera]
            raise ValueError(f"image size {h}x{w} differs from the expected {eh}x{ew} (this camera's first frames)")
        with self._lock:
            self._frames[camera] = ReceivedFrame(image, stamp, arrival, time.monotonic())

    def set_status(self, status: dict) -> None:
        with self._lock:
            self._status = dict(status)

    def set_reward(self, reward: float, success: bool) -> None:
        with self._lock:
            self._reward = (float(reward), bool(success))

    def set_teleop(self, action: np.ndarray) -> None:
        with self._lock:
            self._teleop = (time.monotonic(), np.clip(np.asarray(action, np.float32), -1.0, 1.0))

    def snapshot(self) -> TickInputs:
        now = time.monotonic()
        with self._lock:
            status, (reward, success) = dict(self._status), self._reward
            teleop, frames = self._teleop, dict(self._frames)
        fresh_teleop = teleop[1] if teleop is not None and now - teleop[0] < self.teleop_timeout_s else None
        complete = all(c in frames and now - frames[c].received <= self.frame_timeout_s for c in self.cameras)
        return TickInputs(status, reward, success, fresh_teleop, frames if complete else None)
