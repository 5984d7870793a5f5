"""robot_node: the Franka arm (franky; real or franky-sim) behind safety checks and a watchdog.

Subscribes ``policy/action`` and ``teleop/action`` (Float32MultiArray, normalised [-1, 1]^A; a fresh
teleop action takes priority and policy actions are ignored meanwhile). The decisions (priority, the one
action -> safe command path ``robot_envs.command.safe_command``, hold, watchdog, recovery, reset, stop) are
``mentor.arm_control.ArmController``'s; this node translates messages and services. NaN/inf/wrong-length
actions are rejected with a log line and the arm holds. When no action arrives for ``watchdog_timeout_s``
the arm is stopped.
Publishes ``robot/current_pose`` (PoseStamped, TCP in ``base_frame``), ``robot/joint_states``,
``robot/wrench`` (WrenchStamped, N / Nm), ``robot/status`` (DiagnosticArray); services
``robot/reset`` (move to the task's reset pose with random offsets), ``robot/recover``, ``robot/stop``.
``robot/stop`` and the state topics are served by a second node, ``<name>_guard``, on its own thread:
a reset move blocks this node's executor while it runs, and stop preempts it (the reset then fails).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32MultiArray, String
from std_srvs.srv import Trigger

from robot_envs.netaddr import check_sim_address

from . import qos, wire
from .arm_control import ArmControlConfig, ArmController
from .common import ARM_JOINTS, FINGER_JOINT, RepeatThrottle, load_task, log_function, run_node
from .params import declare_config


@dataclass
class RobotNodeConfig:
    task: str = field(default="reach", metadata={"help": "task name (robot_envs.tasks): action space, safety box, "
                                                         "reset pose"})
    task_config: str = field(default="", metadata={"help": "YAML file overriding the task config ('' = defaults)"})
    use_sim: bool = field(default=True, metadata={"help": "franky-sim: robot_ip must be 'auto' or a loopback address"})
    robot_ip: str = field(default="auto", metadata={"help": "Franka FCI address or franky-sim hostname ('auto' = "
                                                     "wait for the sim world's sim/hostname)"})
    realtime_ignore: bool = field(default=False, metadata={"help": "franky RealtimeConfig.Ignore (sim / non-RT "
                                                                   "kernel)"})
    watchdog_timeout_s: float = field(default=0.5, metadata={"help": "stop the arm when no action for this long [s]"})
    state_hz: float = field(default=20.0, metadata={"help": "rate of state publishing [Hz]"})
    teleop_timeout_s: float = field(default=0.3, metadata={"help": "a teleop action is fresh for this long [s]"})
    connect_timeout_s: float = field(default=30.0, metadata={"help": "keep retrying the connection this long [s]"})
    reset_timeout_s: float = field(default=30.0, metadata={"help": "time limit of the reset move [s]"})
    base_frame: str = field(default="base", metadata={"help": "frame_id of poses and wrenches"})
    seed: int = field(default=0, metadata={"help": "seed of the reset-pose noise"})

    def __post_init__(self) -> None:
        for name in ("watchdog_timeout_s", "state_hz", "teleop_timeout_s", "connect_timeout_s", "reset_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.use_sim and self.robot_ip != "auto":
            check_sim_address(self.robot_ip)
        if not self.use_sim and self.robot_ip == "auto":
            raise ValueError("robot_ip 'auto' is for use_sim (franky-sim announces its address); "
                             "give the arm's FCI address")


class RobotNode(Node):
    def __init__(self) -> None:
        super().__init__("robot")
        self.cfg = declare_config(self, RobotNodeConfig)
        self.task = load_task(self.cfg.task, self.cfg.task_config)
        self.action_dim = self.task.cfg.action.action_dim
        self.robot = self._connect()
        self.arm_log = {level: RepeatThrottle(log_function(self.get_logger(), level), period_s=2.0)
                        for level in ("warning", "error")}
        self.arm = ArmController(self.robot, self.task, ArmControlConfig(
            self.cfg.watchdog_timeout_s, self.cfg.teleop_timeout_s, self.cfg.reset_timeout_s),
            np.random.default_rng(self.cfg.seed), log=self._log)
        self.rejections = RepeatThrottle(log_function(self.get_logger(), "error"), period_s=2.0)
        self.create_subscription(Float32MultiArray, "policy/action", lambda m: self._on_action(m, False), qos.COMMAND)
        self.create_subscription(Float32MultiArray, "teleop/action", lambda m: self._on_action(m, True), qos.COMMAND)
        self.create_service(Trigger, "robot/reset", self._srv_reset)
        self.create_service(Trigger, "robot/recover", self._srv_recover)
        self.create_timer(0.05, self.arm.watchdog)
        self._start_guard()
        self.get_logger().info(f"robot node up: {self.cfg.robot_ip}, task {self.cfg.task}, "
                               f"action_dim {self.action_dim}")

    def _start_guard(self) -> None:
        """``robot/stop`` and the state topics live on a second node (``<name>_guard``) spun by its own
        thread: this node's executor is blocked for the whole of a reset move (a service answers when
        its callback returns), and stop must preempt that move and the state keep flowing meanwhile."""
        from rclpy.executors import SingleThreadedExecutor
        self.guard = rclpy.create_node(f"{self.get_name()}_guard", namespace=self.get_namespace(),
                                       context=self.context, use_global_arguments=False,
                                       start_parameter_services=False)
        self.pub_pose = self.guard.create_publisher(wire.PoseStamped, "robot/current_pose", qos.STATE)
        self.pub_joints = self.guard.create_publisher(JointState, "robot/joint_states", qos.STATE)
        self.pub_wrench = self.guard.create_publisher(WrenchStamped, "robot/wrench", qos.STATE)
        self.pub_status = self.guard.create_publisher(DiagnosticArray, "robot/status", qos.STATE)
        self.guard.create_service(Trigger, "robot/stop", self._srv_stop)
        self.guard.create_timer(1.0 / self.cfg.state_hz, self._publish_state)
        self.guard_executor = SingleThreadedExecutor(context=self.context)
        self.guard_executor.add_node(self.guard)
        self.guard_thread = threading.Thread(target=self._spin_guard, name="robot-guard", daemon=True)
        self.guard_thread.start()

    def _spin_guard(self) -> None:
        from rclpy.executors import ExternalShutdownException
        try:
            self.guard_executor.spin()
        except ExternalShutdownException:
            pass

    def _sim_hostname(self, deadline: float) -> str:
        """The address the sim world node announces on sim/hostname (robot_ip 'auto')."""
        got: list[str] = []
        sub = self.create_subscription(String, "sim/hostname", lambda m: got.append(m.data), qos.LATCHED)
        try:
            while not got:
                if time.monotonic() > deadline:
                    raise RuntimeError("robot_ip is 'auto' but no sim world announced sim/hostname in time")
                rclpy.spin_once(self, timeout_sec=0.1)
        finally:
            self.destroy_subscription(sub)
        self.get_logger().info(f"franky-sim announced at {got[-1]}")
        return got[-1]

    def _connect(self):
        from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        host = self._sim_hostname(deadline) if self.cfg.robot_ip == "auto" else self.cfg.robot_ip
        if self.cfg.use_sim:  # whatever announced itself: a sim robot node never leaves this machine
            check_sim_address(host, "the sim hostname")
        self.hostname = host
        franky_cfg = declare_config(self, FrankyRobotConfig, prefix="franky.",
                                    overrides={"hostname": host, "ignore_realtime": self.cfg.realtime_ignore})
        while True:
            robot = FrankyRobot(franky_cfg)
            try:
                robot.connect()
                return robot
            except Exception as exc:  # noqa: BLE001 - retried, then re-raised with context
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cannot connect to the robot at {host} within "
                                       f"{self.cfg.connect_timeout_s} s: {exc}") from exc
                self.get_logger().warning(f"robot at {host} not reachable yet ({exc}); retrying")
                time.sleep(1.0)

    # -- commands ----------------------------------------------------------------------------
    def _log(self, level: str, text: str) -> None:
        """The controller's log lines: warnings and errors once per kind per 2 s (with a count of the rest)."""
        if level == "info":
            self.get_logger().info(text)
        else:
            self.arm_log[level].log(text)

    def _on_action(self, msg: Float32MultiArray, teleop: bool) -> None:
        try:
            action = wire.msg_to_action(msg, self.action_dim)
        except wire.WireError as exc:
            self.arm.reject()  # counted in robot/status; the log gets one line per kind per 2 s
            self.rejections.log(f"rejected {'teleop' if teleop else 'policy'} action: {exc}; holding position "
                                f"({self.arm.counts['rejected']} rejected so far)")
            return
        self.arm.on_action(action, teleop)

    # -- services ----------------------------------------------------------------------------
    def _srv_reset(self, _req, resp):
        start = time.monotonic()
        resp.success, resp.message = self.arm.reset()
        if resp.success:
            self.get_logger().info(f"reset: {resp.message} after {time.monotonic() - start:.1f} s",
                                   throttle_duration_sec=30.0)
        else:
            self.get_logger().error(resp.message)
        return resp

    def _srv_recover(self, _req, resp):
        resp.success, resp.message = self.arm.recover()
        self.get_logger().info(f"recover: {resp.message}")
        return resp

    def _srv_stop(self, _req, resp):
        resp.success, resp.message = True, self.arm.stop()
        return resp

    # -- state -------------------------------------------------------------------------------
    def _publish_state(self) -> None:
        try:
            st = self.arm.read_state()
        except Exception as exc:  # noqa: BLE001 - published as an error status
            self.arm.last_error = str(exc)
            self.get_logger().error(f"read_state failed: {exc}", throttle_duration_sec=5.0)
            return
        stamp = wire.stamp_from_seconds(time.time())
        pose = wire.pose_to_msg(st.ee_pose, 0.0, self.cfg.base_frame)
        pose.header.stamp = stamp
        self.pub_pose.publish(pose)
        js = JointState(name=ARM_JOINTS + [FINGER_JOINT],
                        position=[float(v) for v in st.joint_positions] + [float(st.gripper_width) / 2.0])
        js.header.stamp = stamp
        self.pub_joints.publish(js)
        if st.external_wrench is not None:
            w = WrenchStamped()
            w.header.stamp, w.header.frame_id = stamp, self.cfg.base_frame
            (w.wrench.force.x, w.wrench.force.y, w.wrench.force.z,
             w.wrench.torque.x, w.wrench.torque.y, w.wrench.torque.z) = (float(v) for v in st.external_wrench)
            self.pub_wrench.publish(w)
        self._publish_status(st)

    def _publish_status(self, st) -> None:
        err = st.error or self.arm.last_error
        status = DiagnosticStatus(name="robot", hardware_id=self.cfg.robot_ip,
                                  level=DiagnosticStatus.ERROR if st.error else DiagnosticStatus.OK,
                                  message=err or ("holding" if self.arm.holding else "commanding"))
        status.values = [KeyValue(key=k, value=str(v)) for k, v in self.arm.counts.items()]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = wire.stamp_from_seconds(time.time())
        self.pub_status.publish(arr)

    def shutdown(self) -> None:
        self.guard_executor.shutdown(timeout_sec=2.0)
        self.guard.destroy_node()
        try:
            self.arm.close()
        except Exception as exc:  # noqa: BLE001 - reported on the way out
            self.get_logger().error(f"robot close failed: {exc}")


def main(args: list[str] | None = None) -> int:
    return run_node(RobotNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
