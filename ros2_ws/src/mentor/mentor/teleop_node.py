"""teleop_node: human takeover, reset confirmation and success labels.

Inputs: a keyboard (when stdin is a TTY), ``joy`` (sensor_msgs/Joy from any joystick driver) and a
3Dconnexion SpaceMouse (``pyspacemouse``, when installed and a device is present; otherwise a clear
log line). While the operator acts, normalised actions (Float32MultiArray in [-1, 1]^A, the task's
action layout: xyz [, rotation] [, gripper]) are published on ``teleop/action`` at ``rate_hz``; the
policy node records them as interventions and the robot node executes them.
Keyboard: w/s +x/-x, a/d +y/-y, r/f +z/-z, g toggles the gripper, space toggles takeover,
c confirms the reset, y/n label the episode a success/failure. The keys are read from stdin when it is a
terminal (``mentor-run``), else from the controlling terminal ``/dev/tty``: under ``ros2 launch`` a node's
stdin is not the terminal, but the launch's terminal is still the node's controlling terminal.
"""
from __future__ import annotations

import os
import select
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import Float32MultiArray
from std_srvs.srv import SetBool, Trigger

from robot_envs.actions import with_gripper_command

from . import qos, wire
from .common import load_task, run_node
from .params import declare_config

KEYS = {"w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0), "r": (2, 1.0), "f": (2, -1.0)}


@dataclass
class TeleopNodeConfig:
    task: str = field(default="reach", metadata={"help": "task name (action layout)"})
    task_config: str = field(default="", metadata={"help": "YAML file overriding the task config"})
    rate_hz: float = field(default=20.0, metadata={"help": "publish rate while the operator acts [Hz]"})
    key_hold_s: float = field(default=0.25, metadata={"help": "a key press moves the arm for this long [s]"})
    keyboard: bool = field(default=True, metadata={"help": "read the keyboard when stdin is a TTY"})
    spacemouse: bool = field(default=True, metadata={"help": "use a SpaceMouse via pyspacemouse if present"})
    deadband: float = field(default=0.1, metadata={"help": "joystick/SpaceMouse inputs below this are zero"})
    joy_axes: list[int] = field(default_factory=lambda: [1, 0, 4],
                                metadata={"help": "Joy axis per action dim (x, y, z)"})
    joy_confirm_button: int = field(default=0, metadata={"help": "Joy button: confirm reset"})
    joy_success_button: int = field(default=1, metadata={"help": "Joy button: label success"})
    joy_failure_button: int = field(default=2, metadata={"help": "Joy button: label failure"})

    def __post_init__(self) -> None:
        if self.rate_hz <= 0 or self.key_hold_s <= 0 or not 0 <= self.deadband < 1:
            raise ValueError("rate_hz, key_hold_s must be > 0 and deadband in [0, 1)")


class TeleopNode(Node):
    def __init__(self) -> None:
        super().__init__("teleop")
        self.cfg = declare_config(self, TeleopNodeConfig)
        self.action_cfg = load_task(self.cfg.task, self.cfg.task_config).cfg.action  # xyz [, rotation] [, gripper]
        self.action_dim = int(self.action_cfg.action_dim)
        self.command = np.zeros(self.action_dim, np.float32)
        self.command_until = 0.0  # monotonic time until which ``command`` is published
        self.takeover = False
        self.gripper_closed = False
        self.buttons: list[int] = []
        self.pub = self.create_publisher(Float32MultiArray, "teleop/action", qos.COMMAND)
        self.cli_confirm = self.create_client(Trigger, "episode/confirm_reset")
        self.cli_label = self.create_client(SetBool, "episode/label_success")
        self.create_subscription(Joy, "joy", self._on_joy, qos.STATE)
        self.create_timer(1.0 / self.cfg.rate_hz, self._publish)
        self.stop = threading.Event()
        keyboard = open_keyboard() if self.cfg.keyboard else None
        if keyboard is not None:
            threading.Thread(target=self._keyboard, args=(keyboard,), daemon=True).start()
            self.get_logger().info("keyboard teleop: w/s a/d r/f move, g gripper, space takeover, c confirm, y/n label")
        else:
            self.get_logger().info("keyboard teleop off (no terminal: stdin is not a TTY and there is no "
                                   "controlling terminal, or keyboard:=false)")
        if self.cfg.spacemouse:
            self._start_spacemouse()

    def _set(self, values: np.ndarray, hold_s: float) -> None:
        self.command = np.clip(values, -1.0, 1.0).astype(np.float32)
        self.command_until = time.monotonic() + hold_s

    def _publish(self) -> None:
        if self.takeover or time.monotonic() < self.command_until:
            cmd = self.command.copy() if time.monotonic() < self.command_until else np.zeros_like(self.command)
            cmd = with_gripper_command(cmd, self.gripper_closed, self.action_cfg)  # no-op without a gripper dim
            self.pub.publish(wire.array_to_msg(cmd))

    def _call_confirm(self) -> None:
        if self.cli_confirm.service_is_ready():
            self.cli_confirm.call_async(Trigger.Request())
        else:
            self.get_logger().error("episode/confirm_reset not available (is the episode node running?)")

    def _call_label(self, success: bool) -> None:
        if self.cli_label.service_is_ready():
            self.cli_label.call_async(SetBool.Request(data=success))
            self.get_logger().info(f"labelled {'success' if success else 'failure'}")
        else:
            self.get_logger().error("episode/label_success not available (is the episode node running?)")

    # -- devices -----------------------------------------------------------------------------
    def handle_key(self, key: str) -> None:
        """Apply one keyboard key (see module docstring)."""
        if key in KEYS and KEYS[key][0] < self.action_dim:
            vec = np.zeros(self.action_dim, np.float32)
            vec[KEYS[key][0]] = KEYS[key][1]
            self._set(vec, self.cfg.key_hold_s)
        elif key == "g":
            self.gripper_closed = not self.gripper_closed
        elif key == " ":
            self.takeover = not self.takeover
            self.get_logger().info(f"takeover {'ON' if self.takeover else 'OFF'}")
        elif key == "c":
            self._call_confirm()
        elif key in ("y", "n"):
            self._call_label(key == "y")

    def _keyboard(self, fd: int) -> None:
        import termios
        import tty
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not self.stop.is_set():
                if select.select([fd], [], [], 0.1)[0]:
                    self.handle_key(os.read(fd, 1).decode(errors="ignore").lower())
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)

    def _on_joy(self, msg: Joy) -> None:
        vec = np.zeros(self.action_dim, np.float32)
        for dim, axis in enumerate(self.cfg.joy_axes[: self.action_dim]):
            if axis < len(msg.axes) and abs(msg.axes[axis]) > self.cfg.deadband:
                vec[dim] = msg.axes[axis]
        if np.any(vec):
            self._set(vec, 2.0 / self.cfg.rate_hz)
        pressed = [i for i, b in enumerate(msg.buttons) if b and (i >= len(self.buttons) or not self.buttons[i])]
        self.buttons = list(msg.buttons)
        for b in pressed:
            if b == self.cfg.joy_confirm_button:
                self._call_confirm()
            elif b in (self.cfg.joy_success_button, self.cfg.joy_failure_button):
                self._call_label(b == self.cfg.joy_success_button)

    def _start_spacemouse(self) -> None:
        try:
            import pyspacemouse
        except ImportError:
            self.get_logger().info("pyspacemouse is not installed: SpaceMouse teleop disabled "
                                   "(pip install pyspacemouse)")
            return
        try:
            ok = pyspacemouse.open()
        except Exception as exc:  # noqa: BLE001 - any device/permission problem is reported
            ok = False
            self.get_logger().warning(f"SpaceMouse could not be opened: {exc}")
        if not ok:
            self.get_logger().info("no SpaceMouse device found: SpaceMouse teleop disabled")
            return
        threading.Thread(target=self._spacemouse_loop, args=(pyspacemouse,), daemon=True).start()

    def _spacemouse_loop(self, sm) -> None:
        while not self.stop.is_set():
            s = sm.read()
            vec = np.zeros(self.action_dim, np.float32)
            vec[: min(3, self.action_dim)] = np.array([s.y, -s.x, s.z], np.float32)[: min(3, self.action_dim)]
            vec[np.abs(vec) < self.cfg.deadband] = 0.0
            if np.any(vec):
                self._set(vec, 2.0 / self.cfg.rate_hz)
            time.sleep(1.0 / (2 * self.cfg.rate_hz))

    def shutdown(self) -> None:
        self.stop.set()


def open_keyboard() -> int | None:
    """A file descriptor of the operator's terminal: stdin when it is a TTY, else the controlling terminal
    (``/dev/tty``, what a node started by ``ros2 launch`` from a terminal still has), else None."""
    if sys.stdin.isatty():
        return sys.stdin.fileno()
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:  # no controlling terminal (a service, CI, a detached session)
        return None
    if os.isatty(fd):
        return fd
    os.close(fd)
    return None


def main(args: list[str] | None = None) -> int:
    return run_node(TeleopNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
