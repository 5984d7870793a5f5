"""robot_node: the Franka arm (franky; real or franky-sim) behind safety checks and a watchdog.

Subscribes ``policy/action`` and ``teleop/action`` (Float32MultiArray, normalised [-1, 1]^A; a fresh
teleop action takes priority and policy actions are ignored meanwhile). Every command goes through
``action_to_target`` + ``SafetyLayer.clamp``; NaN/inf/wrong-length actions are rejected with a log
line and the arm holds. When no action arrives for ``watchdog_timeout_s`` the arm is stopped.
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
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import WrenchStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
import rclpy
from std_msgs.msg import Float32MultiArray, String
from std_srvs.srv import Trigger

from robot_envs.netaddr import check_sim_address

from . import qos, wire
from .common import ARM_JOINTS, FINGER_JOINT, RepeatThrottle, load_task, run_node
from .params import declare_config


@dataclass
class RobotNodeConfig:
    task: str = field(default="reach", metadata={"help": "task name (robot_envs.tasks): action space, safety box, reset pose"})
    task_config: str = field(default="", metadata={"help": "YAML file overriding the task config ('' = defaults)"})
    use_sim: bool = field(default=True, metadata={"help": "franky-sim: robot_ip must be 'auto' or a loopback address"})
    robot_ip: str = field(default="auto", metadata={"help": "Franka FCI address or franky-sim hostname ('auto' = "
                                                     "wait for the sim world's sim/hostname)"})
    realtime_ignore: bool = field(default=False, metadata={"help": "franky RealtimeConfig.Ignore (sim / non-RT kernel)"})
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
            raise ValueError("robot_ip 'auto' is for use_sim (franky-sim announces its address); give the arm's FCI address")


class RobotNode(Node):
    def __init__(self) -> None:
        super().__init__("robot")
        self.cfg = declare_config(self, RobotNodeConfig)
        self.task = load_task(self.cfg.task, self.cfg.task_config)
        from robot_envs.safety import SafetyLayer
        self.safety = SafetyLayer(self.task.cfg.safety)
        self.action_dim = self.task.cfg.action.action_dim
        self.rng = np.random.default_rng(self.cfg.seed)
        self.robot = self._connect()
        self.lock = threading.Lock()  # serialises every robot call
        self.last_action_t = -1.0  # monotonic time of the last accepted action
        self.last_teleop_t = -1.0
        self.holding = True  # True: no streaming command active (watchdog idle)
        self.busy = False  # a blocking move (reset) is running: actions are ignored
        self.counts = {"commands": 0, "rejected": 0, "clipped": 0, "clamped": 0, "watchdog_stops": 0}
        self.rejections = RepeatThrottle(self.get_logger().error, period_s=2.0)
        self.last_error = ""
        cmd_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Float32MultiArray, "policy/action", lambda m: self._on_action(m, False), qos.COMMAND,
                                 callback_group=cmd_group)
        self.create_subscription(Float32MultiArray, "teleop/action", lambda m: self._on_action(m, True), qos.COMMAND,
                                 callback_group=cmd_group)
        srv_group = MutuallyExclusiveCallbackGroup()
        self.create_service(Trigger, "robot/reset", self._srv_reset, callback_group=srv_group)
        self.create_service(Trigger, "robot/recover", self._srv_recover, callback_group=srv_group)
        self.create_timer(0.05, self._watchdog, callback_group=MutuallyExclusiveCallbackGroup())
        self._start_guard()
        self.get_logger().info(f"robot node up: {self.cfg.robot_ip}, task {self.cfg.task}, action_dim {self.action_dim}")

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
    def _on_action(self, msg: Float32MultiArray, teleop: bool) -> None:
        now = time.monotonic()
        try:
            action = wire.msg_to_action(msg, self.action_dim)
        except wire.WireError as exc:
            self.counts["rejected"] += 1  # in robot/status; the log gets one line per kind per 2 s
            self.rejections.log(f"rejected {'teleop' if teleop else 'policy'} action: {exc}; holding position "
                                f"({self.counts['rejected']} rejected so far)")
            if not self.busy:
                self._hold()
            return
        if self.busy:
            return  # a reset move is running
        if not teleop and now - self.last_teleop_t < self.cfg.teleop_timeout_s:
            return  # the operator has the arm
        if np.any(np.abs(action) > 1.0):
            self.counts["clipped"] += 1
            self.get_logger().warning(f"action outside [-1, 1] clipped: {np.round(action, 3).tolist()}",
                                   throttle_duration_sec=2.0)
            action = np.clip(action, -1.0, 1.0)
        if teleop:
            self.last_teleop_t = now
        self._command(action, now)

    def _command(self, action: np.ndarray, now: float) -> None:
        from robot_envs.actions import action_to_target
        from robot_envs.robot import RobotError
        with self.lock:
            try:
                state = self.robot.read_state()
                if state.error:
                    self._recover_locked(state.error)
                    return
                target, gripper = action_to_target(state.ee_pose, action, self.task.cfg.action)
                safe = self.safety.clamp(state.ee_pose, target)
                gripper = self.safety.clamp_gripper(self.task.cfg.gripper_width if gripper is None else gripper)
                if not np.allclose(safe, target, atol=1e-9):
                    self.counts["clamped"] += 1
                self.robot.command_pose(safe, gripper)
            except (RobotError, ValueError) as exc:
                self._recover_locked(str(exc))
                return
            self.counts["commands"] += 1
            self.last_action_t = now
            self.holding = False

    def _recover_locked(self, reason: str) -> None:
        """The arm reported an error: log it, try the bounded recovery, hold (caller holds self.lock)."""
        self.last_error = reason
        self.counts["errors"] = self.counts.get("errors", 0) + 1
        self.get_logger().error(f"robot error: {reason}; recovering", throttle_duration_sec=2.0)
        try:
            ok = self.robot.recover()
        except Exception as exc:  # noqa: BLE001 - reported; the next command retries
            ok = False
            self.get_logger().error(f"recovery raised: {exc}")
        if not ok:
            self.get_logger().error("recovery failed: the arm holds; call robot/recover or check the robot")
        self.holding = True

    def _hold(self, hard_stop: bool = False) -> None:
        """Hold the arm: command its current pose (or ``robot.stop()`` when ``hard_stop``)."""
        from robot_envs.robot import RobotError
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

    def _watchdog(self) -> None:
        if self.holding or self.busy or time.monotonic() - self.last_action_t < self.cfg.watchdog_timeout_s:
            return
        self.counts["watchdog_stops"] += 1
        self.get_logger().warning(f"watchdog: no action for {self.cfg.watchdog_timeout_s} s: stopping the arm",
                               throttle_duration_sec=5.0)
        self._hold()

    # -- services ----------------------------------------------------------------------------
    def _srv_reset(self, _req, resp):
        self.busy = True
        try:
            with self.lock:
                self.holding = True
                state = self.robot.read_state()
                if state.error:
                    self._recover_locked(state.error)
            pose = self.task.sample_reset_pose(self.rng)
            # not under self.lock: state publishing goes on; ``busy`` keeps commands out
            start = time.monotonic()
            self.robot.move_to(pose, timeout_s=self.cfg.reset_timeout_s)
            resp.success, resp.message = True, f"at reset pose {np.round(pose[:3], 3).tolist()}"
            self.get_logger().info(f"reset: {resp.message} after {time.monotonic() - start:.1f} s",
                                   throttle_duration_sec=30.0)
        except Exception as exc:  # noqa: BLE001 - reported to the caller and logged
            self.last_error = str(exc)
            self.get_logger().error(f"reset failed: {exc}")
            resp.success, resp.message = False, f"reset failed: {exc}"
        finally:
            self.busy = False
        return resp

    def _srv_recover(self, _req, resp):
        with self.lock:
            try:
                resp.success = bool(self.robot.recover())
                resp.message = "recovered" if resp.success else "recovery failed"
            except Exception as exc:  # noqa: BLE001
                resp.success, resp.message = False, f"recovery failed: {exc}"
        self.get_logger().info(f"recover: {resp.message}")
        return resp

    def _srv_stop(self, _req, resp):
        """Stop any motion now, a reset move included (it then fails with "stopped"); the arm holds."""
        preempting = self.busy  # read first: the stopped move ends at once and clears ``busy``
        self._hold(hard_stop=True)
        resp.success, resp.message = True, "stopped" + (" (the running reset move was preempted)" if preempting else "")
        return resp

    # -- state -------------------------------------------------------------------------------
    def _publish_state(self) -> None:
        with self.lock:
            try:
                st = self.robot.read_state()
            except Exception as exc:  # noqa: BLE001 - published as an error status
                self.last_error = str(exc)
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
        err = st.error or self.last_error
        status = DiagnosticStatus(name="robot", hardware_id=self.cfg.robot_ip,
                                  level=DiagnosticStatus.ERROR if st.error else DiagnosticStatus.OK,
                                  message=err or ("holding" if self.holding else "commanding"))
        status.values = [KeyValue(key=k, value=str(v)) for k, v in self.counts.items()]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = wire.stamp_from_seconds(time.time())
        self.pub_status.publish(arr)

    def shutdown(self) -> None:
        self.guard_executor.shutdown(timeout_sec=2.0)
        self.guard.destroy_node()
        try:
            with self.lock:
                self.robot.stop()
                self.robot.close()
        except Exception as exc:  # noqa: BLE001 - reported on the way out
            self.get_logger().error(f"robot close failed: {exc}")


def main(args: list[str] | None = None) -> int:
    return run_node(RobotNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
