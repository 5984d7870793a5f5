"""Board generation/detection and intrinsics estimation on images and points with a known answer."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from calibration.board import Board, BoardConfig, BoardDetectionError, Detection
from calibration.geometry import exp_so3, make_transform, transform_error
from calibration.intrinsics import (
    CameraIntrinsics,
    IntrinsicsCalibConfig,
    IntrinsicsError,
    calibrate_from_detections,
    calibrate_from_images,
    from_realsense,
    read_realsense_intrinsics,
)

K_TRUE = np.array([[600.0, 0, 322.0], [0, 598.0, 241.0], [0, 0, 1]])


@pytest.mark.parametrize("kind", ["charuco", "checkerboard"])
def test_detects_every_corner_of_the_flat_board_image_at_the_right_pixel(kind):
    board = Board(BoardConfig(kind=kind))
    p, m = 40, 30
    img = board.image(px_per_square=p, margin_px=m)
    assert img.shape == (5 * p + 2 * m, 7 * p + 2 * m) and img.dtype == np.uint8
    det = board.detect(cv2.cvtColor(img, cv2.COLOR_GRAY2RGB))
    assert det is not None and len(det) == board.cfg.n_inner_corners == 24
    # Corner (col, row) lies on the square boundary m + k*p, i.e. OpenCV pixel m + k*p - 0.5.
    expected = m + det.object_points[:, :2] / board.cfg.square_length * p - 0.5
    assert np.max(np.abs(det.image_points - expected)) < 0.5
    assert det.image_size == (img.shape[1], img.shape[0])


def test_charuco_corner_ids_match_opencv_board_layout():
    board = Board(BoardConfig())
    cv_board = cv2.aruco.CharucoBoard((7, 5), 0.04, 0.03, cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_5X5_100))
    assert np.allclose(board.corner_points, cv_board.getChessboardCorners(), atol=1e-6)


def test_detect_rejects_malformed_images_and_returns_none_without_board():
    board = Board()
    with pytest.raises(BoardDetectionError, match="uint8"):
        board.detect(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(BoardDetectionError, match="shape"):
        board.detect(np.zeros((50, 50, 4), np.uint8))
    assert board.detect(np.full((120, 160, 3), 127, np.uint8)) is None


def test_board_config_validation():
    with pytest.raises(ValueError, match="marker_length"):
        BoardConfig(marker_length=0.05)
    with pytest.raises(ValueError, match="dictionary"):
        BoardConfig(dictionary="DICT_NOPE")
    with pytest.raises(ValueError, match="kind"):
        BoardConfig(kind="circles")


def _synthetic_views(board, K, dist, n, rng, size=(640, 480)):
    """Project the board's corners from n random poses (pure math, no rendering)."""
    dets, poses = [], []
    obj = board.corner_points.astype(np.float64)
    centre = obj.mean(0)
    while len(dets) < n:
        rv = rng.normal(size=3) * 0.35
        R = exp_so3(rv)
        t = np.array([0, 0, rng.uniform(0.35, 0.6)]) - R @ centre + np.r_[rng.normal(size=2) * 0.03, 0]
        pts, _ = cv2.projectPoints(obj, rv, t, K, dist)
        pts = pts.reshape(-1, 2)
        if np.all((pts >= 0) & (pts < size)):
            dets.append(Detection(np.arange(len(obj), dtype=np.int32), pts.astype(np.float32),
                                  obj.astype(np.float32), size))
            poses.append(make_transform(R, t))
    return dets, poses


def test_calibrate_from_detections_recovers_k_and_distortion():
    rng = np.random.default_rng(0)
    dist = np.array([-0.12, 0.05, 0.001, -0.0005, 0.0])
    board = Board()
    dets, _ = _synthetic_views(board, K_TRUE, dist, 10, rng)
    intr, per_view = calibrate_from_detections(dets, (640, 480), IntrinsicsCalibConfig())
    assert np.allclose(intr.K, K_TRUE, atol=0.5)  # noise-free points: sub-pixel agreement
    assert np.allclose(intr.dist[:4], dist[:4], atol=2e-3)
    assert intr.rms_px < 0.01 and len(per_view) == 10 and intr.source == "charuco"
    with pytest.raises(IntrinsicsError, match="at least 4"):
        calibrate_from_detections(dets[:3], (640, 480))
    with pytest.raises(IntrinsicsError, match="size"):
        calibrate_from_detections(dets[:5], (320, 240))


