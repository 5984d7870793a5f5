"""Test doubles for the hardware interfaces (``robot_envs.robot.Robot``, ``robot_envs.camera.Camera``,
``robot_envs.clock.Clock``): the real robot and camera classes cannot exist here; these implement the same
interfaces in memory, so the logic above them (the plain env, the robot node's arm controller) gets unit
tests. Backend tests run the real franky client against franky-sim instead."""
from __future__ import annotations

import threading

import numpy as np

from robot_envs.camera import Camera, Frame
from robot_envs.clock import Clock
from robot_envs.robot import Robot, RobotError, RobotState

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # TCP pointing down (xyzw)


class FakeClock(Clock):
    """Time that moves only when slept on or advanced [s]."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, float(t))

    def advance(self, dt: float) -> None:
        self.t += dt


class FakeRobot(Robot):
    """A TCP that goes wherever it is commanded (instantly); records every call.

    ``error``: an error to report in the state until ``recover()``; ``fail_commands``: command_pose raises;
    ``recover_ok``: what recover() returns; ``block_moves``: move_to waits until stop() (a long reset move).
    """

    def __init__(self, pose=(0.45, 0.0, 0.25)) -> None:
        self.pose = np.concatenate([np.asarray(pose, float), DOWN])
        self.width = 0.04
        self.commands: list[tuple[np.ndarray, float | None]] = []
        self.moves: list[np.ndarray] = []
        self.error: str | None = None
        self.fail_commands = False
        self.recover_ok = True
        self.recovers = self.stops = 0
        self.block_moves = False
        self.fail_moves = 0  # the next this many move_to calls fail (a reflex: the arm is blocked)
        self.moving = threading.Event()
        self._stopped = threading.Event()
        self.closed = False

    def connect(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def read_state(self) -> RobotState:
        return RobotState(stamp=0.0, ee_pose=self.pose.copy(), joint_positions=np.zeros(7),
                          gripper_width=self.width, error=self.error)

    def command_pose(self, target_pose, gripper_width=None) -> None:
        if self.fail_commands:
            raise RobotError("command rejected (fake)")
        self.commands.append((np.asarray(target_pose, float).copy(), gripper_width))
        self.pose = np.asarray(target_pose, float).copy()
        if gripper_width is not None:
            self.width = float(gripper_width)

    def move_to(self, pose, timeout_s: float) -> None:
        self.moves.append(np.asarray(pose, float).copy())
        if self.fail_moves:
            self.fail_moves -= 1
            raise RobotError("move_to failed: cartesian reflex (fake)")
        if self.block_moves:
            self._stopped.clear()
            self.moving.set()
            if self._stopped.wait(timeout_s):
                raise RobotError("stopped")
        self.pose = np.asarray(pose, float).copy()

    def recover(self) -> bool:
        self.recovers += 1
        if self.recover_ok:
            self.error = None
        return self.recover_ok

    def stop(self) -> None:
        self.stops += 1
        self._stopped.set()


class FakeCamera(Camera):
    """Frames of one colour (``level``), ``(H, W)`` as given; ``read`` counts."""

    def __init__(self, name: str = "front", hw=(96, 128), level: int = 100) -> None:
        self.name, self.hw, self.level, self.seq, self.is_open = name, tuple(hw), level, 0, False

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def read(self, timeout_s: float = 1.0) -> Frame:
        self.seq += 1
        return Frame(np.full((*self.hw, 3), self.level, np.uint8), float(self.seq), self.seq, self.name)
