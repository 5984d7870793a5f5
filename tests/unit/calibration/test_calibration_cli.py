"""The calibration CLI: outputs, progress, and exit code 2 with one clear line on bad input."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from calibration.board import Board
from calibration.cli import load_samples, main, save_samples

ROOT = Path(__file__).resolve().parents[3]


def test_board_command_writes_a_detectable_image(tmp_path, capsys):
    out = tmp_path / "board.png"
    assert main(["board", "--out", str(out), "--px-per-square", "60", "--margin-px", "30"]) == 0
    img = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    assert img.shape == (5 * 60 + 60, 7 * 60 + 60)
    assert len(Board().detect(img)) == 24
    assert "Print it" in capsys.readouterr().err


def test_crop_command_updates_the_camera_file(tmp_path, capsys):
    out = tmp_path / "cams.yaml"
    img = np.zeros((480, 640, 3), np.uint8)
    img[100:300, 200:400] = 255
    cv2.imwrite(str(tmp_path / "frame.png"), img)
    assert main(["crop", "--image", str(tmp_path / "frame.png"), "--rect", "200,100,200,150", "--camera", "front",
                 "--out", str(out), "--preview", str(tmp_path / "prev.png")]) == 0
    data = yaml.safe_load(out.read_text())
    assert data["cameras"]["front"]["crop"] == [200, 75, 200, 200]
    assert cv2.imread(str(tmp_path / "prev.png")).shape == (200, 200, 3)
    assert main(["crop", "--size", "640,480", "--points", "10,10;50,40", "--margin", "0", "--camera", "wrist",
                 "--out", str(out)]) == 0
    assert set(yaml.safe_load(out.read_text())["cameras"]) == {"front", "wrist"}
    assert "crop (x, y, w, h)" in capsys.readouterr().out


def test_workspace_command_from_a_csv_of_poses(tmp_path, capsys):
    rng = np.random.default_rng(0)
    poses = np.c_[rng.uniform([0.3, -0.2, 0.1], [0.6, 0.2, 0.4], size=(40, 3)), np.tile([0, 0, 0, 1.0], (40, 1))]
    np.savetxt(tmp_path / "poses.csv", poses, delimiter=",")
    task = tmp_path / "task.yaml"
    task.write_text("episode_length: 60\n")
    assert main(["workspace", "--poses", str(tmp_path / "poses.csv"), "--margin", "0.01",
                 "--task-yaml", str(task)]) == 0
    data = yaml.safe_load(task.read_text())
    assert data["episode_length"] == 60
    assert np.allclose(data["safety"]["workspace_min"], poses[:, :3].min(0) - 0.01, atol=1e-4)
    assert np.allclose(data["safety"]["workspace_max"], poses[:, :3].max(0) + 0.01, atol=1e-4)


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["intrinsics", "--images", str(tmp_path / "nope"), "--camera", "c", "--out", "x.yaml"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["intrinsics", "--images", str(tmp_path / "empty"), "--camera", "c", "--out", "x.yaml"]) == 2
    assert "no .png" in capsys.readouterr().err
    assert main(["crop", "--size", "640,480", "--rect", "1,2,3", "--camera", "c", "--out", "x.yaml"]) == 2
    assert "--rect must be 4" in capsys.readouterr().err
    assert main(["workspace", "--task-yaml", str(tmp_path / "t.yaml")]) == 2
    assert "--poses" in capsys.readouterr().err
    (tmp_path / "s.yaml").write_text("type: something_else\n")
    assert main(["handeye", "--samples", str(tmp_path / "s.yaml"), "--intrinsics", str(tmp_path / "k.yaml"),
                 "--mode", "eye_in_hand", "--out", str(tmp_path / "he.yaml")]) == 2
    assert "k.yaml" in capsys.readouterr().err  # the missing intrinsics file is named


def test_samples_file_round_trip(tmp_path):
    pose = np.array([0.5, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0])
    save_samples(tmp_path / "samples.yaml", [("img_000.png", pose), ("img_001.png", None)])
    loaded = load_samples(tmp_path / "samples.yaml")
    assert loaded[0][0] == tmp_path / "img_000.png" and np.array_equal(loaded[0][1], pose)
    assert loaded[1][1] is None


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "calibration.cli", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for sub in ("intrinsics", "handeye", "workspace", "crop", "capture", "board"):
        assert sub in proc.stdout


def test_capture_without_a_camera_fails_clearly_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("pyrealsense2")
    import pyrealsense2 as rs

    if len(rs.context().query_devices()) > 0:
        pytest.skip("a RealSense is connected; this test checks the no-device message")
    out = tmp_path / "caps"
    assert main(["capture", "--robot-host", "127.0.0.1", "--out-dir", str(out)]) == 2
    assert "RealSense" in capsys.readouterr().err
    assert not out.exists()