def test_estimate_pose_recovers_projected_pose():
    rng = np.random.default_rng(1)
    board = Board()
    dets, poses = _synthetic_views(board, K_TRUE, np.zeros(5), 3, rng)
    for det, T in zip(dets, poses):
        T_est, rms = board.estimate_pose(det, K_TRUE, np.zeros(5))
        dt, dr = transform_error(T_est, T)
        assert dt < 1e-6 and dr < 1e-6 and rms < 1e-4


def test_calibrate_from_images_reports_skipped_images():
    blank = np.full((480, 640, 3), 200, np.uint8)
    with pytest.raises(IntrinsicsError, match="not found in any image"):
        calibrate_from_images([("a.png", blank), ("b.png", blank)], Board())
    lines = []
    with pytest.raises(IntrinsicsError, match="not found"):
        calibrate_from_images([("a.png", blank)], Board(), progress=lines.append)
    assert lines and "a.png: skipped" in lines[0]


def test_from_realsense_with_the_real_pyrealsense2_struct():
    rs = pytest.importorskip("pyrealsense2")
    intr = rs.intrinsics()
    intr.width, intr.height = 640, 480
    intr.fx, intr.fy, intr.ppx, intr.ppy = 615.3, 615.9, 321.7, 238.4
    intr.model = rs.distortion.brown_conrady
    intr.coeffs = [0.1, -0.2, 0.001, 0.002, 0.03]
    ci = from_realsense(intr)
    assert np.allclose(ci.K, [[615.3, 0, 321.7], [0, 615.9, 238.4], [0, 0, 1]], atol=1e-4)
    assert np.allclose(ci.dist, [0.1, -0.2, 0.001, 0.002, 0.03], atol=1e-6)
    assert (ci.width, ci.height, ci.rms_px, ci.source) == (640, 480, None, "realsense")
    intr.model = rs.distortion.inverse_brown_conrady  # D400 colour stream; zeros are exact
    intr.coeffs = [0.0] * 5
    assert np.all(from_realsense(intr).dist == 0)
    intr.coeffs = [0.1, 0, 0, 0, 0]
    with pytest.raises(IntrinsicsError, match="inverse_brown_conrady"):
        from_realsense(intr)
    assert from_realsense(intr, allow_inverse_brown_conrady=True).dist[0] == pytest.approx(0.1)


def test_from_realsense_with_a_lookalike_object_and_bad_input():
    fake = SimpleNamespace(width=848, height=480, fx=420.0, fy=421.0, ppx=424.1, ppy=239.2,
                           model="distortion.kannala_brandt4", coeffs=[0.1, 0.2, 0.0, 0.0, 0.0])
    with pytest.raises(IntrinsicsError, match="kannala_brandt4"):
        from_realsense(fake)
    fake.model = "none"
    assert from_realsense(fake).K[0, 2] == pytest.approx(424.1)
    with pytest.raises(IntrinsicsError, match="not a RealSense"):
        from_realsense(SimpleNamespace(width=1))


def test_read_realsense_without_a_device_fails_clearly():
    rs = pytest.importorskip("pyrealsense2")
    if len(rs.context().query_devices()) > 0:
        pytest.skip("a RealSense is connected; this test checks the no-device message")
    with pytest.raises(IntrinsicsError, match="no RealSense camera"):
        read_realsense_intrinsics(None, 640, 480)


def test_camera_intrinsics_validation():
    with pytest.raises(IntrinsicsError, match="K must"):
        CameraIntrinsics(K=np.full((3, 3), np.nan), dist=np.zeros(5), width=640, height=480)
    with pytest.raises(IntrinsicsError, match="dist"):
        CameraIntrinsics(K=K_TRUE, dist=np.zeros(3), width=640, height=480)
    with pytest.raises(IntrinsicsError, match="image size"):
        CameraIntrinsics(K=K_TRUE, dist=np.zeros(5), width=0, height=480)
