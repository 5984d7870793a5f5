"""Workspace box from recorded positions, task-YAML update, crop picker."""
import numpy as np
import pytest
import yaml

from calibration.crop import (
    CropConfig,
    CropError,
    crop_from_points,
    crop_from_rect,
    read_camera_crop,
    write_camera_crop,
)
from calibration.io import CalibrationFileError
from calibration.workspace import WorkspaceConfig, WorkspaceError, WorkspaceRecorder, read_workspace, write_workspace
from robot_envs.robot import RobotState
from robot_envs.tasks.base import task_config


def _recorder(points, **cfg):
    rec = WorkspaceRecorder(WorkspaceConfig(**cfg))
    for p in points:
        rec.add(p)
    return rec


def test_box_is_bounding_box_plus_margin_from_states_poses_and_positions():
    rng = np.random.default_rng(0)
    pts = rng.uniform([0.3, -0.2, 0.1], [0.6, 0.25, 0.4], size=(30, 3))
    rec = WorkspaceRecorder(WorkspaceConfig(margin_m=0.03, min_points=30))
    for i, p in enumerate(pts):
        if i % 3 == 0:
            rec.add(RobotState(stamp=0.0, ee_pose=np.r_[p, 0, 0, 0, 1], joint_positions=np.zeros(7),
                               gripper_width=0.0))
        elif i % 3 == 1:
            rec.add(np.r_[p, 1, 0, 0, 0])
        else:
            rec.add(p)
    lo, hi = rec.box()
    assert np.allclose(lo, pts.min(0) - 0.03) and np.allclose(hi, pts.max(0) + 0.03)


def test_box_min_extent_floor_and_errors():
    flat = [[0.5, 0.0, 0.2], [0.6, 0.1, 0.2]]  # no z extent
    lo, hi = _recorder(flat, margin_m=0.0, min_points=2, min_extent_m=0.04).box()
    assert hi[2] - lo[2] == pytest.approx(0.04) and (lo[2] + hi[2]) / 2 == pytest.approx(0.2)
    lo, _ = _recorder([[0.5, 0, 0.02], [0.6, 0.1, 0.3]], min_points=2, z_floor_m=0.05).box()
    assert lo[2] == pytest.approx(0.05)
    with pytest.raises(WorkspaceError, match="at least 20"):
        _recorder(flat).box()
    with pytest.raises(WorkspaceError, match="non-finite"):
        WorkspaceRecorder().add([0.5, np.nan, 0.2])
    with pytest.raises(WorkspaceError, match="shape"):
        WorkspaceRecorder().add([0.5, 0.2])


def test_record_polls_read_state_and_skips_error_states():
    calls = {"n": 0}

    def read_state():
        calls["n"] += 1
        err = "reflex" if calls["n"] % 2 else None
        return RobotState(stamp=0.0, ee_pose=[0.4 + 0.001 * calls["n"], 0, 0.3, 0, 0, 0, 1],
                          joint_positions=np.zeros(7), gripper_width=0.0, error=err)

    rec = WorkspaceRecorder()
    n = rec.record(read_state, duration_s=0.2, rate_hz=100.0)
    assert n == len(rec) >= 1 and calls["n"] >= 2 * n - 1
    reading_no = np.round((rec.points[:, 0] - 0.4) * 1000).astype(int)
    assert np.all(reading_no % 2 == 0)  # only the even-numbered (healthy) readings were kept


def test_write_workspace_preserves_other_keys_and_loads_into_task_config(tmp_path):
    path = tmp_path / "reach_real.yaml"
    path.write_text(yaml.safe_dump({"episode_length": 80, "safety": {"max_translation_per_step": 0.02},
                                    "cameras": ["front", "wrist"]}, sort_keys=False))
    write_workspace(path, [0.31, -0.21, 0.06], [0.69, 0.22, 0.45])
    data = yaml.safe_load(path.read_text())
    assert data["episode_length"] == 80 and data["cameras"] == ["front", "wrist"]
    assert data["safety"]["max_translation_per_step"] == 0.02
    lo, hi = read_workspace(path)
    assert np.allclose(lo, [0.31, -0.21, 0.06]) and np.allclose(hi, [0.69, 0.22, 0.45])
    cfg = task_config("reach", config_file=path)  # the real task loader accepts the file
    assert cfg.safety.workspace_min == pytest.approx((0.31, -0.21, 0.06))
    assert cfg.safety.workspace_max == pytest.approx((0.69, 0.22, 0.45))
    with pytest.raises(WorkspaceError, match="must be <"):
        write_workspace(path, [0.7, 0, 0], [0.6, 1, 1])
    (tmp_path / "bad.yaml").write_text("safety: 3\n")
    with pytest.raises(CalibrationFileError, match="mapping"):
        write_workspace(tmp_path / "bad.yaml", [0, 0, 0], [1, 1, 1])


def test_crop_from_rect_fixes_aspect_and_stays_inside():
    cfg = CropConfig(image_width=640, image_height=480, output_size=(84, 84))
    assert crop_from_rect((100, 100, 200, 100), cfg) == (100, 50, 200, 200)  # grown about the centre
    x, y, w, h = crop_from_rect((500, 400, 200, 100), cfg)  # overflows bottom-right: shifted back in
    assert (w, h) == (200, 200) and x + w == 640 and y + h == 480
    x, y, w, h = crop_from_rect((0, 0, 640, 480), cfg)  # too wide to be square: shrunk to fit
    assert (w, h) == (480, 480) and 0 <= x and x + w <= 640 and y == 0
    wide = CropConfig(image_width=640, image_height=480, output_size=(60, 120))
    x, y, w, h = crop_from_rect((10, 10, 50, 50), wide)
    assert w == 2 * h and x >= 0 and y >= 0


def test_crop_from_points_and_errors():
    cfg = CropConfig(output_size=(84, 84))
    x, y, w, h = crop_from_points([(200, 150), (300, 260)], cfg, margin_px=10)
    assert w == h == 130 and x <= 190 and x + w >= 310 and y <= 140 and y + h >= 270
    with pytest.raises(CropError, match="point"):
        crop_from_points([], cfg)
    with pytest.raises(CropError, match="w, h > 0"):
        crop_from_rect((0, 0, 0, 10), cfg)
    with pytest.raises(CropError, match="finite"):
        crop_from_points([(np.nan, 1)], cfg)


def test_camera_crop_file_round_trip_keeps_other_cameras(tmp_path):
    cfg = CropConfig(output_size=(84, 84))
    path = tmp_path / "cameras.yaml"
    write_camera_crop(path, "front", (100, 50, 200, 200), cfg)
    write_camera_crop(path, "wrist", (0, 0, 480, 480), cfg)
    assert read_camera_crop(path, "front") == (100, 50, 200, 200)
    data = yaml.safe_load(path.read_text())
    assert data["cameras"]["wrist"] == {"width": 640, "height": 480, "crop": [0, 0, 480, 480],
                                        "output_size": [84, 84]}
    from robot_envs.realsense import RealSenseCameraConfig
    RealSenseCameraConfig(name="front", **data["cameras"]["front"])  # the camera config accepts it
    with pytest.raises(CropError, match="does not fit"):
        write_camera_crop(path, "front", (600, 0, 100, 100), cfg)
    with pytest.raises(CalibrationFileError, match="no cameras.side.crop"):
        read_camera_crop(path, "side")


def test_interactive_picker_needs_a_display(monkeypatch):
    from calibration.crop import pick_crop_interactive

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(CropError, match="no display"):
        pick_crop_interactive(np.zeros((480, 640, 3), np.uint8), CropConfig())
