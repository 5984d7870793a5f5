"""Colour-blob detection (golf ball) and image -> table-plane mapping.

Images are ``(H, W, 3)`` uint8 RGB. Pixel coordinates are ``(u, v)`` = (column, row) in the image
the detector is given. HSV thresholds use OpenCV's ranges: H in [0, 179], S and V in [0, 255].
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_envs.camera import check_image


@dataclass
class BallDetectorConfig:
    """HSV colour threshold and blob filters of the ball detector."""

    hsv_low: tuple[int, ...] = (5, 120, 120)  # lower HSV bound (orange ball by default)
    hsv_high: tuple[int, ...] = (25, 255, 255)  # upper HSV bound (inclusive)
    hsv_low2: tuple[int, ...] | None = None  # optional second range (e.g. red wrapping around H=0)
    hsv_high2: tuple[int, ...] | None = None  # upper bound of the second range
    min_area_px: int = 6  # ignore blobs smaller than this many pixels
    max_area_px: int | None = None  # ignore blobs larger than this (None = no limit)
    open_kernel_px: int = 3  # morphological opening kernel to drop speckle noise (0 = off)

    def __post_init__(self) -> None:
        self.hsv_low, self.hsv_high = _hsv_pair(self.hsv_low, self.hsv_high, "hsv")
        if (self.hsv_low2 is None) != (self.hsv_high2 is None):
            raise ValueError("hsv_low2 and hsv_high2 must both be set or both be None")
        if self.hsv_low2 is not None:
            self.hsv_low2, self.hsv_high2 = _hsv_pair(self.hsv_low2, self.hsv_high2, "hsv2")
        if self.min_area_px < 1:
            raise ValueError(f"min_area_px must be >= 1, got {self.min_area_px}")
        if self.max_area_px is not None and self.max_area_px < self.min_area_px:
            raise ValueError(f"max_area_px ({self.max_area_px}) must be >= min_area_px ({self.min_area_px})")
        if self.open_kernel_px < 0:
            raise ValueError(f"open_kernel_px must be >= 0, got {self.open_kernel_px}")


def _hsv_pair(lo, hi, what: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    lo_t, hi_t = tuple(int(v) for v in lo), tuple(int(v) for v in hi)
    limits = (179, 255, 255)
    if len(lo_t) != 3 or len(hi_t) != 3:
        raise ValueError(f"{what}_low/high must have 3 values (H, S, V), got {lo}, {hi}")
    for a, b, m in zip(lo_t, hi_t, limits):
        if not (0 <= a <= b <= m):
            raise ValueError(f"{what} range {lo_t}..{hi_t} invalid: need 0 <= low <= high <= (179, 255, 255)")
    return lo_t, hi_t


@dataclass(frozen=True)
class Detection:
    """A detected blob: centroid ``(u, v)`` [px], equivalent-circle ``radius`` [px], ``area`` [px]."""

    u: float
    v: float
    radius: float
    area: int


class BallDetector:
    """Finds the largest blob within the HSV range(s) in an RGB image."""

    def __init__(self, cfg: BallDetectorConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else BallDetectorConfig()

    def mask(self, image: np.ndarray) -> np.ndarray:
        """``(H, W)`` uint8 mask (255 = ball colour) of an ``(H, W, 3)`` uint8 RGB image."""
        check_image(image)
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        m = cv2.inRange(hsv, np.array(self.cfg.hsv_low), np.array(self.cfg.hsv_high))
        if self.cfg.hsv_low2 is not None:
            m |= cv2.inRange(hsv, np.array(self.cfg.hsv_low2), np.array(self.cfg.hsv_high2))
        k = self.cfg.open_kernel_px
        if k > 1:
            m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
        return m

    def detect(self, image: np.ndarray) -> Detection | None:
        """The largest blob passing the area filters, or None when there is no ball in view."""
        n, _, stats, centroids = cv2.connectedComponentsWithStats(self.mask(image), connectivity=8)
        best = None
        for i in range(1, n):
            area = int(stats[i, cv2.CC_STAT_AREA])
            if area < self.cfg.min_area_px or (self.cfg.max_area_px is not None and area > self.cfg.max_area_px):
                continue
            if best is None or area > best.area:
                u, v = centroids[i]
                best = Detection(float(u), float(v), float(np.sqrt(area / np.pi)), area)
        return best


def image_to_plane(homography: np.ndarray, uv: tuple[float, float]) -> np.ndarray:
    """Map pixel ``(u, v)`` to ``(x, y)`` [m] on the table plane with a ``(3, 3)`` image->plane homography."""
    H = np.asarray(homography, dtype=np.float64)
    if H.shape != (3, 3) or not np.all(np.isfinite(H)):
        raise ValueError(f"homography must be a finite (3, 3) matrix, got shape {H.shape}")
    p = H @ np.array([uv[0], uv[1], 1.0])
    if abs(p[2]) < 1e-12:
        raise ValueError(f"pixel {uv} maps to infinity under the homography (point at the horizon)")
    return p[:2] / p[2]
