"""Shared pieces of the MENTOR nodes: process main, task loading, robot-state assembly."""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import Callable

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from . import wire
from .wire import DONE, ENDED, RESETTING, RUNNING, WAITING_FOR_HUMAN  # noqa: F401  (episode phases, re-exported)

#: joint names of the FR3 arm on robot/joint_states (followed by the gripper finger joint)
ARM_JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
FINGER_JOINT = "fr3_finger_joint1"


class RepeatThrottle:
    """Log a repeated error once per ``period_s`` per kind, with the count of the ones held back.

    The kind of a message is its text with numbers and bracketed values blanked, so "NaN/inf: [nan, 0]"
    and "NaN/inf: [inf, 1]" are one kind, "2 values, expected 3" another. ``log(text)`` returns True when
    it logged. ``clock`` returns seconds (monotonic by default).
    """

    _VARIABLE = re.compile(r"\[[^\]]*\]|[-+]?\d[\d.e+-]*")

    def __init__(self, log: Callable[[str], None], period_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self._log, self._period, self._clock = log, float(period_s), clock
        self._last: dict[str, float] = {}  # kind -> time it was last logged
        self._held: dict[str, int] = {}  # kind -> messages held back since

    def kind(self, text: str) -> str:
        return self._VARIABLE.sub("#", text)

    def log(self, text: str) -> bool:
        kind, now = self.kind(text), self._clock()
        previous = self._last.get(kind)
        if previous is not None and now - previous < self._period:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        held = self._held.pop(kind, 0)
        self._last[kind] = now
        self._log(text + (f" ({held} more like it in the {now - previous:.1f} s before)" if held else ""))
        return True


def log_function(logger, severity: str) -> Callable[[str], None]:
    """``text -> logger.<severity>(text)`` with a call site of its own per severity (for RepeatThrottle).

    rclpy remembers the severity of each call site (the caller's file and line) and raises "Logger severity
    cannot be changed between calls" when one site logs at another: two RepeatThrottles given the bound
    methods ``logger.warning`` and ``logger.error`` share the call inside :meth:`RepeatThrottle.log`."""
    if severity == "info":
        return lambda text: logger.info(text)
    if severity == "warning":
        return lambda text: logger.warning(text)
    if severity == "error":
        return lambda text: logger.error(text)
    raise ValueError(f"severity must be info, warning or error, got {severity!r}")


def set_torch_threads(threads: int) -> None:
    """Limit torch's intra-op CPU threads of this process (0 keeps torch's default).

    Nodes share the robot PC's cores with the physics/driver and each other; measured on a busy 2-core
    machine, one thread made a tiny-network update ~10x and an act() ~30x faster than two spinning ones.
    """
    if threads < 0:
        raise ValueError(f"torch_threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def set_thread_realtime(priority: int) -> None:
    """Run the calling thread (only it, and threads it starts later) at SCHED_FIFO ``priority`` (1-99).

    For the thread that ticks the control loop on a robot PC (PREEMPT_RT kernel, as libfranka wants):
    the learner, logging and decoding then never delay a tick. Raises RuntimeError with the fix when
    the process may not do it.
    """
    if not 1 <= priority <= 99:
        raise ValueError(f"realtime priority must be in 1..99, got {priority}")
    if not hasattr(os, "sched_setscheduler"):
        raise RuntimeError("realtime_priority needs Linux (SCHED_FIFO); set it to 0 on this system")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as exc:
        raise RuntimeError(f"cannot run at SCHED_FIFO {priority} ({exc}): run as root, give the process "
                           "CAP_SYS_NICE, or allow it in /etc/security/limits.conf (e.g. '@realtime - rtprio 99'), "
                           "or set realtime_priority to 0") from None


def drop_realtime() -> None:
    """Return the calling thread to normal (SCHED_OTHER) scheduling; a no-op when it already is."""
    if hasattr(os, "sched_getscheduler") and os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """rclpy main: init, build the node, spin it, clean shutdown.

    The executor model of every MENTOR node: one ``SingleThreadedExecutor`` runs all of a node's
    callbacks one after another, in arrival order, so callbacks need no callback groups; blocking or
    long work lives on the node's own threads (the policy's control and weight-decoding threads, the
    learner's trainer, the robot node's guard node for stop and state during a reset move). rclpy's
    MultiThreadedExecutor is not used: it re-submits queued-but-not-started callbacks on every spin once
    its pool is saturated (slow franky calls on a loaded CPU), which grew into a CPU-bound spin that
    starved franky-sim and the control loop (seen on the robot node at load ~20).

    On Ctrl-C / SIGINT / external shutdown the node's ``shutdown()`` (if any) runs before the
    node is destroyed (checkpoints, outbox flush). Returns the process exit code; a node may set
    ``node.exit_code`` and ``node.exit_requested`` to finish on its own.
    """
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    code = 0
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and not getattr(node, "exit_requested", False):
            _spin_once(executor)
        code = getattr(node, "exit_code", 0)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            shutdown = getattr(node, "shutdown", None)
            if shutdown is not None:
                shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return code


def _spin_once(executor) -> None:
    """One executor step; an error raised because SIGINT/SIGTERM shut the context down mid-step is a stop.

    rclpy can fail inside ``take_message`` when the signal handler invalidates the context while a
    message is being taken (seen as "Unable to convert call argument" at the end of a deploy run). That
    is the requested shutdown, not a node failure: the node's ``shutdown()`` still runs and the exit code
    stays 0. With the context still valid, the error is real and propagates.
    """
    try:
        executor.spin_once(timeout_sec=0.2)
    except Exception:
        if rclpy.ok():
            raise
        raise ExternalShutdownException() from None


def load_task(name: str, task_config: str = ""):
    """The robot_envs task ``name``, optionally overridden by a user YAML file ``task_config``."""
    from robot_envs.tasks import get_task

    return get_task(name, task_config or None)


class StateAssembler:
    """Rebuilds a robot_envs ``RobotState`` from robot/current_pose, robot/joint_states, robot/wrench."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pose: np.ndarray | None = None
        self._joints = np.zeros(7)
        self._width = 0.0
        self._wrench: np.ndarray | None = None
        self._stamp = 0.0
        self._received = -1.0  # monotonic receive time of the last pose

    def on_pose(self, msg) -> None:
        with self._lock:
            self._pose = wire.msg_to_pose(msg)
            self._stamp = wire.seconds_from_stamp(msg.header.stamp)
            self._received = time.monotonic()

    def on_joints(self, msg) -> None:
        pos = dict(zip(msg.name, msg.position))
        with self._lock:
            if all(j in pos for j in ARM_JOINTS):
                self._joints = np.array([pos[j] for j in ARM_JOINTS])
            self._width = 2.0 * float(pos.get(FINGER_JOINT, self._width / 2.0))

    def on_wrench(self, msg) -> None:
        f, t = msg.wrench.force, msg.wrench.torque
        with self._lock:
            self._wrench = np.array([f.x, f.y, f.z, t.x, t.y, t.z])

    def age(self) -> float:
        """Seconds since the last pose arrived (inf if none yet)."""
        return float("inf") if self._received < 0 else time.monotonic() - self._received

    def state(self):
        """The latest RobotState, or None before the first pose."""
        from robot_envs.robot import RobotState

        with self._lock:
            if self._pose is None:
                return None
            return RobotState(stamp=self._stamp, ee_pose=self._pose.copy(), joint_positions=self._joints.copy(),
                              gripper_width=self._width, external_wrench=None if self._wrench is None
                              else self._wrench.copy(), error=None)
