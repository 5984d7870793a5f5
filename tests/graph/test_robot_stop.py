"""robot/stop during a reset move (real robot node on franky-sim, real rclpy and DDS).

The reset move once blocked the robot node's only executor thread for its whole duration: stop was
answered after the move ended and no pose was published meanwhile. Now stop and the state topics live
on the node's guard thread: stop preempts the move (the reset fails with "stopped") and poses keep coming.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
import yaml

pytest.importorskip("franky_sim")

from _graph_util import AGENT_OVERRIDES, tails, wait_for, write_run_config  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from std_msgs.msg import Float32MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from mentor import qos, wire  # noqa: E402
from mentor.graph import GraphArgs, build_graph  # noqa: E402
from mentor.runner import GraphProcesses, node_env  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.sim]


class Probe:
    def __init__(self) -> None:
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("stop_test_probe", context=self.ctx)
        self.poses: list[tuple[float, np.ndarray]] = []  # (monotonic arrival, TCP position)
        self.node.create_subscription(PoseStamped, "robot/current_pose",
                                      lambda m: self.poses.append((time.monotonic(), wire.msg_to_pose(m)[:3])),
                                      qos.STATE)
        self.teleop = self.node.create_publisher(Float32MultiArray, "teleop/action", qos.COMMAND)
        self.reset = self.node.create_client(Trigger, "robot/reset")
        self.stop = self.node.create_client(Trigger, "robot/stop")
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def position(self) -> np.ndarray:
        return self.poses[-1][1]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.ctx)


def _settled(probe: Probe, graph: GraphProcesses) -> np.ndarray:
    """The TCP position once it moved less than 1 mm in 0.5 s (the arm holds)."""
    def still():
        a = probe.position().copy()
        time.sleep(0.5)
        return np.linalg.norm(probe.position() - a) < 0.001
    wait_for(graph, "the arm to hold still", still, 60)
    return probe.position().copy()


def _start(tmp_path) -> GraphProcesses:
    """franky-sim + the robot node; reset moves at 0.4 x 0.05 of the Franka limits (a few seconds long)."""
    task_yaml, params = write_run_config(tmp_path)
    cfg = yaml.safe_load(params.read_text())
    cfg["robot"]["ros__parameters"]["franky.move_to_dynamics_factor"] = 0.05
    params.write_text(yaml.safe_dump(cfg))
    args = GraphArgs(mode="train", task="reach", task_config=str(task_yaml), use_sim=True, robot_ip="auto",
                     run_dir=str(tmp_path / "run"), agent_config="tiny", agent_overrides=AGENT_OVERRIDES,
                     control_hz=10.0, config_file=str(params))
    graph = GraphProcesses([n for n in build_graph(args) if n.name in ("sim_world", "robot")], tmp_path / "run",
                           node_env())
    graph.start_all()
    return graph


def test_stop_preempts_a_reset_move_and_state_keeps_publishing(tmp_path):
    graph = _start(tmp_path)
    probe = Probe()
    try:
        wait_for(graph, "robot poses", lambda: len(probe.poses) > 5, 120)
        assert probe.reset.wait_for_service(30) and probe.stop.wait_for_service(30)
        # push the arm to a corner of the workspace box, away from the reset pose
        start = probe.position().copy()
        deadline = time.monotonic() + 60
        while np.linalg.norm(probe.position() - start) < 0.06 and time.monotonic() < deadline:
            probe.teleop.publish(Float32MultiArray(data=[-1.0, -1.0, -1.0]))
            time.sleep(0.1)
        assert np.linalg.norm(probe.position() - start) >= 0.06, tails(graph)
        far = _settled(probe, graph)  # the watchdog holds the arm once the teleop actions stop
        reset = probe.reset.call_async(Trigger.Request())
        wait_for(graph, "the reset move to start", lambda: np.linalg.norm(probe.position() - far) > 0.005, 60)
        poses_during_reset = len(probe.poses)
        stop = probe.stop.call_async(Trigger.Request())
        wait_for(graph, "the stop answer", stop.done, 30)
        wait_for(graph, "the reset answer", reset.done, 60)  # the move alone would take ~20 s
        stopped_at = probe.position().copy()
        held = _settled(probe, graph)
    finally:
        probe.close()
        graph.stop_all()
    assert stop.result().success and "preempted" in stop.result().message, stop.result().message
    assert not reset.result().success and "stopped" in reset.result().message, (reset.result().message,
                                                                                stop.result().message)
    assert poses_during_reset > 5  # the state topics kept flowing while the reset move ran
    assert np.linalg.norm(held - stopped_at) < 0.01  # after the stop the arm holds where it was ...
    assert np.linalg.norm(held - far) > 0.004  # ... part of the way to the reset pose
