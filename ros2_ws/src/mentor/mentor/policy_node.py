"""policy_node: the fixed-rate actor (control loop at ``control_hz``); wiring over ROS-free parts.

Each tick: the newest frame per camera (``<camera>/color/image_raw``) -> the policy image of one step
(``robot_envs.camera.policy_image``) -> frame stack (``mentor_policy.frames``); proprio from the task
and the robot state; the action from the policy (``act(image, proprio, *, explore)``: ActorPolicy in
train and deploy, OnnxPolicy in deploy, HoldStillPolicy in record); a fresh ``teleop/action``
overrides it (recorded as an intervention); the action goes out on ``policy/action``, then the step
record is made durable and sent.

The parts (each unit tested without ROS):
- when to tick: :class:`mentor.tick_clock.TickScheduler` (``tick_source`` frame, camera or timer);
- the episode record, its steps and its outcome: :class:`mentor.episode_recorder.EpisodeRecorder`;
- step records to the learner (outbox, resend): :class:`mentor.transition_sender.TransitionSender`;
- new weights, decoded off the control path: :class:`mentor.weights_inbox.WeightsInbox`, swapped in
  between ticks except during an evaluation block (:class:`mentor.evaluation.WeightsHold`).

Evaluation inside training: after every ``eval_every_episodes`` training episodes, a block of
``eval_episodes`` deterministic episodes runs with one weights version (:mod:`mentor.evaluation`).
Deploy mode saves one video per episode and a summary JSON when the episode node reports DONE.

Executor model: one thread (``run_node``) runs every subscription callback in arrival order, and in
frame mode the ticks too; camera/timer ticks run on the scheduler's thread; weight decoding runs on
threads of its own. The inputs they share live in :class:`mentor.policy_inputs.PolicyInputs` (locked); no lock
is held across disk I/O.
"""
from __future__ import annotations

import threading
import time
import traceback

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, Float64MultiArray, Int64, String, UInt8MultiArray
from std_srvs.srv import Trigger

from mentor_policy.frames import FrameStacker
from robot_envs.camera import policy_image

