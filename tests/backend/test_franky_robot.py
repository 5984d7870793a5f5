"""FrankyRobot against franky-sim (real franky client <-> libfranka protocol <-> MuJoCo FR3)."""
import os
import time

import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from robot_envs import transforms as tf  # noqa: E402
from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig  # noqa: E402
from robot_envs.robot import RobotError  # noqa: E402
from robot_envs.sim import SimWorld, SimWorldConfig  # noqa: E402

pytestmark = pytest.mark.sim
DOWN = np.array([1.0, 0.0, 0.0, 0.0])
HOME = np.concatenate([[0.5, 0.0, 0.4], DOWN])


def _robot_cfg(hostname, **kw):
    return FrankyRobotConfig(hostname=hostname, ignore_realtime=True, relative_dynamics_factor=0.3,
                             move_to_dynamics_factor=0.3, **kw)


@pytest.fixture(scope="module")
def world():
    with SimWorld(SimWorldConfig(cameras=[], hostname="auto")) as w:
        yield w


@pytest.fixture(scope="module")
def robot(world):
    with FrankyRobot(_robot_cfg(world.hostname)) as r:
        yield r


@pytest.fixture()
def home(robot):
    if robot.read_state().error:
        robot.recover()
    robot.move_to(HOME, timeout_s=15.0)
    return robot


def test_unreachable_robot_gives_a_clear_error():
    with pytest.raises(RobotError, match=r"could not connect to the Franka at 127\.254\.253\.252"):
        FrankyRobot(_robot_cfg("127.254.253.252")).connect()


def test_connecting_leaves_the_callers_scheduling_alone(world):
    """libfranka's Robot constructor makes the calling thread SCHED_FIFO 99 when it may (root); with
    ignore_realtime the Python thread (and the threads it starts later) must stay a normal thread."""
    before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    with FrankyRobot(_robot_cfg(world.hostname)):
        assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == before
    assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == before


def test_read_state(robot):
    s = robot.read_state()
    assert s.error is None and s.ok
    assert s.ee_pose.shape == (7,) and np.all(np.isfinite(s.ee_pose))
    assert abs(np.linalg.norm(s.ee_pose[3:]) - 1.0) < 1e-6
    assert s.joint_positions.shape == (7,) and np.all(np.isfinite(s.joint_positions))
    assert s.external_wrench.shape == (6,)
    assert 0.0 <= s.gripper_width <= 0.08
    # the TCP is in front of and above the base, pointing down (franky-sim start pose)
    assert 0.2 < s.ee_pose[0] < 0.8 and s.ee_pose[2] > 0.1
    assert tf.quat_to_matrix(s.ee_pose[3:])[2, 2] < -0.9
    assert robot.read_state().stamp > s.stamp


def test_move_to_absolute_and_relative(home):
    robot = home
    np.testing.assert_allclose(robot.read_state().ee_pose[:3], HOME[:3], atol=1e-3)
    target = tf.compose_delta(robot.read_state().ee_pose, [0.05, -0.04, -0.05])  # a relative move
    robot.move_to(target, timeout_s=15.0)
    s = robot.read_state()
    np.testing.assert_allclose(s.ee_pose[:3], target[:3], atol=1e-3)
    assert tf.quat_angle(s.ee_pose[3:], DOWN) < 0.01


def test_move_to_rejects_bad_input(robot):
    with pytest.raises(ValueError, match="NaN"):
        robot.move_to(np.full(7, np.nan), timeout_s=1.0)
    with pytest.raises(ValueError, match="timeout_s"):
        robot.move_to(HOME, timeout_s=0.0)


def test_command_pose_stream_moves_toward_target(world, home):
    """10 Hz on the simulator's clock (robust to a loaded CPU running the sim slower than real time)."""
    robot = home
    clock = world.clock
    goal = HOME.copy()
    goal[:3] += [0.06, 0.06, -0.03]
    dist0 = np.linalg.norm(robot.read_state().ee_pose[:3] - goal[:3])
    dists = []
    for _ in range(30):  # 10 Hz, 1.5 cm steps
        cur = robot.read_state().ee_pose
        d = goal[:3] - cur[:3]
        step = cur.copy()
        step[3:] = goal[3:]
        step[:3] = cur[:3] + d * min(1.0, 0.015 / max(np.linalg.norm(d), 1e-9))
        t0 = time.monotonic()
        robot.command_pose(step)
        assert time.monotonic() - t0 < 0.5  # non-blocking (generous bound: shared CPU)
        clock.sleep(0.1)
        dists.append(np.linalg.norm(robot.read_state().ee_pose[:3] - goal[:3]))
    assert dists[9] < dist0 - 0.03  # it is moving toward the goal early on
    assert dists[-1] < 2e-3


