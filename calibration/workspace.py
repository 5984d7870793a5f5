"""Workspace recorder: the TCP positions visited while a human moves the arm become a safety box.

The box (base frame, metres) is written into a task YAML as ``safety.workspace_min`` /
``safety.workspace_max`` (the keys of ``robot_envs.safety.SafetyConfig`` inside ``TaskConfig``),
keeping every other key of the file.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from calibration.io import CalibrationFileError, dump_yaml, read_yaml_mapping


class WorkspaceError(ValueError):
    """Too few or invalid points, or a task file that cannot take the box."""


@dataclass
class WorkspaceConfig:
    """How recorded points become a box."""

    margin_m: float = 0.02  # distance added on every side of the points' bounding box [m]
    min_points: int = 20  # fewest recorded positions before a box is produced
    min_extent_m: float = 0.02  # each side of the box is widened (about its centre) to at least this [m]
    z_floor_m: float | None = None  # lower bound for workspace_min z (e.g. table top + clearance) [m]; None = off

    def __post_init__(self) -> None:
        if not (np.isfinite(self.margin_m) and self.margin_m >= 0):
            raise ValueError(f"margin_m must be >= 0, got {self.margin_m}")
        if int(self.min_points) != self.min_points or self.min_points < 2:
            raise ValueError(f"min_points must be an integer >= 2, got {self.min_points}")
        if not (np.isfinite(self.min_extent_m) and self.min_extent_m > 0):
            raise ValueError(f"min_extent_m must be > 0, got {self.min_extent_m}")
        if self.z_floor_m is not None and not np.isfinite(self.z_floor_m):
            raise ValueError(f"z_floor_m must be finite or None, got {self.z_floor_m}")


class WorkspaceRecorder:
    """Accumulates TCP positions (base frame, metres) and turns them into a box with a margin."""

    def __init__(self, cfg: WorkspaceConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else WorkspaceConfig()
        self._points: list[np.ndarray] = []

    def add(self, sample) -> None:
        """Record one position: a RobotState, a (7,) pose, or a (3,) position [m] (base frame)."""
        arr = np.asarray(getattr(sample, "ee_pose", sample), dtype=np.float64).reshape(-1)
        if arr.shape not in ((3,), (7,)):
            raise WorkspaceError(f"expected a (3,) position or (7,) pose, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise WorkspaceError(f"non-finite position {arr.tolist()} (not recorded)")
        self._points.append(arr[:3].copy())

    @property
    def points(self) -> np.ndarray:
        """(N, 3) recorded positions [m]."""
        return np.array(self._points).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self._points)

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """(workspace_min (3,), workspace_max (3,)) [m]: bounding box + margin, widened to min_extent_m
        per axis, z_min raised to z_floor_m when set."""
        if len(self) < self.cfg.min_points:
            raise WorkspaceError(f"need at least {self.cfg.min_points} recorded positions, got {len(self)}; "
                                 f"keep moving the arm through the workspace")
        pts = self.points
        lo, hi = pts.min(0) - self.cfg.margin_m, pts.max(0) + self.cfg.margin_m
        centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, self.cfg.min_extent_m / 2)
        lo, hi = centre - half, centre + half
        if self.cfg.z_floor_m is not None:
            lo[2] = max(lo[2], self.cfg.z_floor_m)
            if lo[2] >= hi[2]:
                raise WorkspaceError(f"z_floor_m={self.cfg.z_floor_m} is above every recorded height "
                                     f"(max z with margin {hi[2]:.3f} m)")
        return lo, hi

    def record(self, read_state: Callable[[], object], duration_s: float, rate_hz: float = 20.0,
               progress: Callable[[str], None] | None = None) -> int:
        """Poll ``read_state()`` (e.g. ``robot.read_state``) for ``duration_s`` seconds at ``rate_hz``
        while a human moves the arm; states with an error are skipped. Returns the number recorded."""
        if not (duration_s > 0 and rate_hz > 0):
            raise ValueError(f"duration_s and rate_hz must be > 0, got {duration_s}, {rate_hz}")
        n0, period = len(self), 1.0 / rate_hz
        t_end = time.monotonic() + duration_s
        next_report = time.monotonic()
        while time.monotonic() < t_end:
            state = read_state()
            if getattr(state, "error", None) is None:
                self.add(state)
            if progress is not None and time.monotonic() >= next_report:
                p = self.points[-1] if len(self) else np.full(3, np.nan)
                progress(f"{len(self)} points, last [{p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}] m")
                next_report += 1.0
            time.sleep(period)
        return len(self) - n0


def write_workspace(task_yaml: str | Path, lo, hi) -> Path:
    """Set ``safety.workspace_min/max`` in ``task_yaml`` (created if missing), keeping all other keys;
    atomic write. ``lo``/``hi`` are (3,) [m] in the base frame with lo < hi on every axis."""
    lo = np.asarray(lo, dtype=np.float64).reshape(-1)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1)
    if lo.shape != (3,) or hi.shape != (3,) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise WorkspaceError(f"box corners must be 3 finite numbers each, got {lo.tolist()}, {hi.tolist()}")
    if np.any(lo >= hi):
        raise WorkspaceError(f"workspace_min {lo.tolist()} must be < workspace_max {hi.tolist()} on every axis")
    p = Path(task_yaml)
    data = read_yaml_mapping(p) if p.exists() else {}
    safety = data.get("safety", {})
    if safety is None:
        safety = {}
    if not isinstance(safety, dict):
        raise CalibrationFileError(f"{p}: 'safety' must be a mapping, got {type(safety).__name__}")
    safety["workspace_min"] = [round(float(v), 4) for v in lo]
    safety["workspace_max"] = [round(float(v), 4) for v in hi]
    data["safety"] = safety
    return dump_yaml(p, data)


def read_workspace(task_yaml: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(workspace_min, workspace_max) (3,) [m] from a task YAML's ``safety`` section."""
    p = Path(task_yaml)
    safety = read_yaml_mapping(p).get("safety")
    if not isinstance(safety, dict) or "workspace_min" not in safety or "workspace_max" not in safety:
        raise CalibrationFileError(f"{p} has no safety.workspace_min / safety.workspace_max")
    try:
        lo = np.asarray(safety["workspace_min"], dtype=np.float64)
        hi = np.asarray(safety["workspace_max"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationFileError(f"{p}: workspace corners are not numeric: {exc}") from exc
    if lo.shape != (3,) or hi.shape != (3,):
        raise CalibrationFileError(f"{p}: workspace corners must have 3 values each")
    return lo, hi
