"""Camera interface, frames and image preprocessing.

A frame image is ``(H, W, 3)`` uint8 RGB as the camera produces it; the policy sees ``(3, H, W)``
(see ``to_chw``). Stamps are seconds on ``time.monotonic()`` of the producing process (or the
simulator's clock for simulated cameras; ``Frame.stamp_source`` says which).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np


class CameraError(RuntimeError):
    """The camera failed (not found, disconnected, bad frame)."""


class CameraTimeout(CameraError):
    """No frame arrived within the timeout."""


@dataclass
class Frame:
    """One camera image.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        stamp: capture time [s].
        seq: frame counter of this camera, increasing by >= 1 per frame.
        camera: camera name.
        stamp_source: "monotonic" (time.monotonic of this host), "hardware" or "sim" (simulation time).
    """

    image: np.ndarray
    stamp: float
    seq: int
    camera: str
    stamp_source: str = "monotonic"

    def __post_init__(self) -> None:
        check_image(self.image, "Frame.image")
        if not np.isfinite(self.stamp):
            raise ValueError(f"Frame.stamp must be finite, got {self.stamp}")


class Camera(abc.ABC):
    """An RGB camera. Use as a context manager (``open`` on enter, ``close`` on exit)."""

    name: str = "camera"

    @abc.abstractmethod
    def open(self) -> None:
        """Start streaming; CameraError with a clear message when the device is missing."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop streaming. Safe to call twice."""

    @abc.abstractmethod
    def read(self, timeout_s: float = 1.0) -> Frame:
        """Return the next frame; CameraTimeout when none arrives within ``timeout_s``."""

    def __enter__(self) -> "Camera":
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


def check_image(image, name: str = "image") -> np.ndarray:
    """Raise ValueError unless ``image`` is an (H, W, 3) uint8 array with H, W > 0."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} must have shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB, got dtype {image.dtype}")
    return image


def preprocess(image: np.ndarray, crop: tuple[int, int, int, int] | None,
               size: tuple[int, int]) -> np.ndarray:
    """Crop then resize (cv2.INTER_AREA) an RGB image.

    Args:
        image: (H0, W0, 3) uint8 RGB.
        crop: (x, y, w, h) pixel rectangle (x, y = top-left column, row) inside the image, or None.
        size: output (H, W).
    Returns:
        (H, W, 3) uint8 RGB (a new array).
    """
    check_image(image)
    if len(size) != 2 or int(size[0]) <= 0 or int(size[1]) <= 0:
        raise ValueError(f"size must be (H, W) with positive values, got {size}")
    if crop is not None:
        if len(crop) != 4:
            raise ValueError(f"crop must be (x, y, w, h), got {crop}")
        x, y, w, h = (int(v) for v in crop)
        H0, W0 = image.shape[:2]
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > W0 or y + h > H0:
            raise ValueError(f"crop (x={x}, y={y}, w={w}, h={h}) does not fit inside a {W0}x{H0} image")
        image = image[y:y + h, x:x + w]
    H, W = int(size[0]), int(size[1])
    if image.shape[:2] == (H, W):
        return np.ascontiguousarray(image).copy()
    return cv2.resize(np.ascontiguousarray(image), (W, H), interpolation=cv2.INTER_AREA)


def to_chw(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) uint8 (contiguous)."""
    check_image(image)
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def policy_image(frames: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """One time step's policy image: each camera's (H0, W0, 3) uint8 RGB frame resized to ``size``
    (H, W) (cv2.INTER_AREA; unchanged when it has that size), as (3, H, W), concatenated in camera
    order -> (3 * n_cameras, H, W) uint8. The one observation assembly of the plain env and the
    policy node."""
    if not frames:
        raise ValueError("policy_image needs at least one camera frame")
    size = (int(size[0]), int(size[1]))
    chans = [to_chw(f if f.shape[:2] == size else preprocess(f, None, size)) for f in frames]
    return np.ascontiguousarray(np.concatenate(chans, axis=0))


def from_chw(chw: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 -> (H, W, 3) uint8 (contiguous)."""
    if not isinstance(chw, np.ndarray) or chw.ndim != 3 or chw.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) array, got {getattr(chw, 'shape', type(chw))}")
    return check_image(np.ascontiguousarray(chw.transpose(1, 2, 0)), "image")
