"""RobotEnv over a fake robot and fake cameras: observation assembly, the safe command path, the episode
horizon, a robot error truncating the episode, and a recovery before the next reset."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from fakes import FakeCamera, FakeClock, FakeRobot

from robot_envs.env import EnvConfig, RobotEnv
from robot_envs.robot import RobotError
from robot_envs.tasks.base import Task, TaskConfig


@dataclass
class _LineConfig(TaskConfig):
    goal_x: float = 0.5  # success when the TCP is past this x [m]


class _LineTask(Task):
    """A real-robot style task (no sim world): reward 1 and success once the TCP is past goal_x."""

    config_cls = _LineConfig

    def reward(self, ctx):
        ok = bool(ctx.robot_state.ee_pose[0] > self.cfg.goal_x)
        return float(ok), ok


def _env(robot=None, episode_length=5):
    cfg = _LineConfig(name="line", episode_length=episode_length, cameras=("front", "wrist"), reset_noise_xy=0.0)
    cams = [FakeCamera("front", (96, 128), 50), FakeCamera("wrist", (84, 84), 200)]
    return RobotEnv(robot or FakeRobot(), cams, _LineTask(cfg), FakeClock(), config=EnvConfig(settle_s=0.0))


def test_observations_stack_every_camera_at_the_policy_size():
    env = _env()
    obs = env.reset()
    assert obs["image"].shape == (6, 84, 84) and obs["image"].dtype == np.uint8
    assert int(obs["image"][:3].mean()) == 50 and int(obs["image"][3:].mean()) == 200  # camera order kept
    assert obs["proprio"].shape == (env.spec.proprio_dim,) and env.spec.frame_channels == 6


def test_steps_go_through_the_safety_layer_and_the_horizon_truncates():
    robot = FakeRobot()
    env = _env(robot)
    env.reset()
    hi = np.asarray(env.task.cfg.safety.workspace_max)
    rewards, info, truncated = [], {}, False
    for _ in range(5):
        _obs, r, terminated, truncated, info = env.step(np.ones(3))
        rewards.append(r)
        assert np.all(robot.pose[:3] <= hi + 1e-9) and not terminated
    assert truncated and info["t"] == 5 and rewards[-1] == 1.0 and info["success"]
    with pytest.raises(ValueError):
        env.step(np.array([np.nan, 0.0, 0.0]))


def test_a_rejected_command_truncates_and_the_next_reset_recovers():
    robot = FakeRobot()
    env = _env(robot, episode_length=50)
    env.reset()
    robot.fail_commands = True
    _obs, _r, _term, truncated, info = env.step(np.zeros(3))
    assert truncated and "rejected" in info["robot_error"]
    robot.fail_commands, robot.error = False, "reflex"
    env.reset()
    assert robot.recovers == 1 and robot.error is None


def test_a_reset_move_that_hits_a_reflex_is_recovered_and_retried():
    """A peg jammed in its hole once made the reset move fail and ended a whole benchmark run."""
    robot = FakeRobot()
    env = _env(robot)
    robot.fail_moves = 2
    env.reset()
    assert robot.recovers == 2 and len(robot.moves) == 3
    robot.fail_moves = 3
    with pytest.raises(RobotError, match="reset move failed 3 times"):
        env.reset()
