"""Save/load round trips of calibration files and clear errors for corrupt ones."""
import numpy as np
import pytest
import yaml

from calibration.geometry import exp_so3, make_transform
from calibration.handeye import HandEyeResult
from calibration.intrinsics import CameraIntrinsics
from calibration.io import (
    CalibrationFileError,
    atomic_write_text,
    load_handeye,
    load_intrinsics,
    save_handeye,
    save_intrinsics,
)


def _intr():
    K = np.array([[612.5, 0, 320.25], [0, 611.75, 241.5], [0, 0, 1]])
    return CameraIntrinsics(K=K, dist=np.array([0.1, -0.05, 0.001, 0.0, 0.002]), width=640, height=480,
                            rms_px=0.23, source="charuco")


def _result(mode):
    T_cam = make_transform(exp_so3([0.3, -1.2, 0.4]), [1.1, 0.05, 0.62])
    T_board = make_transform(exp_so3([3.0, 0.1, -0.2]), [0.0, 0.01, 0.07])
    return HandEyeResult(mode=mode, T_camera=T_cam, T_board=T_board,
                         residual_translation_m=np.array([0.001, 0.002, 0.0005]),
                         residual_rotation_rad=np.array([0.001, 0.0, 0.002]))


def test_intrinsics_round_trip(tmp_path):
    path = save_intrinsics(tmp_path / "sub" / "front.yaml", _intr(), "front")
    intr, cam = load_intrinsics(path)
    ref = _intr()
    assert cam == "front"
    assert np.array_equal(intr.K, ref.K) and np.array_equal(intr.dist, ref.dist)
    assert (intr.width, intr.height, intr.rms_px, intr.source) == (640, 480, 0.23, "charuco")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["front.yaml"]  # no temp files left


@pytest.mark.parametrize("mode,key", [("eye_to_hand", "T_base_camera"), ("eye_in_hand", "T_tcp_camera")])
def test_handeye_round_trip_with_explicit_frame_names(tmp_path, mode, key):
    path = save_handeye(tmp_path / "he.yaml", _result(mode), "front")
    raw = yaml.safe_load(path.read_text())
    assert raw["camera_transform"] == key and key in raw and raw["mode"] == mode
    res, cam = load_handeye(path)
    ref = _result(mode)
    assert cam == "front" and res.mode == mode
    assert np.allclose(res.T_camera, ref.T_camera, atol=1e-12)
    assert np.allclose(res.T_board, ref.T_board, atol=1e-12)
    assert np.allclose(res.residual_translation_m, ref.residual_translation_m)
    assert res.summary()["translation_max_mm"] == pytest.approx(2.0)


def test_corrupt_and_wrong_files_fail_with_the_path_in_the_message(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CalibrationFileError, match="not found"):
        load_intrinsics(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera: [unclosed\n")
    with pytest.raises(CalibrationFileError, match="bad.yaml.*not valid YAML"):
        load_intrinsics(bad)
    he = save_handeye(tmp_path / "he.yaml", _result("eye_to_hand"), "front")
    with pytest.raises(CalibrationFileError, match="type 'hand_eye'"):
        load_intrinsics(he)
    p = save_intrinsics(tmp_path / "k.yaml", _intr(), "front")
    data = yaml.safe_load(p.read_text())
    data["camera_matrix"][0][0] = ".nan"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(CalibrationFileError, match="camera_matrix"):
        load_intrinsics(p)
    raw = yaml.safe_load(he.read_text())
    raw["T_base_camera"][0][0] = 3.0  # not a rotation any more
    he.write_text(yaml.safe_dump(raw))
    with pytest.raises(CalibrationFileError, match="T_base_camera"):
        load_handeye(he)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    p = atomic_write_text(tmp_path / "x.yaml", "a: 1\n")

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        atomic_write_text(p, Boom())  # write() rejects a non-str: the original file stays intact
    assert p.read_text() == "a: 1\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.yaml"]
