"""SimWorld: franky-sim FR3 + task scene objects + clocks (real MuJoCo, real franky)."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from robot_envs import transforms as tf  # noqa: E402
from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig  # noqa: E402
from robot_envs.sim import SceneBuilder, SimWorld, SimWorldConfig  # noqa: E402
from robot_envs.sim.world import SimCameraConfig, SimWorldError  # noqa: E402

pytestmark = pytest.mark.sim
DOWN = np.array([1.0, 0.0, 0.0, 0.0])


def _scene(builder: SceneBuilder) -> None:
    cube = builder.add_object("cube", pose=[0.5, 0.1, 0.02, 0, 0, 0, 1])
    ET.SubElement(cube, "geom", type="box", size="0.02 0.02 0.02", rgba="1 0 0 1", mass="0.05")
    hole = builder.add_object("hole", pose=[0.6, -0.15, 0.01, 0, 0, 0, 1], free=False)
    ET.SubElement(hole, "geom", type="box", size="0.05 0.05 0.01", rgba="0 0 1 1")
    # a peg held by the gripper: a child of the hand body, 12 cm along the hand's z axis
    peg = ET.SubElement(builder.hand_body, "body", name="peg", pos="0 0 0.12")
    ET.SubElement(peg, "geom", type="cylinder", size="0.008 0.02", contype="0", conaffinity="0")


@pytest.fixture(scope="module")
def world():
    cfg = SimWorldConfig(cameras=[], hostname="auto", table_height=0.0)
    with SimWorld(cfg, scene_hooks=[_scene]) as w:
        yield w


@pytest.fixture(scope="module")
def robot(world):
    cfg = FrankyRobotConfig(hostname=world.hostname, ignore_realtime=True, gripper_enabled=False,
                            relative_dynamics_factor=0.3, move_to_dynamics_factor=0.3)
    with FrankyRobot(cfg) as r:
        yield r


def test_objects_are_registered_and_settle(world):
    assert world.object_names == ["cube", "hole"]
    world.clock.sleep(0.3)
    poses = world.object_poses()
    assert set(poses) == {"cube", "hole"}
    np.testing.assert_allclose(poses["cube"][:3], [0.5, 0.1, 0.02], atol=2e-3)  # resting on the floor
    np.testing.assert_allclose(poses["hole"][:3], [0.6, -0.15, 0.01], atol=1e-9)  # static
    for p in poses.values():
        assert p.shape == (7,) and abs(np.linalg.norm(p[3:]) - 1) < 1e-9


def test_set_object_pose_free_and_static(world):
    q = tf.rotvec_to_quat([0, 0, 0.5])
    world.set_object_pose("cube", np.concatenate([[0.45, -0.05, 0.02], q]))
    world.set_object_pose("hole", np.concatenate([[0.65, 0.2, 0.01], q]))
    poses = world.object_poses()
    np.testing.assert_allclose(poses["cube"][:3], [0.45, -0.05, 0.02], atol=1e-6)
    assert tf.quat_angle(poses["cube"][3:], q) < 1e-6
    world.clock.sleep(0.2)
    poses = world.object_poses()
    np.testing.assert_allclose(poses["hole"][:3], [0.65, 0.2, 0.01], atol=1e-9)
    assert tf.quat_angle(poses["hole"][3:], q) < 1e-6
    np.testing.assert_allclose(poses["cube"][:2], [0.45, -0.05], atol=2e-3)  # did not fly away


def test_dropped_object_falls(world):
    world.set_object_pose("cube", [0.5, 0.2, 0.3, 0, 0, 0, 1])
    world.clock.sleep(0.5)
    assert world.object_poses(["cube"])["cube"][2] < 0.05


def test_reset_scene_sets_several_objects(world):
    world.reset_scene({"cube": [0.4, 0.0, 0.02, 0, 0, 0, 1], "hole": [0.6, 0.0, 0.01, 0, 0, 0, 1]})
    poses = world.object_poses()
    # a free cube settles by ~30 um before the pose is read on a loaded machine
    np.testing.assert_allclose(poses["cube"][:3], [0.4, 0.0, 0.02], atol=1e-4)
    np.testing.assert_allclose(poses["hole"][:3], [0.6, 0.0, 0.01], atol=1e-9)


def test_bad_names_and_poses_are_rejected(world):
    with pytest.raises(KeyError, match="no body named 'nope'"):
        world.object_poses(["nope"])
    with pytest.raises(ValueError, match="NaN"):
        world.set_object_pose("cube", [np.nan, 0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        world.set_object_pose("cube", [0, 0, 0])


def test_sim_time_and_clock_advance(world):
    t0 = world.sim_time()
    world.clock.sleep(0.05)
    assert world.sim_time() >= t0 + 0.05
    assert world.physics_steps > 0


def test_object_attached_to_the_hand_follows_the_tcp(world, robot):
    start = np.concatenate([[0.5, 0.0, 0.35], DOWN])
    # The MuJoCo bodies settle a few mm behind franky's reported TCP at the end of a motion
    # (PD tracking in franky-sim); compare once settled.
    robot.move_to(start, timeout_s=15.0)
    world.clock.sleep(1.0)
    peg0 = world.object_poses(["peg"])["peg"]
    target = start.copy()
    target[:3] += [0.05, 0.04, 0.06]
    robot.move_to(target, timeout_s=15.0)
    world.clock.sleep(1.0)
    peg1 = world.object_poses(["peg"])["peg"]
    np.testing.assert_allclose(peg1[:3] - peg0[:3], [0.05, 0.04, 0.06], atol=2e-3)


def test_second_world_on_a_busy_address_fails_clearly(world):
    with pytest.raises(SimWorldError, match="could not listen on"):
        SimWorld(SimWorldConfig(cameras=[], hostname=world.hostname)).start()


def test_config_validation():
    with pytest.raises(ValueError, match="realtime_factor"):
        SimWorldConfig(realtime_factor=-1.0)
    with pytest.raises(ValueError, match="unique"):
        SimWorldConfig(cameras=[SimCameraConfig(name="a"), SimCameraConfig(name="a")])
    with pytest.raises(ValueError, match="a look-at target or a quaternion"):
        SimCameraConfig(target=None, quaternion=None)
    with pytest.raises(ValueError, match="fovy"):
        SimCameraConfig(fovy=0.0)


def test_franky_motions_run_faster_than_real_time():
    """realtime_factor=0: physics runs unpaced; blocking franky motions still reach their targets.

    (Streamed command_pose at realtime_factor=0 is characterised in world.py's docstring: one
    planner failure, code -101, in 15 trials under heavy load; not asserted here to stay deterministic.)
    """
    with SimWorld(SimWorldConfig(cameras=[], hostname="auto", realtime_factor=0.0)) as w:
        cfg = FrankyRobotConfig(hostname=w.hostname, ignore_realtime=True, gripper_enabled=False,
                                move_to_dynamics_factor=0.3, relative_dynamics_factor=0.3)
        with FrankyRobot(cfg) as r:
            for target_xyz in ([0.45, 0.1, 0.3], [0.6, -0.1, 0.45]):
                target = np.concatenate([target_xyz, DOWN])
                t0 = w.sim_time()
                r.move_to(target, timeout_s=30.0)
                s = r.read_state()
                assert s.error is None
                np.testing.assert_allclose(s.ee_pose[:3], target[:3], atol=1e-3)
                assert w.sim_time() > t0 + 0.2  # the move took simulated time


def test_camera_pose_and_intrinsics_accessors():
    cam = SimCameraConfig(name="top", position=(0.9, 0.3, 0.8), target=(0.5, 0.0, 0.1), fovy=50.0,
                          width=64, height=48)
    with SimWorld(SimWorldConfig(cameras=[cam], hostname="auto")) as w:
        pose = w.camera_pose("top")  # OpenCV optical frame: z forward, y down
        np.testing.assert_allclose(pose[:3], cam.position, atol=1e-9)
        rot = tf.quat_to_matrix(pose[3:])
        fwd = np.subtract(cam.target, cam.position)
        np.testing.assert_allclose(rot[:, 2], fwd / np.linalg.norm(fwd), atol=1e-6)
        assert rot[2, 1] < 0  # image "down" points down in the world
        mj = tf.quat_to_matrix(w.camera_pose("top", convention="mujoco")[3:])
        np.testing.assert_allclose(mj, rot @ np.diag([1.0, -1.0, -1.0]), atol=1e-9)
        K = w.camera_intrinsics("top")
        f = 24.0 / np.tan(np.deg2rad(25.0))
        np.testing.assert_allclose(K, [[f, 0, 31.5], [0, f, 23.5], [0, 0, 1]])
        with pytest.raises(KeyError, match="unknown sim camera 'nope'"):
            w.camera_pose("nope")
        with pytest.raises(KeyError, match="unknown sim camera"):
            w.camera_intrinsics("nope")
        with pytest.raises(ValueError, match="convention"):
            w.camera_pose("top", convention="ros")
