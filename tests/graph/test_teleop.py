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
