"""Adversarial actions -> actions.py -> SafetyLayer -> FrankyRobot on franky-sim: the TCP stays in the box.

Tracking tolerance: the commanded targets are always inside the box, and the box is convex, but
franky blends a new target into a motion that is still moving toward the previous one, and the
simulated arm tracks its reference with a small lag/overshoot. We allow 5 mm for that, far below a
single 2 cm step, so a missing clamp (which would let the arm run 10s of cm out) cannot pass.
"""
import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from robot_envs import transforms as tf  # noqa: E402
from robot_envs.actions import ActionSpaceConfig, action_to_target  # noqa: E402
from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig  # noqa: E402
from robot_envs.safety import NonFiniteActionError, SafetyConfig, SafetyLayer  # noqa: E402
from robot_envs.sim import SimWorld, SimWorldConfig  # noqa: E402

pytestmark = pytest.mark.sim
TOL = 0.005  # [m] tracking tolerance, see module docstring
DOWN = (1.0, 0.0, 0.0, 0.0)
SAFETY = SafetyConfig(workspace_min=(0.45, -0.06, 0.33), workspace_max=(0.58, 0.06, 0.45),
                      max_translation_per_step=0.02, max_rotation_per_step=0.1,
                      nominal_quat=DOWN, orientation_cone_rad=0.35)
ACTIONS = ActionSpaceConfig(translation_scale=0.05, rotation=True, rotation_scale=0.2, gripper=True)


@pytest.fixture(scope="module")
def setup():
    with SimWorld(SimWorldConfig(cameras=[], hostname="auto")) as world:
        cfg = FrankyRobotConfig(hostname=world.hostname, ignore_realtime=True,
                                relative_dynamics_factor=0.4, move_to_dynamics_factor=0.3)
        with FrankyRobot(cfg) as robot:
            start = np.concatenate([(np.array(SAFETY.workspace_min) + SAFETY.workspace_max) / 2, DOWN])
            robot.move_to(start, timeout_s=15.0)
            yield world, robot


def _run(world, robot, actions, rng, hz=20.0):
    """Stream actions through the safety layer; return every measured TCP pose and #rejected."""
    layer = SafetyLayer(SAFETY)
    clock = world.clock
    measured, rejected = [], 0
    for a in actions:
        cur = robot.read_state()
        assert cur.error is None, cur.error
        measured.append(cur.ee_pose)
        try:
            target, width = action_to_target(cur.ee_pose, a, ACTIONS)
            safe = layer.clamp(cur.ee_pose, target)
            robot.command_pose(safe, layer.clamp_gripper(width))
        except NonFiniteActionError:
            rejected += 1  # hold: nothing is sent, the arm keeps its last safe target
        # sample the arm twice more per tick (between commands it may overshoot)
        for _ in range(2):
            clock.sleep(1.0 / hz / 2)
            measured.append(robot.read_state().ee_pose)
    clock.sleep(0.5)
    measured.append(robot.read_state().ee_pose)
    return np.array(measured), rejected


def _assert_inside(measured):
    lo, hi = np.array(SAFETY.workspace_min) - TOL, np.array(SAFETY.workspace_max) + TOL
    out = (measured[:, :3] < lo) | (measured[:, :3] > hi)
    worst = np.max(np.maximum(np.array(SAFETY.workspace_min) - measured[:, :3],
                              measured[:, :3] - np.array(SAFETY.workspace_max)))
    assert not out.any(), f"TCP left the box by {worst * 1000:.1f} mm"
    angles = [tf.quat_angle(DOWN, q) for q in measured[:, 3:]]
    assert max(angles) < SAFETY.orientation_cone_rad + 0.05


def test_random_and_huge_actions_keep_the_tcp_in_the_box(setup):
    world, robot = setup
    rng = np.random.default_rng(0)
    n = 60
    actions = rng.uniform(-1, 1, size=(n, ACTIONS.action_dim))
    actions[::3] *= 1e6  # huge (clipped to [-1, 1] then clamped to 2 cm)
    actions[10:25, :6] = [1.0, 1.0, 1.0, 0, 0, 0]  # push hard into one corner...
    actions[25:40, :6] = [-1.0, -1.0, -1.0, 0, 0, 0]  # ...then the opposite one
    measured, rejected = _run(world, robot, actions, rng)
    assert rejected == 0
    _assert_inside(measured)
    # the arm did reach the walls (the test exercised the clamp, not just the middle of the box)
    span = measured[:, :3].max(axis=0) - measured[:, :3].min(axis=0)
    assert np.all(span > 0.5 * (np.array(SAFETY.workspace_max) - SAFETY.workspace_min))


def test_nan_and_inf_actions_are_rejected_and_the_arm_holds(setup):
    world, robot = setup
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, size=(30, ACTIONS.action_dim))
    actions[5::2, rng.integers(ACTIONS.action_dim)] = np.nan
    actions[6::4, 0] = np.inf
    expected_rejections = int(np.sum(~np.all(np.isfinite(actions), axis=1)))
    assert expected_rejections >= 15
    measured, rejected = _run(world, robot, actions, rng)
    assert rejected == expected_rejections
    _assert_inside(measured)
    assert np.all(np.isfinite(measured))
    assert robot.read_state().error is None
