"""Calibration on MuJoCo renderings with a known answer.

A ChArUco board (OpenCV-generated texture on a thin slab) is rendered at 640x480 by a pinhole camera
of known fovy (K follows from fovy and the image size) with both poses known. Checked:
  * intrinsics from 10 views (through the CLI): focal length within 1 %, principal point within 3 px;
  * board pose from solvePnP vs truth: < 2 mm, < 0.3 deg;
  * hand-eye, eye-to-hand and eye-in-hand, on 12 rendered samples: camera and board transforms
    < 2 mm, < 0.2 deg; per-sample pose-chain residuals < 5 mm, < 1.5 deg (single-view PnP noise).
Tolerances are what 640x480 renders honestly support; the errors measured by
``python -m calibration.accuracy`` are several times smaller (see docs/calibration.md).
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (calibration.render does it lazily)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("mujoco")

from calibration.board import Board  # noqa: E402
from calibration.cli import main, save_samples  # noqa: E402
from calibration.geometry import exp_so3, invert, make_transform, matrix_to_pose, pose_to_matrix, transform_error  # noqa: E402
from calibration.handeye import HandEyeCollector, HandEyeConfig  # noqa: E402
from calibration.intrinsics import CameraIntrinsics  # noqa: E402
from calibration.io import load_handeye, load_intrinsics, save_intrinsics  # noqa: E402
from calibration.render import (  # noqa: E402
    BoardScene,
    BoardSceneConfig,
    look_at,
    render_eye_in_hand,
    render_eye_to_hand,
    render_intrinsic_views,
)
from robot_envs.robot import RobotState  # noqa: E402

pytestmark = pytest.mark.sim

W, H, FOVY = 640, 480, 50.0
POS_TOL_M, ROT_TOL_DEG = 0.002, 0.2


@pytest.fixture(scope="module")
def scene():
    with BoardScene(BoardSceneConfig(width=W, height=H, fovy_deg=FOVY)) as sc:
        yield sc


@pytest.fixture(scope="module")
def intrinsic_views(scene):
    return render_intrinsic_views(scene, 10, np.random.default_rng(7))


def _true_intrinsics(scene):
    return CameraIntrinsics(K=scene.K, dist=np.zeros(5), width=W, height=H, source="render")


def test_scene_intrinsics_follow_from_fovy(scene):
    f = 0.5 * H / np.tan(np.deg2rad(FOVY) / 2)
    assert np.allclose(scene.K, [[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1]])


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


def test_eye_to_hand_on_rendered_samples(scene):
    T_base_camera = look_at([1.15, 0.35, 0.75], [0.5, 0.0, 0.3])  # truth: camera fixed in the cell
    T_tcp_board = make_transform(exp_so3([0.2, -0.1, 0.4]), [-0.12, -0.09, 0.07])  # truth: board on gripper
    collector = HandEyeCollector(scene.board, _true_intrinsics(scene), HandEyeConfig(mode="eye_to_hand"))
    data = render_eye_to_hand(scene, 14, np.random.default_rng(11), T_base_camera, T_tcp_board)
    outcomes = [collector.add_sample(img, _state(T_base_tcp)) for img, T_base_tcp in data]
    assert sum(o.accepted for o in outcomes) >= 12, [o.reason for o in outcomes]
    res = collector.solve()
    dt, dr = transform_error(res.T_camera, T_base_camera)
    assert dt < POS_TOL_M and np.rad2deg(dr) < ROT_TOL_DEG, (dt, np.rad2deg(dr))
    dt, dr = transform_error(res.T_board, T_tcp_board)
    assert dt < POS_TOL_M and np.rad2deg(dr) < ROT_TOL_DEG, (dt, np.rad2deg(dr))
    # Per-sample chain residuals carry single-view PnP noise (board ~0.85 m away, ~1/3 of the image),
    # larger than the error of the estimate, which averages all views.
    s = res.summary()
    assert s["translation_max_mm"] < 5.0 and s["rotation_max_deg"] < 1.5
    assert s["reprojection_rms_px"] < 0.3  # the chain explains every corner to a fraction of a pixel


def test_eye_in_hand_on_rendered_samples_via_cli(scene, tmp_path):
    T_base_board = make_transform(np.diag([1.0, -1.0, -1.0]), [0.4, 0.12, 0.0])  # flat on the table, face up
    T_tcp_camera = make_transform(exp_so3([0.05, -0.1, 1.5]), [0.06, -0.03, 0.03])  # truth: camera on flange
    data = render_eye_in_hand(scene, 12, np.random.default_rng(12), T_base_board, T_tcp_camera)
    samples = []
    for i, (img, T_base_tcp) in enumerate(data):
        cv2.imwrite(str(tmp_path / f"img_{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        samples.append((f"img_{i:03d}.png", matrix_to_pose(T_base_tcp)))
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
    assert dt < POS_TOL_M and np.rad2deg(dr) < ROT_TOL_DEG, (dt, np.rad2deg(dr))


def _wait_sim_time(world, seconds: float, timeout_s: float = 120.0) -> None:
    """Block until the simulation clock advanced by ``seconds`` (robust to a loaded CPU)."""
    import time

    end, deadline = world.sim_time() + seconds, time.monotonic() + timeout_s
    while world.sim_time() < end:
        if time.monotonic() > deadline:
            raise TimeoutError(f"simulation did not advance {seconds} s within {timeout_s} s")
        time.sleep(0.02)


@pytest.mark.slow
def test_eye_to_hand_with_franky_sim_robot_states(tmp_path):
    """End to end through the real robot stack: the board hangs on the FR3 hand in franky-sim, the arm
    is moved by FrankyRobot (franky over the libfranka protocol), TCP poses come from
    ``Robot.read_state()``, images from ``SimWorld.render``. The truth is MuJoCo's camera pose, so
    this also checks that RobotState.ee_pose lives in the frame the hand-eye result is expressed in.
    franky-sim reports the commanded pose as soon as a motion finishes while the simulated arm still
    settles (several mm / > 1 deg for ~0.5 s of sim time, then ~0.2 mm / 0.1 deg), so each sample
    waits 0.8 s of sim time; hence 5 mm / 0.5 deg here. Also records a workspace while a motion runs."""
    pytest.importorskip("franky")
    pytest.importorskip("franky_sim")

    from calibration.render import attach_board, intrinsics_from_fovy, write_board_texture
    from calibration.workspace import WorkspaceConfig, WorkspaceRecorder
    from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig
    from robot_envs.sim.world import SimCameraConfig, SimWorld, SimWorldConfig

    bcfg = BoardSceneConfig()
    w, h = bcfg.board.size_m
    # Board 3 cm in front of the hand (towards the camera), centred 0.2 m along the hand's z axis,
    # printed side facing +x of the world when the gripper points down (the start pose).
    T_hand_board = make_transform([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], [0.03, w / 2, 0.2 - h / 2])
    png = write_board_texture(bcfg, tmp_path)
    cam = SimCameraConfig(name="calib", position=(1.2, 0.0, 0.45), target=(0.58, 0.0, 0.42), fovy=FOVY,
                          width=W, height=H)
    world_cfg = SimWorldConfig(cameras=[cam], hostname="auto", realtime_factor=0)
    hook = lambda b: attach_board(b.asset, b.hand_body, bcfg, png, T_hand_board)  # noqa: E731
    with SimWorld(world_cfg, scene_hooks=[hook]) as world:
        T_base_camera = pose_to_matrix(world.camera_pose("calib"))  # MuJoCo's camera pose (OpenCV frame) as the truth
        K = world.camera_intrinsics("calib")
        np.testing.assert_allclose(K, intrinsics_from_fovy(FOVY, W, H))
        intr = CameraIntrinsics(K=K, dist=np.zeros(5), width=W, height=H)
        collector = HandEyeCollector(Board(bcfg.board), intr, HandEyeConfig(mode="eye_to_hand", min_samples=6))
        robot = FrankyRobot(FrankyRobotConfig(hostname=world.hostname, ignore_realtime=True, gripper_enabled=False,
                                              move_to_dynamics_factor=1.0, relative_dynamics_factor=0.5))
        rng = np.random.default_rng(0)
        with robot:
            T0 = pose_to_matrix(robot.read_state().ee_pose)
            _wait_sim_time(world, 0.5)
            assert collector.add_sample(world.render("calib").image, robot.read_state()).accepted
            while len(collector.samples) < 6:
                T = T0 @ make_transform(exp_so3(rng.uniform(-0.3, 0.3, 3)), rng.uniform(-0.03, 0.03, 3))
                robot.move_to(matrix_to_pose(T), 120.0)  # wall-clock bound: generous for a loaded CPU
                _wait_sim_time(world, 0.8)  # franky reports the reached target at once; the arm settles later
                outcome = collector.add_sample(world.render("calib").image, robot.read_state())
                assert outcome.accepted, outcome.reason
            # Workspace: record while a non-blocking motion 6 cm along x runs.
            target = robot.read_state().ee_pose.copy()
            target[0] += 0.06
            rec = WorkspaceRecorder(WorkspaceConfig(margin_m=0.0, min_points=5))
            start_x = target[0] - 0.06
            robot.command_pose(target)
            rec.record(robot.read_state, duration_s=3.0, rate_hz=20.0)
    res = collector.solve()
    dt, dr = transform_error(res.T_camera, T_base_camera)
    assert dt < 0.005 and np.rad2deg(dr) < 0.5, (dt, np.rad2deg(dr))
    T_tcp_board = invert(make_transform(np.eye(3), [0, 0, 0.1034])) @ T_hand_board  # franky's default hand TCP
    dt, dr = transform_error(res.T_board, T_tcp_board)
    assert dt < 0.005 and np.rad2deg(dr) < 0.5, (dt, np.rad2deg(dr))
    lo, hi = rec.box()
    assert lo[0] <= start_x + 0.005 and hi[0] - lo[0] > 0.03  # the box spans the motion
