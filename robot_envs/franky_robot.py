"""FrankyRobot: a Franka arm (real, or franky-sim) driven through franky.

Control: ``command_pose`` starts an asynchronous absolute ``CartesianMotion`` toward the target
(franky's trajectory generator, limited by ``relative_dynamics_factor``); the next call replaces it
seamlessly, so a 10-20 Hz policy streams targets without stopping the arm. ``move_to`` blocks.
Errors raised by franky (reflexes, control/network exceptions) are kept with their original message:
``read_state().error`` reports them, ``command_pose`` / ``move_to`` raise ``RobotError``, and
``recover()`` clears them (reconnecting when the connection itself broke) within a retry budget.

Frames/units: TCP pose (7,) [x,y,z,qx,qy,qz,qw] in the base frame [m]; gripper width [m].
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from robot_envs import transforms as tf
from robot_envs.robot import Robot, RobotError, RobotState

logger = logging.getLogger(__name__)

_CONTROLLER_MODES = ("joint_impedance", "cartesian_impedance")
_PREEMPTED_MESSAGE = "Move command preempted"  # libfranka's message when stop() ends a running motion
_STOP_JOIN_TIMEOUT_S = 2.0  # wall time stop() waits for the stopped motion to end [s]


@contextlib.contextmanager
def _keep_thread_scheduling() -> Iterator[None]:
    """Restore the calling thread's scheduling policy and priority after the block.

    libfranka's Robot constructor switches the calling thread to SCHED_FIFO at the highest priority
    whenever it is allowed to (root, or an rtprio limit), with ``RealtimeConfig.Ignore`` too. That
    thread is the caller's: a Python main thread doing rendering, ROS callbacks or learner updates,
    and every thread it starts later (franky's motion threads, llvmpipe's render workers) inherits
    the policy. Seen here: with ``ignore_realtime`` (franky-sim) such Python threads at FIFO 99
    starved every normal process on a 2-core machine (other processes' franky-sim physics stalled,
    reset moves of a concurrent ROS graph timed out). Used only with ``ignore_realtime``.
    """
    if not hasattr(os, "sched_getscheduler"):  # not Linux
        yield
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) != (policy, param.sched_priority):
            try:
                os.sched_setscheduler(0, policy, param)
            except OSError as exc:  # cannot happen when lowering one's own priority; keep going if it does
                logger.warning("could not restore the thread's scheduling policy after connecting: %s", exc)


@dataclass
class FrankyRobotConfig:
    """Connection and control settings of a Franka arm driven by franky."""

    hostname: str = "172.16.0.2"  # FCI address of the robot (franky-sim: SimWorld.hostname)
    relative_dynamics_factor: float = 0.15  # fraction (0, 1] of max velocity/acceleration/jerk for command_pose
    move_to_dynamics_factor: float = 0.1  # fraction (0, 1] used by the blocking move_to (resets)
    # internal controller of position motions: joint_impedance | cartesian_impedance
    controller_mode: str = "joint_impedance"
    # True on kernels without PREEMPT_RT and for franky-sim (then no thread runs at RT priority)
    ignore_realtime: bool = False
    torque_thresholds: tuple[float, ...] = (20.0,) * 7  # collision reflex thresholds per joint [Nm]
    force_thresholds: tuple[float, ...] = (30.0,) * 6  # collision reflex thresholds on the TCP [N, Nm]
    gripper_enabled: bool = True  # connect to and command the Franka Hand
    gripper_speed: float = 0.1  # finger speed [m/s]
    gripper_force: float = 20.0  # grasp force when closing [N]
    gripper_min_change: float = 0.005  # only send a gripper command when the width request moves by more [m]
    min_target_change_m: float = 1e-4  # command_pose re-plans only when the target moves by more than this [m] ...
    # ... or turns by more than this [rad] (re-planning a no-op can fail in franky's planner, -111)
    min_target_change_rad: float = 1e-3
    grasp_on_close: bool = True  # closing uses grasp (applies force on an object) instead of move
    recovery_attempts: int = 3  # recover(): attempts before giving up
    recovery_delay_s: float = 0.5  # recover(): wait between attempts [s]

    def __post_init__(self) -> None:
        if not self.hostname:
            raise ValueError("hostname must be the robot's FCI address (e.g. from the robot YAML)")
        for name in ("relative_dynamics_factor", "move_to_dynamics_factor"):
            v = float(getattr(self, name))
            if not (0 < v <= 1):
                raise ValueError(f"{name} must be in (0, 1], got {v}")
        if self.controller_mode not in _CONTROLLER_MODES:
            raise ValueError(f"controller_mode must be one of {_CONTROLLER_MODES}, got {self.controller_mode!r}")
        self.torque_thresholds = _positive(self.torque_thresholds, 7, "torque_thresholds")
        self.force_thresholds = _positive(self.force_thresholds, 6, "force_thresholds")
        for name in ("gripper_speed", "gripper_force"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not (self.min_target_change_m >= 0 and self.min_target_change_rad >= 0):
            raise ValueError(f"min_target_change_m/_rad must be >= 0, got {self.min_target_change_m}, "
                             f"{self.min_target_change_rad}")
        if self.gripper_min_change < 0:
            raise ValueError(f"gripper_min_change must be >= 0, got {self.gripper_min_change}")
        if int(self.recovery_attempts) < 1 or self.recovery_delay_s < 0:
            raise ValueError(f"need recovery_attempts >= 1 and recovery_delay_s >= 0, got "
                             f"{self.recovery_attempts}, {self.recovery_delay_s}")


def _positive(values, n: int, name: str) -> tuple[float, ...]:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be {n} finite values > 0, got {values}")
    return tuple(arr.tolist())


def _import_franky():
    try:
        import franky
    except ImportError as e:  # pragma: no cover - franky is a declared dependency
        raise RobotError(f"franky is not installed ({e}); pip install franky-control") from e
    return franky


def _franky_errors(franky) -> tuple[type, ...]:
    """Every exception type franky raises (its own classes plus RuntimeError from the bindings)."""
    found = [v for v in vars(franky).values() if isinstance(v, type) and issubclass(v, BaseException)]
    return tuple(found) + (RuntimeError,)


class FrankyRobot(Robot):
    """A Franka arm + Franka Hand through franky (see module docstring).

    Not thread-safe: call it from one thread (e.g. one ROS callback group / executor thread).
    """

    def __init__(self, cfg: FrankyRobotConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else FrankyRobotConfig()
        self._franky = None
        self._errors: tuple[type, ...] = ()
        self._robot = None
        self._gripper = None
        self._error: str | None = None
        self._last_state: RobotState | None = None
        self._gripper_target: float | None = None
        self._gripper_future = None
        self._gripper_width = 0.0
        self._gripper_pending: float | None = None
        self._stops = 0  # stop() calls so far: a move_to running meanwhile ends with an error, not "reached"
        self._streamed_target: np.ndarray | None = None  # (7,) target of the running command_pose motion
        self._connected = False

    # -- connection -------------------------------------------------------------------------------
    def connect(self) -> None:
        """Connect to arm and hand; RobotError naming the address when unreachable."""
        self._franky = franky = _import_franky()
        self._errors = _franky_errors(franky)
        self._robot = self._open_robot()
        if self.cfg.gripper_enabled:
            try:
                self._gripper = franky.Gripper(self.cfg.hostname)
                self._gripper_width = float(self._gripper.width)
            except self._errors as e:
                self._robot = None
                raise RobotError(f"could not connect to the Franka Hand at {self.cfg.hostname}: {e} "
                                 "(set gripper_enabled=False for an arm without a hand)") from e
        self._error = None
        self._connected = True

    def _open_robot(self):
        franky = self._franky
        mode = (franky.ControllerMode.JointImpedance if self.cfg.controller_mode == "joint_impedance"
                else franky.ControllerMode.CartesianImpedance)
        rt = franky.RealtimeConfig.Ignore if self.cfg.ignore_realtime else franky.RealtimeConfig.Enforce
        try:
            # Enforce (real arm, PREEMPT_RT kernel): keep libfranka's FIFO priority, which franky's motion
            # threads inherit from this thread. Ignore (franky-sim, no RT kernel): no RT thread at all.
            keep = _keep_thread_scheduling() if self.cfg.ignore_realtime else contextlib.nullcontext()
            with keep:
                robot = franky.Robot(self.cfg.hostname, controller_mode=mode, realtime_config=rt)
            robot.relative_dynamics_factor = self.cfg.relative_dynamics_factor
            robot.set_collision_behavior(list(self.cfg.torque_thresholds), list(self.cfg.force_thresholds))
        except self._errors as e:
            hint = (" (no PREEMPT_RT kernel? set ignore_realtime=True)" if "realtime" in str(e).lower()
                    else " (is the robot on, FCI enabled, and the address right?)")
            raise RobotError(f"could not connect to the Franka at {self.cfg.hostname}: {e}{hint}") from e
        return robot

    def close(self) -> None:
        if self._robot is not None:
            try:
                self._robot.stop()
            except self._errors as e:  # closing anyway; say why the stop failed
                logger.warning("stopping the robot on close failed: %s", e)
        if self._gripper_future is not None and not self._gripper_future.wait(5.0):
            logger.warning("the last gripper command did not finish within 5 s of close()")
        self._robot = None
        self._streamed_target = None
        self._gripper = None
        self._gripper_future = None
        self._gripper_pending = None
        self._connected = False

    def _require(self):
        if not self._connected:
            raise RobotError("FrankyRobot is not connected (use it as a context manager or call connect())")
        if self._robot is None:
            raise RobotError(f"connection to {self.cfg.hostname} lost, call recover(): {self._error}")
        return self._robot

    # -- state ------------------------------------------------------------------------------------
    def read_state(self) -> RobotState:
        """Current state; a franky error (also from a running asynchronous motion) sets ``error``.

        When the connection is lost the last known pose is returned with ``error`` set and
        ``extras["stale"] = True``.
        """
        if self._connected and self._robot is None and self._last_state is not None:
            return self._stale_state()
        robot = self._require()
        try:
            robot.poll_motion()  # surfaces exceptions of the asynchronous motion
        except self._errors as e:
            self._set_error(e)
        try:
            s = robot.state
            pose = np.concatenate([np.asarray(s.O_T_EE.translation, dtype=np.float64).reshape(3),
                                   np.asarray(s.O_T_EE.quaternion, dtype=np.float64).reshape(4)])
            state = RobotState(
                stamp=time.monotonic(), ee_pose=pose,
                joint_positions=np.asarray(s.q, dtype=np.float64),
                gripper_width=self._read_gripper_width(),
                external_wrench=np.asarray(s.O_F_ext_hat_K, dtype=np.float64),
                error=self._error, extras={"robot_time_s": float(s.time.to_sec())})
            if robot.has_errors and self._error is None:
                self._error = f"robot reports errors: {s.current_errors}"
                state.error = self._error
        except self._errors as e:
            self._set_error(e)
            if self._last_state is None:
                raise RobotError(f"cannot read the robot state: {e}") from e
            return self._stale_state()
        self._last_state = state
        return state

    def _stale_state(self) -> RobotState:
        last = self._last_state
        return RobotState(stamp=time.monotonic(), ee_pose=last.ee_pose, joint_positions=last.joint_positions,
                          gripper_width=last.gripper_width, external_wrench=None, error=self._error,
                          extras={"stale": True})

    def _read_gripper_width(self) -> float:
        if self._gripper is None:
            return 0.0
        try:
            self._pump_gripper()
            self._gripper_width = float(self._gripper.width)
        except self._errors as e:
            self._set_error(e, "gripper")
        return self._gripper_width

    def _set_error(self, exc: BaseException, where: str = "robot") -> None:
        msg = f"{where}: {type(exc).__name__}: {exc}"
        self._streamed_target = None
        logger.error("franky error: %s", msg)
        if self._error is None:  # keep the first (causal) error until recover() clears it
            self._error = msg

    # -- commands ---------------------------------------------------------------------------------
    def _motion(self, pose: np.ndarray, factor: float, hold: bool):
        franky = self._franky
        target = franky.Affine(pose[:3], pose[3:])
        return franky.CartesianMotion(target, franky.ReferenceType.Absolute,
                                      relative_dynamics_factor=factor, return_when_finished=not hold)

    def command_pose(self, target_pose, gripper_width: float | None = None) -> None:
        """Stream a target (non-blocking). See ``Robot.command_pose``."""
        robot = self._require()
        pose = tf.as_pose(target_pose, "target_pose")
        if self._error is not None:
            raise RobotError(f"robot is in error, call recover() first: {self._error}")
        if not self._same_target(pose):  # the running motion already holds an (almost) equal target
            self._streamed_target = None
            try:
                robot.move(self._motion(pose, self.cfg.relative_dynamics_factor, hold=True), asynchronous=True)
            except self._errors as e:
                self._set_error(e)
                raise RobotError(f"command_pose failed: {self._error}") from e
            self._streamed_target = pose
        if gripper_width is not None:
            self._command_gripper(float(gripper_width))

    def _same_target(self, pose: np.ndarray) -> bool:
        last = self._streamed_target
        return (last is not None
                and float(np.linalg.norm(pose[:3] - last[:3])) <= self.cfg.min_target_change_m
                and tf.quat_angle(pose[3:], last[3:]) <= self.cfg.min_target_change_rad)

    def _command_gripper(self, width: float) -> None:
        """Request a width; sent now if the hand is idle, else as soon as its command finishes.

        The Franka Hand runs one command at a time (and a franky gripper future blocks when
        dropped before it finishes), so requests never overlap: the newest one waits.
        """
        if self._gripper is None:
            return
        if not np.isfinite(width):
            raise ValueError(f"gripper width must be finite, got {width}")
        if self._gripper_target is not None and abs(width - self._gripper_target) <= self.cfg.gripper_min_change:
            self._gripper_pending = None
            return
        self._gripper_pending = width
        self._pump_gripper()

    def _gripper_busy(self) -> bool:
        if self._gripper_future is None:
            return False
        if not self._gripper_future.wait(0.0):
            return True
        try:
            self._gripper_future.get()  # False only means "width not reached" (e.g. blocked): not an error
        except self._errors as e:
            self._set_error(e, "gripper")
        self._gripper_future = None
        return False

    def _pump_gripper(self) -> None:
        if self._gripper is None or self._gripper_pending is None or self._gripper_busy():
            return
        width, self._gripper_pending = self._gripper_pending, None
        closing = width < self._gripper_width - self.cfg.gripper_min_change
        try:
            if closing and self.cfg.grasp_on_close:
                # accept any final width: the fingers stop on the object and keep the force
                self._gripper_future = self._gripper.grasp_async(width, self.cfg.gripper_speed, self.cfg.gripper_force,
                                                                 epsilon_inner=1.0, epsilon_outer=1.0)
            else:
                self._gripper_future = self._gripper.move_async(width, self.cfg.gripper_speed)
        except self._errors as e:
            self._set_error(e, "gripper")
            raise RobotError(f"gripper command failed: {self._error}") from e
        self._gripper_target = width

    def move_to(self, pose, timeout_s: float) -> None:
        """Blocking absolute move at ``move_to_dynamics_factor``; RobotError on error or timeout."""
        robot = self._require()
        target = tf.as_pose(pose, "pose")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if self._error is not None:
            raise RobotError(f"robot is in error, call recover() first: {self._error}")
        self._streamed_target = None
        stops = self._stops
        try:
            robot.move(self._motion(target, self.cfg.move_to_dynamics_factor, hold=False), asynchronous=True)
            finished = robot.join_motion(float(timeout_s))
        except self._errors as e:
            if self._stops != stops and self._is_preemption(e):
                raise RobotError("move_to was stopped (stop() from another thread) before reaching its pose") from e
            self._set_error(e)
            raise RobotError(f"move_to failed: {self._error}") from e
        if finished and self._stops != stops:  # franky ends a preempted motion as finished
            raise RobotError(f"move_to was stopped (stop() from another thread) before reaching "
                             f"{np.round(target, 4).tolist()}")
        if not finished:
            msg = f"move_to did not reach {np.round(target, 4).tolist()} within {timeout_s} s"
            try:
                self.stop()
            except RobotError as e:
                raise RobotError(f"{msg}; stopping the arm afterwards failed too: {e}") from e
            raise RobotError(f"{msg} (stopped)")

    def stop(self) -> None:
        """Stop the running motion; the arm holds where it is.

        Stopping a motion makes franky end it with ``ControlException("... Move command
        preempted!")``: that is the expected outcome of our own stop, not an error. Any other
        franky error is recorded (``read_state().error``) and raised as RobotError.
        """
        robot = self._require()
        self._streamed_target = None
        self._stops += 1  # a move_to blocked in another thread learns that it was stopped
        try:
            robot.stop()
            if not robot.join_motion(_STOP_JOIN_TIMEOUT_S):
                logger.warning("the stopped motion did not end within %.1f s", _STOP_JOIN_TIMEOUT_S)
        except self._errors as e:
            if self._is_preemption(e):
                logger.debug("stop(): the running motion was preempted as requested (%s)", e)
                return
            self._set_error(e)
            raise RobotError(f"stop failed: {self._error}") from e

    def _is_preemption(self, exc: BaseException) -> bool:
        """True only for franky's report that a running motion was preempted (by stop())."""
        control_exception = getattr(self._franky, "ControlException", None)
        return (control_exception is not None and isinstance(exc, control_exception)
                and _PREEMPTED_MESSAGE in str(exc))

    def recover(self) -> bool:
        """Clear errors: franky automatic error recovery, reconnecting if the connection broke.

        Returns True when recovered; raises RobotError after ``recovery_attempts`` failed attempts.
        """
        if not self._connected:
            raise RobotError("FrankyRobot is not connected (call connect() first)")
        last = None
        for attempt in range(1, int(self.cfg.recovery_attempts) + 1):
            try:
                self._recover_once()
                logger.info("robot recovered (attempt %d)", attempt)
                return True
            except (RobotError, *self._errors) as e:
                last = e
                logger.warning("recovery attempt %d/%d failed: %s", attempt, self.cfg.recovery_attempts, e)
                time.sleep(self.cfg.recovery_delay_s)
        raise RobotError(f"recovery failed after {self.cfg.recovery_attempts} attempts; last error: {last}; "
                         f"original error: {self._error}")

    def _recover_once(self) -> None:
        robot = self._robot
        broken = robot is None
        if not broken:
            try:
                robot.stop()
                robot.has_errors  # raises when the connection is broken
            except self._errors as e:
                logger.warning("connection unusable (%s), reconnecting to %s", e, self.cfg.hostname)
                broken = True
        if broken:
            self._robot = None  # a half-dead connection is never reused
            self._robot = robot = self._open_robot()
        if not robot.recover_from_errors():
            raise RobotError("franky recover_from_errors() returned False")
        if robot.has_errors:
            raise RobotError(f"robot still reports errors: {robot.state.current_errors}")
        if self._gripper is not None:
            self._gripper_width = float(self._gripper.width)
        self._gripper_target = None
        self._streamed_target = None
        self._error = None
