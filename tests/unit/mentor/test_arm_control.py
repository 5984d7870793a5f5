"""mentor.arm_control with a fake robot: teleop priority, the workspace, hold, watchdog, recovery, reset, stop."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from fakes import FakeClock, FakeRobot

from mentor.arm_control import ArmControlConfig, ArmController
from robot_envs.tasks import get_task


def _arm(robot=None, **cfg):
    clock = FakeClock()
    robot = robot or FakeRobot()
    arm = ArmController(robot, get_task("reach"), ArmControlConfig(**cfg), np.random.default_rng(0), clock=clock.now)
    return arm, robot, clock


def test_no_action_ever_leaves_the_workspace():
    arm, robot, _ = _arm()
    lo, hi = (np.asarray(v) for v in (arm.task.cfg.safety.workspace_min, arm.task.cfg.safety.workspace_max))
    rng = np.random.default_rng(1)
    for action in [np.full(3, 50.0), np.full(3, -1e6), *rng.uniform(-3, 3, (200, 3))]:
        arm.on_action(action, teleop=False)
        assert np.all(robot.pose[:3] >= lo - 1e-9) and np.all(robot.pose[:3] <= hi + 1e-9)
    assert arm.counts["clipped"] > 0 and arm.counts["clamped"] > 0 and arm.counts["commands"] == 202


def test_teleop_has_priority_until_it_goes_stale():
    arm, robot, clock = _arm(teleop_timeout_s=0.3)
    assert arm.on_action(np.array([1.0, 0, 0]), teleop=True)
    assert not arm.on_action(np.array([-1.0, 0, 0]), teleop=False)  # the operator has the arm
    clock.advance(0.31)
    assert arm.on_action(np.array([-1.0, 0, 0]), teleop=False)
    assert len(robot.commands) == 2


def test_watchdog_and_rejected_actions_hold_the_arm():
    arm, robot, clock = _arm(watchdog_timeout_s=0.5)
    arm.on_action(np.array([0.5, 0, 0]), teleop=False)
    clock.advance(0.4)
    assert not arm.watchdog() and not arm.holding
    clock.advance(0.2)
    assert arm.watchdog() and arm.holding and arm.counts["watchdog_stops"] == 1
    held = robot.commands[-1][0]
    np.testing.assert_allclose(held, robot.pose)  # held where it is
    assert not arm.watchdog()  # already holding
    arm.on_action(np.array([0.5, 0, 0]), teleop=False)
    n = len(robot.commands)
    arm.reject()
    assert arm.holding and arm.counts["rejected"] == 1 and len(robot.commands) == n + 1


def test_a_robot_error_is_recovered_and_the_arm_holds():
    arm, robot, _ = _arm()
    robot.error = "cartesian reflex"
    assert not arm.on_action(np.array([0.5, 0, 0]), teleop=False)
    assert robot.recovers == 1 and arm.holding and arm.last_error == "cartesian reflex" and arm.counts["errors"] == 1
    assert arm.on_action(np.array([0.5, 0, 0]), teleop=False)  # recovered: commands flow again
    robot.fail_commands, robot.recover_ok = True, False
    assert not arm.on_action(np.array([0.5, 0, 0]), teleop=False) and robot.recovers == 2
    assert arm.recover() == (False, "recovery failed")


def test_stop_preempts_a_reset_and_actions_are_ignored_while_it_runs():
    robot = FakeRobot()
    robot.block_moves = True
    arm, _, _ = _arm(robot, reset_timeout_s=30.0)
    result = {}
    mover = threading.Thread(target=lambda: result.update(reset=arm.reset()))
    mover.start()
    assert robot.moving.wait(10)
    assert arm.busy and not arm.on_action(np.array([1.0, 0, 0]), teleop=True)
    assert arm.stop() == "stopped (the running reset move was preempted)"
    mover.join(10)
    assert result["reset"] == (False, "reset failed: stopped") and not arm.busy and robot.stops == 1
    robot.block_moves = False
    ok, message = arm.reset()
    assert ok and message.startswith("at reset pose") and arm.stop() == "stopped"


def test_config_validation():
    with pytest.raises(ValueError, match="watchdog_timeout_s"):
        ArmControlConfig(watchdog_timeout_s=0)
