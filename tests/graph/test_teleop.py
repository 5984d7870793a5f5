"""Teleop node in-process over real rclpy/DDS: keyboard keys and Joy input become teleop/action."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Joy  # noqa: E402
from std_msgs.msg import Float32MultiArray  # noqa: E402

from mentor import qos  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture()
def teleop():
    from mentor.teleop_node import TeleopNode
    rclpy.init()
    node = TeleopNode()
    probe = rclpy.create_node("teleop_probe")
    got: list[np.ndarray] = []
    probe.create_subscription(Float32MultiArray, "teleop/action", lambda m: got.append(np.array(m.data)), qos.COMMAND)
    joy = probe.create_publisher(Joy, "joy", qos.STATE)
    ex = MultiThreadedExecutor()
    ex.add_node(node)
    ex.add_node(probe)
    thread = threading.Thread(target=ex.spin, daemon=True)
    thread.start()
    yield node, got, joy
    ex.shutdown()
    node.shutdown()
    node.destroy_node()
    probe.destroy_node()
    rclpy.try_shutdown()


def _wait(cond, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not cond():
        time.sleep(0.02)
    return cond()


def test_keys_publish_actions_only_while_active(teleop):
    node, got, _joy = teleop
    time.sleep(0.5)
    assert got == []  # nothing while the operator is idle
    node.handle_key("w")
    assert _wait(lambda: any(a[0] == 1.0 for a in got))
    assert all(a.shape == (node.action_dim,) and np.all(np.abs(a) <= 1.0) for a in got)
    node.handle_key("f")
    assert _wait(lambda: any(a[2] == -1.0 for a in got))
    node.handle_key(" ")  # takeover: zero actions keep flowing (the policy is overridden)
    n = len(got)
    # zero actions keep coming (several of them, however slowly a loaded machine runs the timer)
    assert _wait(lambda: len(got) > n + 3 and np.allclose(got[-1], 0.0))


def test_joystick_axes_map_to_action_dims(teleop):
    node, got, joy = teleop
    _wait(lambda: joy.get_subscription_count() > 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(abs(a[0] - 0.5) < 1e-6 for a in got):
        joy.publish(Joy(axes=[0.05, 0.5, 0.0, 0.0, -0.8], buttons=[0, 0, 0]))  # axis 1 -> x, axis 4 -> z
        time.sleep(0.05)
    hit = [a for a in got if abs(a[0] - 0.5) < 1e-6]
    assert hit, got[-3:]
    assert hit[-1][1] == 0.0 and hit[-1][2] == pytest.approx(-0.8)  # axis 0 is inside the deadband


_READ_ONE_KEY = ("import os; from mentor.teleop_node import open_keyboard; fd = open_keyboard(); "
                 "print('none' if fd is None else f'fd {fd}', flush=True); "
                 "fd is None or print('key', os.read(fd, 8).decode().strip(), flush=True)")


def _child_env() -> dict:
    import os
    import sys
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def test_keyboard_is_read_from_the_controlling_terminal_when_stdin_is_not_one():
    """Under ros2 launch a node's stdin is not the terminal; the keys then come from /dev/tty."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    tty_path = os.ttyname(slave)

    def own_session_with_the_pty():  # a fresh session whose controlling terminal is the pty (like a terminal's)
        os.setsid()
        os.open(tty_path, os.O_RDWR)

    proc = subprocess.Popen([sys.executable, "-c", _READ_ONE_KEY], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            text=True, preexec_fn=own_session_with_the_pty, env=_child_env())
    try:
        first = proc.stdout.readline().split()
        assert first[0] == "fd" and first[1] != "0", first  # not stdin (/dev/null): the terminal
        os.write(master, b"w\n")
        assert proc.stdout.readline().split() == ["key", "w"]
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        os.close(master)
        os.close(slave)
    # no terminal at all (a service, CI): the keyboard is off, nothing fails
    alone = subprocess.run([sys.executable, "-c", _READ_ONE_KEY], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, start_new_session=True, env=_child_env(), timeout=60)
    assert alone.returncode == 0 and alone.stdout.split() == ["none"], alone.stderr
