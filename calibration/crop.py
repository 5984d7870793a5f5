"""Crop / region-of-interest picker per camera.

A chosen rectangle (or a set of points to keep in view) becomes the ``crop = (x, y, w, h)`` that
``robot_envs.realsense.RealSenseCameraConfig`` and ``robot_envs.camera.preprocess`` take: pixel
rectangle of the full stream image (x, y = top-left column, row), grown to the policy image's aspect
ratio (so the resize does not distort) and kept inside the image.

Camera file written by :func:`write_camera_crop` (keys = RealSenseCameraConfig field names)::

    cameras:
      front:
        width: 640          # stream size the crop refers to [px]
        height: 480
        crop: [x, y, w, h]
        output_size: [84, 84]
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.io import CalibrationFileError, dump_yaml, read_yaml_mapping


class CropError(ValueError):
    """The requested region cannot become a valid crop."""


@dataclass
class CropConfig:
    """Image geometry the crop must respect."""

    image_width: int = 640  # full stream width [px]
    image_height: int = 480  # full stream height [px]
    output_size: tuple[int, int] = (84, 84)  # (H, W) of the policy image; sets the crop's aspect ratio
    min_size_px: int = 16  # smallest allowed crop side [px]

    def __post_init__(self) -> None:
        if int(self.image_width) < 1 or int(self.image_height) < 1:
            raise ValueError(f"image size must be positive, got {self.image_width}x{self.image_height}")
        if len(self.output_size) != 2 or min(int(v) for v in self.output_size) < 1:
            raise ValueError(f"output_size must be (H, W) > 0, got {self.output_size}")
        self.output_size = (int(self.output_size[0]), int(self.output_size[1]))
        if int(self.min_size_px) < 1 or self.min_size_px > min(self.image_width, self.image_height):
            raise ValueError(f"min_size_px must be in [1, min image side], got {self.min_size_px}")


def crop_from_points(points, cfg: CropConfig, margin_px: int = 0) -> tuple[int, int, int, int]:
    """Smallest crop with the output aspect ratio that contains all (N, 2) pixel points (x, y) plus a
    margin, centred on them and shifted/shrunk to stay inside the image.

    Returns (x, y, w, h) in integer pixels. When the aspect-correct box cannot fit, it is shrunk to
    the largest one that fits (the points may then not all be inside).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) if np.size(points) else np.zeros((0, 2))
    if pts.shape[0] < 1 or not np.all(np.isfinite(pts)):
        raise CropError(f"need at least one finite (x, y) point, got {np.asarray(points).tolist()}")
    lo, hi = pts.min(0) - margin_px, pts.max(0) + margin_px
    return _fit(lo, hi, cfg)


def crop_from_rect(rect, cfg: CropConfig) -> tuple[int, int, int, int]:
    """Aspect-corrected, clamped crop from a chosen (x, y, w, h) rectangle (e.g. a mouse drag)."""
    r = np.asarray(rect, dtype=np.float64).reshape(-1)
    if r.shape != (4,) or not np.all(np.isfinite(r)) or r[2] <= 0 or r[3] <= 0:
        raise CropError(f"rect must be (x, y, w, h) with w, h > 0, got {np.asarray(rect).tolist()}")
    return _fit(r[:2], r[:2] + r[2:], cfg)


def _fit(lo: np.ndarray, hi: np.ndarray, cfg: CropConfig) -> tuple[int, int, int, int]:
    W, H = cfg.image_width, cfg.image_height
    aspect = cfg.output_size[1] / cfg.output_size[0]  # width / height
    centre = (lo + hi) / 2
    w, h = max(hi[0] - lo[0], cfg.min_size_px), max(hi[1] - lo[1], cfg.min_size_px)
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    scale = min(1.0, W / w, H / h)  # shrink (keeping the aspect) when it does not fit
    w, h = w * scale, h * scale
    wi, hi_ = int(round(w)), int(round(h))
    wi, hi_ = min(max(wi, cfg.min_size_px), W), min(max(hi_, cfg.min_size_px), H)
    x = int(round(centre[0] - wi / 2))
    y = int(round(centre[1] - hi_ / 2))
    x, y = min(max(x, 0), W - wi), min(max(y, 0), H - hi_)
    return x, y, wi, hi_


def write_camera_crop(path: str | Path, camera: str, crop: tuple[int, int, int, int], cfg: CropConfig) -> Path:
    """Set ``cameras.<camera>.{width, height, crop, output_size}`` in a YAML file (created if missing),
    keeping every other key; atomic write."""
    x, y, w, h = (int(v) for v in crop)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > cfg.image_width or y + h > cfg.image_height:
        raise CropError(f"crop {crop} does not fit a {cfg.image_width}x{cfg.image_height} image")
    if not camera or any(c.isspace() for c in camera):
        raise CropError(f"camera name must be non-empty without spaces, got {camera!r}")
    p = Path(path)
    data = read_yaml_mapping(p) if p.exists() else {}
    cams = data.get("cameras") or {}
    if not isinstance(cams, dict):
        raise CalibrationFileError(f"{p}: 'cameras' must be a mapping, got {type(cams).__name__}")
    entry = cams.get(camera) or {}
    if not isinstance(entry, dict):
        raise CalibrationFileError(f"{p}: cameras.{camera} must be a mapping")
    entry.update({"width": cfg.image_width, "height": cfg.image_height, "crop": [x, y, w, h],
                  "output_size": list(cfg.output_size)})
    cams[camera] = entry
    data["cameras"] = cams
    return dump_yaml(p, data)


def read_camera_crop(path: str | Path, camera: str) -> tuple[int, int, int, int]:
    """The ``(x, y, w, h)`` crop of ``camera`` from a file written by :func:`write_camera_crop`."""
    p = Path(path)
    cams = read_yaml_mapping(p).get("cameras")
    if not isinstance(cams, dict) or not isinstance(cams.get(camera), dict) or "crop" not in cams[camera]:
        raise CalibrationFileError(f"{p} has no cameras.{camera}.crop")
    crop = cams[camera]["crop"]
    if not (isinstance(crop, list) and len(crop) == 4 and all(isinstance(v, int) for v in crop)):
        raise CalibrationFileError(f"{p}: cameras.{camera}.crop must be 4 integers, got {crop!r}")
    return tuple(crop)


def display_available() -> bool:
    """True when an X11/Wayland display is set (the interactive picker needs one)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pick_crop_interactive(image: np.ndarray, cfg: CropConfig, window: str = "select crop") -> tuple[int, int, int, int]:
    """Let a human drag a rectangle on ``image`` ((H, W, 3) RGB uint8) in an OpenCV window; returns the
    aspect-corrected crop. Needs a display and an OpenCV build with GUI support."""
    import cv2

    if not display_available():
        raise CropError("no display (DISPLAY / WAYLAND_DISPLAY unset): pass --rect x,y,w,h instead")
    if image.shape[:2] != (cfg.image_height, cfg.image_width):
        raise CropError(f"image is {image.shape[1]}x{image.shape[0]}, config expects "
                        f"{cfg.image_width}x{cfg.image_height}")
    try:
        rect = cv2.selectROI(window, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), showCrosshair=True)
        cv2.destroyWindow(window)
    except cv2.error as exc:
        raise CropError(f"OpenCV has no GUI here (headless build?): {exc}; pass --rect instead") from exc
    if rect[2] <= 0 or rect[3] <= 0:
        raise CropError("no rectangle selected (selection cancelled)")
    return crop_from_rect(rect, cfg)