from . import qos, wire
from .common import (
    DONE,
    RepeatThrottle,
    StateAssembler,
    drop_realtime,
    load_task,
    log_function,
    run_node,
    set_thread_realtime,
    set_torch_threads,
)
from .episode_recorder import EpisodeRecorder, video_path, write_deploy_summary
from .evaluation import EvalSchedule, WeightsHold
from .params import declare_config, parse_overrides
from .policy_config import PolicyNodeConfig
from .policy_inputs import PolicyInputs
from .policy_io import EpisodeVideo, make_policy
from .tick_clock import TickScheduler
from .transition_sender import TransitionSender
from .transport import Outbox
from .weights_inbox import WeightsInbox


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        cfg = self.cfg = declare_config(self, PolicyNodeConfig)
        if not cfg.onnx:  # the ONNX Runtime path never imports torch (robot PCs without it)
            set_torch_threads(cfg.torch_threads)
        self.train = cfg.mode in ("train", "record")  # both send every transition to the learner
        self.task = load_task(cfg.task, cfg.task_config)
        self.spec = self.task.env_spec(len(cfg.cameras))
        self.policy = make_policy(cfg, self.spec, parse_overrides(cfg.agent_overrides), self.get_logger().warning)
        self.version, self.weights_step = 0, 0
        self.stacker = FrameStacker(self.policy.in_channels // self.spec.frame_channels)
        self.video_camera = cfg.video_camera or cfg.cameras[0]
        self.inputs = PolicyInputs(cfg.cameras, self.spec.image_size, cfg.teleop_timeout_s, cfg.frame_timeout_s)
        self.robot_state = StateAssembler()
        self.bad_input_log = RepeatThrottle(log_function(self.get_logger(), "error"), period_s=2.0)  # 1 per kind/2 s
        self.exit_requested, self.exit_code = False, 0
        self.schedule = EvalSchedule(cfg.eval_every_episodes if self.train else 0, cfg.eval_episodes)
        self.weights_hold = WeightsHold(self.schedule)
        self.pub_tr = self.create_publisher(UInt8MultiArray, "transitions", qos.TRANSITIONS) if self.train else None
        self.sender = TransitionSender(Outbox(cfg.outbox_dir), self._publish_transition, cfg.source,
                                       cfg.resend_after_s, cfg.resend_per_tick) if self.train else None
        self.recorder = EpisodeRecorder(self.task, self.spec.action_dim, self.schedule, not self.train,
                                        self._emit, self._on_episode_closed, self._video_for, self.get_logger().info,
                                        resume=self.sender.newest() if self.sender else None)
        self.inbox = WeightsInbox(self.get_logger().error, on_decoder_start=drop_realtime)
        self.scheduler = TickScheduler(cfg.tick_source, 1.0 / cfg.control_hz, cfg.cameras, cfg.tick_offset_s)
        for cam in cfg.cameras:
            self.create_subscription(Image, f"{cam}/color/image_raw", lambda m, c=cam: self._on_frame(c, m), qos.SENSOR)
        self.create_subscription(PoseStamped, "robot/current_pose", self.robot_state.on_pose, qos.STATE)
        self.create_subscription(JointState, "robot/joint_states", self.robot_state.on_joints, qos.STATE)
        self.create_subscription(String, "episode/status", self._on_status, qos.LATCHED)
        self.create_subscription(Float32MultiArray, "episode/reward", self._on_reward, qos.STATE)
        self.create_subscription(Float32MultiArray, "teleop/action", self._on_teleop, qos.COMMAND)
        self.pub_action = self.create_publisher(Float32MultiArray, "policy/action", qos.COMMAND)
        self.pub_version = self.create_publisher(Int64, "policy/weights_version", qos.LATCHED)
        self.pub_timing = self.create_publisher(Float64MultiArray, "policy/timing", qos.STATE)
        self.pub_summary = self.create_publisher(String, "episode/summary", qos.STATE)
        self.cli_end = self.create_client(Trigger, "episode/end")
        if self.train:
            self.create_subscription(String, "learner/ack", self._on_ack, qos.LATCHED)
        if cfg.mode == "train":
            self.create_subscription(UInt8MultiArray, "learner/weights",
                                     lambda m: self.inbox.offer(wire.msg_to_bytes(m)), qos.LATCHED)
        self.pub_version.publish(Int64(data=self.version))
        self.control_stop, self.control_thread = threading.Event(), None
        if cfg.realtime_priority:  # the executor thread ticks (frame) or feeds the control thread one below it
            set_thread_realtime(max(cfg.realtime_priority - self.scheduler.threaded, 1))
        if self.scheduler.threaded:
            self.control_thread = threading.Thread(target=self._control_loop, name="control-loop", daemon=True)
            self.control_thread.start()
        else:
            self.create_timer(1.0 / cfg.control_hz, self._on_timer)
        self.get_logger().info(f"policy node up: {cfg.mode}, spec {self.spec}, {cfg.control_hz} Hz, ticks on "
                               f"{cfg.tick_source}" + (f" at SCHED_FIFO {cfg.realtime_priority}"
                                                       if cfg.realtime_priority else ""))

    # -- inputs ------------------------------------------------------------------------------
    def _on_frame(self, cam: str, msg: Image) -> None:
        stamp, arrival = wire.seconds_from_stamp(msg.header.stamp), time.time()
        try:
            self.inputs.add_frame(cam, wire.msg_to_image(msg), stamp, arrival)
        except (wire.WireError, ValueError) as exc:  # dropped; the camera's last good frame stays
            self.bad_input_log.log(f"bad frame from {cam} dropped: {exc}")
            return
        if self.scheduler.on_frame(cam, stamp, arrival):
            self._tick()

    def _on_status(self, msg: String) -> None:
        try:
            self.inputs.set_status(wire.msg_to_json(msg, wire.EPISODE_STATUS))
        except wire.WireError as exc:
            self.bad_input_log.log(f"bad episode/status dropped: {exc}")

    def _on_reward(self, msg: Float32MultiArray) -> None:
        if len(msg.data) == 2 and np.all(np.isfinite(msg.data)):
            self.inputs.set_reward(float(msg.data[0]), bool(msg.data[1] > 0.5))

    def _on_teleop(self, msg: Float32MultiArray) -> None:
        try:
            self.inputs.set_teleop(wire.msg_to_action(msg, self.spec.action_dim))
        except wire.WireError as exc:
            self.bad_input_log.log(f"ignoring teleop action: {exc}")

    def _on_ack(self, msg: String) -> None:
        try:
            acked = wire.msg_to_json(msg, wire.LEARNER_ACK).get(self.cfg.source)
        except wire.WireError as exc:
            self.bad_input_log.log(f"bad learner/ack dropped: {exc}")
            return
        if isinstance(acked, int):
            self.sender.ack(acked)  # the outbox has its own lock, never held while it writes to disk

    # -- ticks -------------------------------------------------------------------------------
    def _on_timer(self) -> None:
        """Frame mode: a fallback tick when frames stop (it keeps resending, swapping weights and following
        the episode status; it reports the missing frames)."""
        if self.scheduler.fallback_due():
            self._tick()

    def _control_loop(self) -> None:
        try:
            if self.cfg.realtime_priority:
                set_thread_realtime(self.cfg.realtime_priority)
            self.scheduler.run(self._tick, self.control_stop, self.get_logger().info)
        except Exception as exc:  # noqa: BLE001 - reported, and the node exits non-zero like an executor error
            self.get_logger().fatal(f"control loop stopped: {exc!r}\n{traceback.format_exc()}")
            self.exit_code, self.exit_requested = 1, True

    def _tick(self) -> None:
        self.scheduler.mark_ticked()
        try:
            self._control_step(time.time())
        finally:
            self._after_command()

    def _after_command(self) -> None:
        """Off the frame-to-command path: resend unacknowledged records; swap in new weights."""
        if self.sender is not None:
            self.sender.resend()
        self._swap_weights()

    def _control_step(self, tick_start: float) -> None:
        inputs = self.inputs.snapshot()
        if inputs.status.get("phase") == DONE and not self.train:
            self._finish_deploy()
        if not self.recorder.follow(inputs.status.get("phase"), inputs.status.get("episode_id")):
            return
        obs = self._observe(inputs)
        if obs is None or not self.recorder.step(*obs[:3], inputs.reward, inputs.success):
            return
        image, proprio, _, oldest = obs
        ep = self.recorder.current
        stacked = self.stacker.reset(image) if ep.t == 0 else self.stacker.push(image)
        action = inputs.teleop if inputs.teleop is not None else np.asarray(self.policy.act(
            stacked, proprio, explore=not ep.eval, step=self.weights_step + ep.steps_since_weights), np.float32)
        self.pub_action.publish(wire.array_to_msg(action))
        now = time.time()  # timing: [tick start, frame stamp -> command, tick compute, stamp -> arrival] [s]
        self.pub_timing.publish(Float64MultiArray(data=[tick_start, now - oldest.stamp, now - tick_start,
                                                        oldest.arrival - oldest.stamp]))
        self.recorder.commit(action, inputs.teleop is not None)  # durable before the next tick, after the command

    def _observe(self, inputs):
        """(policy image, proprio, video frame, oldest frame) from fresh inputs, or None (the tick is skipped)."""
        if inputs.frames is None:
            self.get_logger().warning("waiting for fresh camera frames", throttle_duration_sec=5.0)
            return None
        state = self.robot_state.state()
        if state is None or self.robot_state.age() > self.cfg.frame_timeout_s:
            self.get_logger().warning("waiting for a fresh robot state", throttle_duration_sec=5.0)
            return None
        frames = [inputs.frames[c] for c in self.cfg.cameras]
        image = policy_image([f.image for f in frames], self.spec.image_size)
        return (image, np.asarray(self.task.proprio(state), np.float32), inputs.frames[self.video_camera].image,
                min(frames, key=lambda f: f.stamp))

    # -- episodes and transitions ------------------------------------------------------------
    def _video_for(self, eid: int):
        """Deploy records every episode; training every ``video_every``-th (the ``video_camera``'s frames)."""
        if self.train and not (self.cfg.video_every > 0 and eid % self.cfg.video_every == 0):
            return None
        return EpisodeVideo(video_path(self.cfg.videos_dir, eid), self.cfg.control_hz)

    def _emit(self, record: dict, meta: dict) -> None:
        if self.sender is not None:
            self.sender.send(record, {**meta, "weights_version": self.version})

    def _on_episode_closed(self, summary: dict, request_end: bool) -> None:
        self.weights_hold.on_close(summary["episode_id"])
        self.pub_summary.publish(wire.json_to_msg(summary))  # the episode node's episodes.csv uses these counts
        self.get_logger().info(f"episode {summary['episode_id']} done: {summary['steps']} steps, return "
                               f"{summary['return']:.3f}, success {summary['success']}"
                               f"{' (eval)' if summary['eval'] else ''}{' (truncated)' if summary['truncated'] else ''}"
                               f" (weights version {self.version})")
        if request_end and self.cli_end.service_is_ready():
            self.cli_end.call_async(Trigger.Request())
        elif request_end:
            self.get_logger().error("episode/end service not available: the episode node is down?")

    def _publish_transition(self, payload: bytes) -> bool:
        """False when DDS refuses the record (reliable history full while the learner is slow or restarting);
        it is durable in the outbox and resent later, so the control loop goes on."""
        try:
            self.pub_tr.publish(wire.bytes_to_msg(payload))
        except rclpy_implementation.RCLError as exc:
            self.get_logger().warning(f"transition publish refused ({exc}); kept in the outbox for resend",
                                      throttle_duration_sec=5.0)
            return False
        return True

    # -- weights -----------------------------------------------------------------------------
    def _swap_weights(self) -> None:
        """Swap in staged weights, except during an evaluation block (they stay staged until it ended)."""
        ep = self.recorder.current
        if ep is not None:
            self.weights_hold.on_open(ep.episode_id)
        if self.weights_hold.holding and self.version > 0:
            return
        staged = self.inbox.take()
        if staged is None:
            return
        version, step, state = staged
        t0 = time.perf_counter()
        try:
            self.policy.load_policy_state(state)
        except Exception as exc:  # noqa: BLE001 - keep acting with the old weights
            self.get_logger().error(f"weights version {version} rejected: {exc}")
            return
        self.version, self.weights_step = version, step
        if ep is not None:
            ep.steps_since_weights = 0
        self.pub_version.publish(Int64(data=version))
        self.get_logger().info(f"acting with weights version {version} (learner step {step}; swapped in "
                               f"{(time.perf_counter() - t0) * 1e3:.1f} ms, after the tick's command)")

    def _finish_deploy(self) -> None:
        summary = write_deploy_summary(self.cfg.summary_path, self.recorder.done, self.cfg.onnx or self.cfg.checkpoint)
        print(f"deploy: {summary['episodes']} episodes, success rate {summary['success_rate']:.2f}, mean return "
              f"{summary['mean_return']:.3f} -> {self.cfg.summary_path}", flush=True)
        self.exit_requested = True

    def shutdown(self) -> None:
        self.control_stop.set()
        if self.control_thread is not None:
            self.control_thread.join(timeout=5.0)
        if self.sender is not None:
            self.sender.close()


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
