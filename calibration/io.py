"""Save and load calibration results as YAML (atomic writes, validated loads).

Intrinsics file (``type: camera_intrinsics``)::

    type: camera_intrinsics
    version: 1
    camera: front                  # camera name as configured
    image_width: 640               # [px]
    image_height: 480
    camera_matrix: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]   # [px], OpenCV pixel convention
    distortion_model: plumb_bob
    distortion: [k1, k2, p1, p2, k3]
    rms_reprojection_px: 0.12      # null for factory values
    source: charuco

Hand-eye file (``type: hand_eye``): the camera transform under its explicit name, e.g.
``T_base_camera`` (eye_to_hand) or ``T_tcp_camera`` (eye_in_hand), as a 4x4 matrix plus the same as a
``[x, y, z, qx, qy, qz, qw]`` pose; the board transform likewise; residual statistics. ``camera`` is
the OpenCV optical frame (x right, y down, z forward), ``tcp`` the frame of RobotState.ee_pose.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from calibration.geometry import check_transform, matrix_to_pose
from calibration.handeye import MODES, HandEyeConfig, HandEyeResult
from calibration.intrinsics import CameraIntrinsics, IntrinsicsError
from mentor_policy.fileio import atomic_write_text  # noqa: F401 - part of this module's API
from mentor_policy.fileio import read_yaml_mapping as _read_mapping

FORMAT_VERSION = 1


class CalibrationFileError(ValueError):
    """A calibration file is missing, corrupt, or not of the expected type; the message names the file."""


def dump_yaml(path: str | Path, data: dict[str, Any]) -> Path:
    """``yaml.safe_dump`` a mapping to ``path`` atomically (key order kept)."""
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """``yaml.safe_load`` a file that must hold a mapping; CalibrationFileError otherwise."""
    return _read_mapping(path, "calibration", CalibrationFileError, allow_empty=False)


def _header(kind: str) -> dict[str, Any]:
    return {"type": kind, "version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _require(data: dict, path: Path, kind: str, keys: tuple[str, ...]) -> None:
    if data.get("type") != kind:
        raise CalibrationFileError(f"{path} has type {data.get('type')!r}, expected {kind!r}")
    if data.get("version") != FORMAT_VERSION:
        raise CalibrationFileError(f"{path} has format version {data.get('version')!r}, "
                                   f"this code reads version {FORMAT_VERSION}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise CalibrationFileError(f"{path} lacks the keys {missing}")


def _matrix(value: Any, shape: tuple[int, ...], what: str, path: Path) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationFileError(f"{path}: {what} is not numeric: {exc}") from exc
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise CalibrationFileError(f"{path}: {what} must be a finite array of shape {shape}, got {value!r}")
    return arr


# ---------------------------------------------------------------------------------------------
# Intrinsics
# ---------------------------------------------------------------------------------------------
def save_intrinsics(path: str | Path, intr: CameraIntrinsics, camera: str) -> Path:
    """Write camera intrinsics (see the module docstring for the format)."""
    if not camera:
        raise ValueError("camera name must be non-empty")
    data = _header("camera_intrinsics")
    data.update({"camera": str(camera), "image_width": intr.width, "image_height": intr.height,
                 "camera_matrix": intr.K.tolist(), "distortion_model": "plumb_bob",
                 "distortion": intr.dist.tolist(),
                 "rms_reprojection_px": None if intr.rms_px is None else float(intr.rms_px),
                 "source": intr.source})
    return dump_yaml(path, data)


def load_intrinsics(path: str | Path) -> tuple[CameraIntrinsics, str]:
    """Read an intrinsics file; returns (intrinsics, camera name)."""
    p = Path(path)
    data = read_yaml_mapping(p)
    _require(data, p, "camera_intrinsics", ("camera", "image_width", "image_height", "camera_matrix",
                                             "distortion"))
    if data.get("distortion_model", "plumb_bob") != "plumb_bob":
        raise CalibrationFileError(f"{p}: unsupported distortion_model {data.get('distortion_model')!r}")
    K = _matrix(data["camera_matrix"], (3, 3), "camera_matrix", p)
    dist = np.asarray(data["distortion"], dtype=np.float64) if isinstance(data["distortion"], list) else None
    if dist is None or dist.ndim != 1:
        raise CalibrationFileError(f"{p}: distortion must be a list of numbers, got {data['distortion']!r}")
    try:
        intr = CameraIntrinsics(K=K, dist=dist, width=data["image_width"], height=data["image_height"],
                                rms_px=data.get("rms_reprojection_px"), source=str(data.get("source", "file")))
    except (IntrinsicsError, TypeError) as exc:
        raise CalibrationFileError(f"{p}: {exc}") from exc
    return intr, str(data["camera"])


# ---------------------------------------------------------------------------------------------
# Hand-eye
# ---------------------------------------------------------------------------------------------
def transform_name(parent: str, child: str) -> str:
    """The explicit key of a transform in files, e.g. ``T_base_camera``."""
    return f"T_{parent}_{child}"


def save_handeye(path: str | Path, result: HandEyeResult, camera: str) -> Path:
    """Write a hand-eye result with explicitly named frames (see the module docstring)."""
    data = _header("hand_eye")
    cam_key = transform_name(*result.camera_frames)
    board_key = transform_name(*result.board_frames)
    data.update({
        "camera": str(camera), "mode": result.mode,
        "camera_transform": cam_key, cam_key: check_transform(result.T_camera, cam_key).tolist(),
        f"{cam_key}_pose": matrix_to_pose(result.T_camera).tolist(),
        "board_transform": board_key, board_key: check_transform(result.T_board, board_key).tolist(),
        "residuals": result.summary(),
        "residual_translation_m": [float(v) for v in result.residual_translation_m],
        "residual_rotation_rad": [float(v) for v in result.residual_rotation_rad],
        "frames": {"camera": "OpenCV optical frame (x right, y down, z forward)",
                   "tcp": "frame of RobotState.ee_pose (franky end effector)",
                   "board": "board pattern frame (origin top-left corner, x right, y down, z into the board)"},
    })
    return dump_yaml(path, data)


def load_handeye(path: str | Path) -> tuple[HandEyeResult, str]:
    """Read a hand-eye file; returns (result, camera name). Rotations are re-checked on load."""
    p = Path(path)
    data = read_yaml_mapping(p)
    _require(data, p, "hand_eye", ("camera", "mode", "residual_translation_m", "residual_rotation_rad"))
    if data["mode"] not in MODES:
        raise CalibrationFileError(f"{p}: mode must be one of {MODES}, got {data['mode']!r}")
    cfg = HandEyeConfig(mode=data["mode"])
    mats = {}
    for key in (transform_name(*cfg.camera_frames), transform_name(*cfg.board_frames)):
        if key not in data:
            raise CalibrationFileError(f"{p}: mode {cfg.mode} needs the key {key}")
        try:
            mats[key] = check_transform(_matrix(data[key], (4, 4), key, p), key)
        except ValueError as exc:
            raise CalibrationFileError(f"{p}: {exc}") from exc
    t = np.asarray(data["residual_translation_m"], dtype=np.float64).reshape(-1)
    r = np.asarray(data["residual_rotation_rad"], dtype=np.float64).reshape(-1)
    if t.shape != r.shape or t.size == 0 or not (np.all(np.isfinite(t)) and np.all(np.isfinite(r))):
        raise CalibrationFileError(f"{p}: residual lists must be equally long, non-empty and finite")
    result = HandEyeResult(mode=cfg.mode, T_camera=mats[transform_name(*cfg.camera_frames)],
                           T_board=mats[transform_name(*cfg.board_frames)],
                           residual_translation_m=t, residual_rotation_rad=r)
    return result, str(data["camera"])
