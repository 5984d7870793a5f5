"""Calibration on MuJoCo renderings with a known answer.

A ChArUco board (OpenCV-generated texture on a thin slab) is rendered at 640x480 by a pinhole camera
of known fovy (K follows from fovy and the image size) with both poses known. Checked:
  * intrinsics from 10 views (through the CLI): focal length within 1 %, principal point within 3 px;
  * board pose from solvePnP vs truth: < 2 mm, < 0.3 deg;
  * hand-eye, eye-to-hand and eye-in-hand, on 12 rendered samples: camera and board transforms
    < 5 mm, < 0.5 deg; per-sample chain residuals < 5 mm, < 1.5 deg (single-view PnP noise).
Tolerances are what 640x480 renders honestly support (measured errors are about 5-10x smaller).
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (calibration.render does it lazily)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("mujoco")

from calibration.cli import main, save_samples  # noqa: E402
from calibration.geometry import exp_so3, invert, make_transform, matrix_to_pose, transform_error  # noqa: E402
from calibration.handeye import HandEyeCollector, HandEyeConfig  # noqa: E402
from calibration.intrinsics import CameraIntrinsics  # noqa: E402
from calibration.io import load_handeye, load_intrinsics, save_intrinsics  # noqa: E402
from calibration.render import BoardScene, BoardSceneConfig, look_at  # noqa: E402
from robot_envs.robot import RobotState  # noqa: E402

pytestmark = pytest.mark.sim

W, H, FOVY = 640, 480, 50.0
POS_TOL_M, ROT_TOL_DEG = 0.005, 0.5


@pytest.fixture(scope="module")
def scene():
    with BoardScene(BoardSceneConfig(width=W, height=H, fovy_deg=FOVY)) as sc:
        yield sc


def _centred(scene, T_world_centre):
    """Board pose whose pattern centre sits at T_world_centre (board axes as given)."""
    w, h = scene.cfg.board.size_m
    return T_world_centre @ make_transform(np.eye(3), [-w / 2, -h / 2, 0.0])


def _tilt(rng, max_deg):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    return make_transform(exp_so3(axis * np.deg2rad(rng.uniform(0, max_deg))), np.zeros(3))


def _true_intrinsics(scene):
    return CameraIntrinsics(K=scene.K, dist=np.zeros(5), width=W, height=H, source="render")


@pytest.fixture(scope="module")
def intrinsic_views(scene):
    """10 renders of the board at the origin from varied camera poses: [(image, T_world_camera)]."""
    rng = np.random.default_rng(7)
    centre = np.r_[np.array(scene.cfg.board.size_m) / 2, 0.0]
    views = []
    while len(views) < 10:
        d, th, ph = rng.uniform(0.35, 0.6), rng.uniform(0.15, 0.65), rng.uniform(0, 2 * np.pi)
        eye = centre + d * np.array([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), -np.cos(th)])
        T = look_at(eye, centre + np.r_[rng.normal(size=2) * 0.03, 0], up=(0, -1, 0))
        T = T @ make_transform(exp_so3([0, 0, rng.uniform(-0.6, 0.6)]), np.zeros(3))
        img = scene.render(T, np.eye(4))
        if scene.board.detect(img) is not None:
            views.append((img, T))
    return views


def test_intrinsics_from_rendered_views_via_cli(scene, intrinsic_views, tmp_path):
    for i, (img, _) in enumerate(intrinsic_views):
        cv2.imwrite(str(tmp_path / f"view_{i:02d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "front_intrinsics.yaml"
    assert main(["intrinsics", "--images", str(tmp_path), "--camera", "front", "--out", str(out)]) == 0
    intr, cam = load_intrinsics(out)
    K = scene.K
    assert cam == "front" and (intr.width, intr.height) == (W, H)
    assert abs(intr.fx / K[0, 0] - 1) < 0.01 and abs(intr.fy / K[1, 1] - 1) < 0.01
    assert abs(intr.cx - K[0, 2]) < 3.0 and abs(intr.cy - K[1, 2]) < 3.0
    assert intr.rms_px < 0.3
    assert np.all(np.abs(intr.dist[:2]) < 0.05)  # the render has no lens distortion


def test_board_pose_matches_truth(scene, intrinsic_views):
    for img, T_world_camera in intrinsic_views[:4]:
        det = scene.board.detect(img)
        T_cb, rms = scene.board.estimate_pose(det, scene.K, np.zeros(5))
        dt, dr = transform_error(T_cb, invert(T_world_camera))  # board frame = world frame here
        assert dt < 0.002 and np.rad2deg(dr) < 0.3 and rms < 0.3


def _state(T_base_tcp):
    return RobotState(stamp=0.0, ee_pose=matrix_to_pose(T_base_tcp), joint_positions=np.zeros(7),
                      gripper_width=0.0)


def test_eye_to_hand_on_rendered_samples(scene, tmp_path):
    rng = np.random.default_rng(11)
    T_base_camera = look_at([1.15, 0.35, 0.75], [0.5, 0.0, 0.3])  # truth: camera fixed in the cell
    T_tcp_board = make_transform(exp_so3([0.2, -0.1, 0.4]), [-0.12, -0.09, 0.07])  # truth: board on gripper
    collector = HandEyeCollector(scene.board, _true_intrinsics(scene), HandEyeConfig(mode="eye_to_hand"))
    rejected = 0
    while len(collector.samples) < 12:
        centre = np.array([0.5, 0.0, 0.3]) + rng.uniform(-0.08, 0.08, size=3)
        facing = look_at(centre, 2 * centre - T_base_camera[:3, 3])  # board z points away from the camera
        T_base_board = _centred(scene, facing @ _tilt(rng, 30.0))
        T_base_tcp = T_base_board @ invert(T_tcp_board)
        outcome = collector.add_sample(scene.render(T_base_camera, T_base_board), _state(T_base_tcp))
        rejected += not outcome.accepted
    assert rejected <= 6
    res = collector.solve()
    dt, dr = transform_error(res.T_camera, T_base_camera)
    assert dt < POS_TOL_M and np.rad2deg(dr) < ROT_TOL_DEG, (dt, np.rad2deg(dr))
    dt, dr = transform_error(res.T_board, T_tcp_board)
    assert dt < POS_TOL_M and np.rad2deg(dr) < ROT_TOL_DEG
    # Per-sample chain residuals carry single-view PnP noise (board ~0.85 m away, ~1/3 of the image):
    # larger than the error of the estimate, which averages 12 views.
    s = res.summary()
    assert s["translation_max_mm"] < 5.0 and s["rotation_max_deg"] < 1.5


def test_eye_in_hand_on_rendered_samples_via_cli(scene, tmp_path):
    rng = np.random.default_rng(12)
    T_base_board = make_transform(np.diag([1.0, -1.0, -1.0]), [0.4, 0.12, 0.0])  # flat on the table, face up
    T_tcp_camera = make_transform(exp_so3([0.05, -0.1, 1.5]), [0.06, -0.03, 0.03])  # truth: camera on flange
    centre = (T_base_board @ np.r_[np.array(scene.cfg.board.size_m) / 2, 0.0, 1.0])[:3]
    samples = []
    while len(samples) < 12:
        offset = np.r_[rng.uniform(-0.15, 0.15, size=2), rng.uniform(0.3, 0.5)]
        T_base_camera = look_at(centre + offset, centre + np.r_[rng.normal(size=2) * 0.03, 0],
                                up=(np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a), 0.0))
        img = scene.render(T_base_camera, T_base_board)
        if scene.board.detect(img) is None:
            continue
        name = f"img_{len(samples):03d}.png"
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        samples.append((name, matrix_to_pose(T_base_camera @ invert(T_tcp_camera))))
    save_samples(tmp_path / "samples.yaml", samples)
    save_intrinsics(tmp_path / "k.yaml", _true_intrinsics(scene), "wrist")
    out = tmp_path / "wrist_handeye.yaml"
    assert main(["handeye", "--samples", str(tmp_path / "samples.yaml"), "--intrinsics", str(tmp_path / "k.yaml"),
                 "--mode", "eye_in_hand", "--out", str(out)]) == 0
    res, cam = load_handeye(out)
    assert cam == "wrist" and res.camera_frames == ("tcp", "camera")
    dt, dr = transform_error(res.T_camera, T_tcp_camera)
    assert dt < POS_TOL_M and np.rad2deg(dr) < ROT_TOL_DEG, (dt, np.rad2deg(dr))
    dt, dr = transform_error(res.T_board, T_base_board)
    assert dt < POS_TOL_M and np.rad2deg(dr) < ROT_TOL_DEG
