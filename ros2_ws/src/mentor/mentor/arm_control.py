"""What the robot node decides, without ROS: which action drives the arm, holding, the watchdog, recovery,
reset moves and stop.

Pure Python over the ``robot_envs.robot.Robot`` interface (the real arm, franky-sim, or a test fake).
- A fresh teleop action (``teleop_timeout_s``) has priority: policy actions are ignored meanwhile.
- Every command goes through ``robot_envs.command.safe_command`` (the one action -> safe command path),
  so the arm is never commanded outside the task's workspace; values outside [-1, 1] are clipped.
- A rejected action (NaN/inf, wrong length: the node's message check) holds the arm.
- :meth:`watchdog`: no accepted action for ``watchdog_timeout_s`` -> hold (the arm's current pose).
- A robot error (in the state or raised by a command) -> bounded recovery, then hold.
- :meth:`reset` moves to the task's reset pose (blocking: the node calls it off its state thread);
  actions are ignored while it runs; :meth:`stop` (any thread) preempts it, and the reset fails.
One lock serialises every robot call except the reset move itself, so state reads go on during it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from robot_envs.command import safe_command
from robot_envs.robot import RobotError, RobotState
from robot_envs.safety import SafetyLayer


@dataclass
class ArmControlConfig:
    """Timing of the arm controller (validated on construction)."""

    watchdog_timeout_s: float = 0.5  # hold the arm when no action was accepted for this long [s]
    teleop_timeout_s: float = 0.3  # a teleop action keeps priority over the policy for this long [s]
    reset_timeout_s: float = 30.0  # time limit of the reset move [s]

    def __post_init__(self) -> None:
        for name in ("watchdog_timeout_s", "teleop_timeout_s", "reset_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


class ArmController:
    """See the module docstring. ``log(level, text)`` with level "info" | "warning" | "error"."""

    def __init__(self, robot: Any, task: Any, cfg: ArmControlConfig, rng: np.random.Generator,
                 log: Callable[[str, str], None] = lambda _level, _text: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.robot, self.task, self.cfg, self.rng, self._log, self._clock = robot, task, cfg, rng, log, clock
        self.safety = SafetyLayer(task.cfg.safety)
        self.lock = threading.Lock()  # serialises every robot call (except the reset move)
        self.last_action_t = -np.inf  # clock time of the last accepted action
        self.last_teleop_t = -np.inf
        self.holding = True  # no streaming command active (the watchdog is idle)
        self.busy = False  # a reset move is running: actions are ignored
        self.counts = {"commands": 0, "rejected": 0, "clipped": 0, "clamped": 0, "watchdog_stops": 0, "errors": 0}
        self.last_error = ""

    # -- actions -------------------------------------------------------------------------------
    def reject(self) -> None:
        """An action failed the message check (the node logs why): hold the arm."""
        self.counts["rejected"] += 1
        if not self.busy:
            self.hold()

    def on_action(self, action: np.ndarray, teleop: bool) -> bool:
        """A well-formed action ``(A,)`` from the policy or teleop; True when it was commanded."""
        now = self._clock()
        if self.busy:
            return False  # a reset move is running
        if not teleop and now - self.last_teleop_t < self.cfg.teleop_timeout_s:
            return False  # the operator has the arm
        if np.any(np.abs(action) > 1.0):
            self.counts["clipped"] += 1
            self._log("warning", f"action outside [-1, 1] clipped: {np.round(action, 3).tolist()}")
            action = np.clip(action, -1.0, 1.0)
        if teleop:
            self.last_teleop_t = now
        with self.lock:
            try:
                state = self.robot.read_state()
                if state.error:
                    self._recover_locked(state.error)
                    return False
                command = safe_command(state.ee_pose, action, self.task.cfg.action, self.safety,
                                       self.task.cfg.gripper_width)
                self.counts["clamped"] += command.clamped
                self.robot.command_pose(command.target, command.gripper)
            except (RobotError, ValueError) as exc:
                self._recover_locked(str(exc))
                return False
            self.counts["commands"] += 1
            self.last_action_t = now
            self.holding = False
        return True

    # -- holding -------------------------------------------------------------------------------
    def hold(self, hard_stop: bool = False) -> None:
        """Hold the arm: command its current pose (``robot.stop()`` when ``hard_stop``)."""
        with self.lock:
            if self.holding and not hard_stop:
                return
            try:
                if hard_stop:
                    self.robot.stop()
                else:
                    self.robot.command_pose(self.robot.read_state().ee_pose, None)
            except (RobotError, ValueError) as exc:
                self._recover_locked(f"hold: {exc}")
            self.holding = True

    def watchdog(self) -> bool:
        """Hold the arm when the actions stopped; True when it did."""
        if self.holding or self.busy or self._clock() - self.last_action_t < self.cfg.watchdog_timeout_s:
            return False
        self.counts["watchdog_stops"] += 1
        self._log("warning", f"watchdog: no action for {self.cfg.watchdog_timeout_s} s: stopping the arm")
        self.hold()
        return True

    def _recover_locked(self, reason: str) -> None:
        """The arm reported an error: try the bounded recovery, then hold (the caller holds the lock)."""
        self.last_error = reason
        self.counts["errors"] += 1
        self._log("error", f"robot error: {reason}; recovering")
        try:
            ok = self.robot.recover()
        except Exception as exc:  # noqa: BLE001 - reported; the next command retries
            ok = False
            self._log("error", f"recovery raised: {exc}")
        if not ok:
            self._log("error", "recovery failed: the arm holds; call robot/recover or check the robot")
        self.holding = True

    # -- services ------------------------------------------------------------------------------
    def reset(self) -> tuple[bool, str]:
        """Move to the task's reset pose (with its random offset); ``(ok, message)``. Blocking."""
        self.busy = True
        try:
            with self.lock:
                self.holding = True
                state = self.robot.read_state()
                if state.error:
                    self._recover_locked(state.error)
            pose = self.task.sample_reset_pose(self.rng)
            self.robot.move_to(pose, timeout_s=self.cfg.reset_timeout_s)  # not under the lock: state reads go on
            return True, f"at reset pose {np.round(pose[:3], 3).tolist()}"
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            self.last_error = str(exc)
            return False, f"reset failed: {exc}"
        finally:
            self.busy = False

    def stop(self) -> str:
        """Stop any motion now, a reset move included (it then fails); the arm holds."""
        preempting = self.busy  # read first: the stopped move ends at once and clears ``busy``
        self.hold(hard_stop=True)
        return "stopped" + (" (the running reset move was preempted)" if preempting else "")

    def recover(self) -> tuple[bool, str]:
        with self.lock:
            try:
                ok = bool(self.robot.recover())
                return ok, "recovered" if ok else "recovery failed"
            except Exception as exc:  # noqa: BLE001
                return False, f"recovery failed: {exc}"

    def read_state(self) -> RobotState:
        with self.lock:
            return self.robot.read_state()

    def close(self) -> None:
        with self.lock:
            self.robot.stop()
            self.robot.close()