def test_gripper_open_close(robot):
    robot.command_pose(robot.read_state().ee_pose, gripper_width=0.01)
    _wait_width(robot, 0.01)
    robot.command_pose(robot.read_state().ee_pose, gripper_width=0.07)
    _wait_width(robot, 0.07)
    # a change below gripper_min_change is not sent (the width stays)
    robot.command_pose(robot.read_state().ee_pose, gripper_width=0.068)
    time.sleep(0.5)
    assert robot.read_state().gripper_width == pytest.approx(0.07, abs=3e-3)


def _wait_width(robot, width, timeout_s=5.0):
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if abs(robot.read_state().gripper_width - width) < 3e-3:
            return
        time.sleep(0.05)
    pytest.fail(f"gripper width {robot.read_state().gripper_width:.4f} never reached {width}")


def test_error_is_reported_and_recovered(world, home):
    """Freeze the simulator mid-motion: libfranka times out (like a cable pull / reflex stop)."""
    robot = home
    goal = HOME.copy()
    goal[1] += 0.1
    robot.command_pose(goal)
    time.sleep(0.3)  # the motion is running
    world.pause()
    try:
        time.sleep(1.5)  # > libfranka's 1 s UDP receive timeout
    finally:
        world.resume()
    s = robot.read_state()
    assert s.error is not None and "Timeout" in s.error  # franky's original message is kept
    with pytest.raises(RobotError, match="call recover"):
        robot.command_pose(HOME)
    assert robot.recover() is True
    assert robot.read_state().error is None
    robot.move_to(HOME, timeout_s=15.0)
    np.testing.assert_allclose(robot.read_state().ee_pose[:3], HOME[:3], atol=1e-3)


def test_recovery_budget_exhausted_gives_clear_error():
    w = SimWorld(SimWorldConfig(cameras=[], hostname="auto")).start()
    try:
        r = FrankyRobot(_robot_cfg(w.hostname, gripper_enabled=False, recovery_attempts=2, recovery_delay_s=0.05))
        r.connect()
        r.read_state()
        w.close()  # the robot is gone for good: recovery cannot succeed
        deadline = time.monotonic() + 10.0  # libfranka reports the lost connection after its ~1 s timeout
        while r.read_state().error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r.read_state().error is not None
        with pytest.raises(RobotError, match="recovery failed after 2 attempts"):
            r.recover()
        r.close()
    finally:
        w.close()


def test_move_to_timeout_raises_its_own_error_and_leaves_no_error(home):
    """A move that cannot finish in time is stopped (franky reports "Move command preempted!" for
    our own stop: not an error) and move_to raises its timeout message."""
    robot = home
    far = HOME.copy()
    far[:3] += [0.1, 0.15, -0.1]
    with pytest.raises(RobotError, match=r"move_to did not reach .* within 0\.05 s \(stopped\)"):
        robot.move_to(far, timeout_s=0.05)
    assert robot.read_state().error is None
    robot.move_to(HOME, timeout_s=15.0)  # usable at once, no recover() needed
    np.testing.assert_allclose(robot.read_state().ee_pose[:3], HOME[:3], atol=1e-3)


def test_stop_ends_a_streamed_motion_cleanly(world, home):
    robot = home
    goal = HOME.copy()
    goal[0] += 0.1
    robot.command_pose(goal)
    world.clock.sleep(0.2)  # the motion is running
    robot.stop()  # no RobotError for the preemption of our own motion
    world.clock.sleep(0.5)
    s = robot.read_state()
    assert s.error is None
    assert s.ee_pose[0] < goal[0] - 0.01  # it stopped short of the goal
    robot.command_pose(HOME)  # streaming works again without recover()
    world.clock.sleep(2.0)
    np.testing.assert_allclose(robot.read_state().ee_pose[:3], HOME[:3], atol=2e-3)


def test_stop_from_another_thread_ends_a_move_to_with_an_error(world, home):
    """franky ends a preempted asynchronous motion as if it finished: move_to must not report the pose
    as reached when stop() (robot/stop during a reset) cut it short."""
    import threading

    robot = home
    far = HOME.copy()
    far[:3] += [0.1, 0.15, -0.15]
    result = {}

    def move():
        try:
            robot.move_to(far, timeout_s=30.0)
            result["outcome"] = "reached"
        except RobotError as e:
            result["outcome"] = str(e)

    mover = threading.Thread(target=move)
    mover.start()
    start = robot.read_state().ee_pose[:3]
    while np.linalg.norm(robot.read_state().ee_pose[:3] - start) < 0.01 and mover.is_alive():
        world.clock.sleep(0.02)  # state reads work while the move runs
    robot.stop()
    mover.join(timeout=30.0)
    assert "stopped" in result["outcome"], result
    s = robot.read_state()
    assert s.error is None and np.linalg.norm(s.ee_pose[:3] - far[:3]) > 0.05  # stopped short, no error
    robot.move_to(HOME, timeout_s=15.0)  # usable at once
