"""policy_node: the fixed-rate actor (control loop at ``control_hz``).

Three tick sources (``tick_source``):
- ``frame`` (default): a tick runs as soon as a new frame set has arrived and a control period has
  passed on the camera clock, so the frame-to-command latency is one frame transport + one
  inference, but the period inherits the camera's jitter; a timer at ``control_hz`` covers for
  stopped cameras.
- ``camera``: a control thread ticks on a fixed grid whose phase is locked to the camera's frame
  clock, ``tick_offset_s`` after each capture (learned from the observed capture-to-arrival delays
  by default; see :mod:`mentor.tick_clock`): a regular period and a constant latency.
- ``timer``: the control thread ticks on a free-running grid and uses the newest frames (latency
  up to one frame interval more).
``realtime_priority`` runs the thread that ticks at SCHED_FIFO, and the executor thread that delivers
the frames one below it (a robot PC with an RT kernel).
Each tick: newest frame per camera (``<camera>/color/image_raw``) -> preprocess -> single-step
image (3*n_cam, H, W) uint8 -> frame stack; proprio from the task and the robot state; action
from ActorPolicy (torch, train or deploy) or OnnxPolicy (deploy); a fresh ``teleop/action``
overrides it (recorded as an intervention); the action goes out on ``policy/action``. A finished
episode's step count and return (as sent to the learner) go out on ``episode/summary`` (JSON).
In train mode every tick's step record (dm_env layout) is appended to the on-disk outbox and
published on ``transitions``; unacknowledged records are resent (see :mod:`mentor.transport`).
New weights (``learner/weights``) are decoded on a thread of their own and swapped in between
ticks; the version in use is published on ``policy/weights_version``. The loop never blocks on
the learner. Deploy mode saves one video per episode and a summary JSON at the end; training saves
every ``video_every``-th episode.
Evaluation inside training (train mode): after every ``eval_every_episodes`` training episodes a block of
``eval_episodes`` deterministic episodes runs (the mean action: no noise, no random warm-up), all with
one weights version (new weights wait until the block ended). Their records are stored and sent like
any other; each record's meta says ``eval``, ``eval_block`` and ``weights_version``, and the is_last
record's meta adds ``success`` (success at any step), ``truncated`` and ``eval_episodes`` (see
:mod:`mentor.evaluation`).
"""
from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, Float64MultiArray, Int64, String, UInt8MultiArray
from std_srvs.srv import Trigger

from . import qos, wire
from .common import (DONE, RUNNING, RepeatThrottle, StateAssembler, drop_realtime, load_task, run_node,
                     set_thread_realtime, set_torch_threads)
from .evaluation import EvalSchedule, WeightsHold
from .params import declare_config, parse_overrides
from .policy_io import EpisodeVideo, FrameStacker, build_spec, load_deploy_policy
from .tick_clock import TickClock, TickClockConfig
from .transport import Outbox


@dataclass
class PolicyNodeConfig:
    mode: str = field(default="train", metadata={"help": "train (send transitions) or deploy (evaluate)"})
    task: str = field(default="reach", metadata={"help": "task name: proprio, action space, episode length"})
    task_config: str = field(default="", metadata={"help": "YAML file overriding the task config"})
    use_sim: bool = field(default=True, metadata={"help": "simulated world (informational)"})
    cameras: list[str] = field(default_factory=lambda: ["front"], metadata={"help": "camera names, channel order"})
    control_hz: float = field(default=10.0, metadata={"help": "control rate [Hz]"})
    tick_source: str = field(default="frame", metadata={"help": "frame: tick when a new frame set arrives (at most control_hz; camera fps should be a multiple of it); camera: fixed-rate ticks phase-locked to the camera (tick_offset_s after capture); timer: free-running fixed-rate ticks"})
    tick_offset_s: float = field(default=-1.0, metadata={"help": "tick_source camera: capture stamp -> tick [s]; < 0 = learn it (99th percentile of the capture -> arrival delay + 1 ms)"})
    realtime_priority: int = field(default=0, metadata={"help": "SCHED_FIFO priority (1-99) of the thread that ticks (camera/timer: the executor thread one below); 0 = normal scheduling. Needs root, CAP_SYS_NICE or an rtprio limit"})
    agent_config: str = field(default="tiny", metadata={"help": "mentor_policy preset or YAML path"})
    agent_overrides: str = field(default="", metadata={"help": "YAML mapping of AgentConfig overrides"})
    device: str = field(default="auto", metadata={"help": "torch device: auto | cpu | cuda"})
    torch_threads: int = field(default=1, metadata={"help": "torch CPU threads (0 = torch default); 1 avoids thread contention when nodes share few cores"})
    source: str = field(default="robot", metadata={"help": "transition source name (unique per robot)"})
    outbox_dir: str = field(default="runs/default/actor/outbox", metadata={"help": "durable transition outbox"})
    resend_after_s: float = field(default=1.0, metadata={"help": "resend unacknowledged records after [s]"})
    resend_per_tick: int = field(default=20, metadata={"help": "max records resent per control tick"})
    teleop_timeout_s: float = field(default=0.3, metadata={"help": "a teleop action is fresh for [s]"})
    frame_timeout_s: float = field(default=1.0, metadata={"help": "frames/state older than this skip the tick [s]"})
    checkpoint: str = field(default="", metadata={"help": "deploy: checkpoint or policy weights (.pt)"})
    onnx: str = field(default="", metadata={"help": "deploy: ONNX policy (used instead of checkpoint)"})
    ort_threads: int = field(default=1, metadata={"help": "deploy with ONNX: ONNX Runtime intra-op threads"})
    ort_spin: bool = field(default=False, metadata={"help": "deploy with ONNX: threads spin between ticks (dedicated CPU: lowest latency)"})
    max_episodes: int = field(default=0, metadata={"help": "deploy: exit after this many episodes (0 = never)"})
    videos_dir: str = field(default="runs/default/videos", metadata={"help": "episode videos (mp4) directory"})
    video_every: int = field(default=10, metadata={"help": "train: record every N-th episode (0 = none); deploy records all"})
    summary_path: str = field(default="runs/default/deploy_summary.json", metadata={"help": "deploy summary JSON"})
    eval_every_episodes: int = field(default=20, metadata={"help": "train: run an evaluation block after every N training episodes [episodes] (0 = no evaluation)"})
    eval_episodes: int = field(default=5, metadata={"help": "train: deterministic episodes per evaluation block [episodes], all with one weights version"})

    def __post_init__(self) -> None:
        if self.tick_source not in ("frame", "camera", "timer"):
            raise ValueError(f"tick_source must be frame, camera or timer, got {self.tick_source!r}")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError(f"realtime_priority must be in 0..99, got {self.realtime_priority}")
        if self.mode not in ("train", "deploy"):
            raise ValueError(f"mode must be train or deploy, got {self.mode!r}")
        if self.ort_threads < 1:
            raise ValueError(f"ort_threads must be >= 1, got {self.ort_threads}")
        if self.video_every < 0:
            raise ValueError(f"video_every must be >= 0, got {self.video_every}")
        if self.control_hz <= 0 or self.resend_after_s <= 0 or self.resend_per_tick < 1:
            raise ValueError("control_hz and resend_after_s must be > 0 and resend_per_tick >= 1")
        if self.tick_offset_s >= 1.0 / self.control_hz:
            raise ValueError(f"tick_offset_s must be below the control period, got {self.tick_offset_s}")
        if self.mode == "deploy" and not (self.checkpoint or self.onnx):
            raise ValueError("deploy mode needs checkpoint or onnx")
        EvalSchedule(self.eval_every_episodes, self.eval_episodes)  # validates both


class ReceivedFrame(NamedTuple):
    """The newest valid frame of one camera, as stored by the frame callback."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    stamp: float  # capture stamp from the header [wall s, the camera's clock]
    arrival: float  # arrival at this node [wall s] (timing: stamp -> arrival)
    received: float  # arrival at this node [monotonic s] (freshness checks, immune to clock steps)


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        self.cfg = declare_config(self, PolicyNodeConfig)
        if not self.cfg.onnx:  # the ONNX Runtime path never imports torch (robot PCs without it)
            set_torch_threads(self.cfg.torch_threads)
        self.train = self.cfg.mode == "train"
        self.task = load_task(self.cfg.task, self.cfg.task_config)
        from mentor_policy.config import load_agent_config
        self.agent_cfg = load_agent_config(self.cfg.agent_config, parse_overrides(self.cfg.agent_overrides))
        self.spec = build_spec(self.task, len(self.cfg.cameras))
        self.policy, self.version = self._make_policy()
        self.agent_cfg = getattr(self.policy, "agent_cfg", None) or self.agent_cfg  # deploy: the checkpoint's
        # evaluation blocks inside training; the schedule depends on episode ids only (restart-proof)
        self.schedule = EvalSchedule(self.cfg.eval_every_episodes if self.train else 0, self.cfg.eval_episodes)
        self.weights_hold = WeightsHold(self.schedule)
        self.weights_arrivals = self.weights_staged_arrival = 0  # learner/weights messages received / staged
        self.stacker = FrameStacker(self.agent_cfg.frame_stack)
        self.frames: dict[str, ReceivedFrame] = {}  # camera -> its newest valid frame
        self.robot_state = StateAssembler()
        # guards frames, status, reward, teleop, pending weights and the tick clock; never held across disk I/O
        self.lock = threading.Lock()
        self.status: dict = {}
        self.bad_input_log = RepeatThrottle(self.get_logger().error, period_s=2.0)  # one line per kind per 2 s
        self.frame_hw: dict[str, tuple[int, int]] = {}  # camera -> (H, W) of its frames, fixed by its first good frame
        self.reward = (0.0, False)
        self.teleop: tuple[float, np.ndarray] | None = None
        self.pending_weights = None
        self.weights_step = 0
        self.ep = None  # current episode bookkeeping (dict) or None
        self.done_episodes: list[dict] = []
        self.ticks = {"late": 0, "skipped": 0, "sent": 0, "resent": 0, "publish_failed": 0, "bad_frames": 0,
                      "bad_messages": 0}
        self.exit_requested, self.exit_code = False, 0
        self.outbox = Outbox(self.cfg.outbox_dir) if self.train else None
        self.resume = self._last_outbox_record()  # (episode_id, t, record) of the newest durable record
        self.ended_episode = None if self.resume is None else self.resume[0]
        self.period = 1.0 / self.cfg.control_hz
        self.last_tick = 0.0  # time.monotonic() of the last tick that ran
        self.ticked_stamps: dict[str, float] = {}  # camera -> stamp of the frame the last frame-triggered tick used
        self.frame_interval = self.period  # frame mode: running estimate of the camera frame interval [s]
        control_group = MutuallyExclusiveCallbackGroup()  # frames and the timer: never two ticks at once
        for cam in self.cfg.cameras:
            self.create_subscription(Image, f"{cam}/color/image_raw", lambda m, c=cam: self._on_frame(c, m), qos.SENSOR,
                                     callback_group=control_group)
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
            self.pub_tr = self.create_publisher(UInt8MultiArray, "transitions", qos.TRANSITIONS)
            self.create_subscription(String, "learner/ack", self._on_ack, qos.LATCHED)
            self.create_subscription(UInt8MultiArray, "learner/weights", self._on_weights, qos.LATCHED,
                                     callback_group=MutuallyExclusiveCallbackGroup())
        self.pub_version.publish(Int64(data=self.version))
        self.control_stop = threading.Event()
        self.frame_arrived = threading.Event()  # camera mode: a frame came in (wakes a tick waiting for a late one)
        self.control_thread = None
        if self.cfg.realtime_priority:
            # the executor thread ticks (frame) or delivers the frames to the control thread (camera, timer): at
            # FIFO too, one below a control thread, so that it is never the GIL holder a tick waits for while it
            # is preempted. Threads it starts later inherit it: the weight decoders drop back to normal.
            own = self.cfg.realtime_priority - (self.cfg.tick_source != "frame")
            set_thread_realtime(max(own, 1))
        if self.cfg.tick_source == "frame":
            self.create_timer(self.period, self._on_timer, callback_group=control_group)
        else:
            self.clock = TickClock(TickClockConfig(self.period, lock_to_frames=self.cfg.tick_source == "camera",
                                                   offset_s=self.cfg.tick_offset_s), start=time.time())
            self.control_thread = threading.Thread(target=self._control_loop, name="control-loop", daemon=True)
            self.control_thread.start()
        self.get_logger().info(f"policy node up: {self.cfg.mode}, spec {self.spec}, {self.cfg.control_hz} Hz, "
                               f"ticks on {self.cfg.tick_source}"
                               + (f" at SCHED_FIFO {self.cfg.realtime_priority}" if self.cfg.realtime_priority else ""))

    # -- set-up ------------------------------------------------------------------------------
    def _make_policy(self):
        if self.train:
            from mentor_policy.policy import ActorPolicy
            return ActorPolicy(self.spec, self.agent_cfg, device=self.cfg.device), 0
        return load_deploy_policy(self.cfg.onnx, self.cfg.checkpoint, self.spec, self.agent_cfg, self.cfg.device,
                                  self.cfg.ort_threads, self.cfg.ort_spin, log=self.get_logger().warning,
                                  task=self.cfg.task, cameras=self.cfg.cameras), 0

    def _last_outbox_record(self):
        """(episode_id, t, record) of the newest outbox record: a restarted node never continues it."""
        newest = self.outbox.newest() if self.outbox else None
        if newest is None:
            return None
        from mentor_policy.replay import decode_step_record
        rec, meta = decode_step_record(newest[1])
        return int(meta["episode_id"]), int(meta["t"]), rec

    # -- callbacks ---------------------------------------------------------------------------
    def _publish_timing(self, tick_start: float, frame_stamp: float, frame_arrival: float) -> None:
        """policy/timing: [tick start (wall s), frame stamp -> command (s), tick compute (s),
        frame stamp -> frame arrival at this node (s)] for the oldest frame the command used."""
        now = time.time()
        self.pub_timing.publish(Float64MultiArray(
            data=[tick_start, now - frame_stamp, now - tick_start, frame_arrival - frame_stamp]))

    def _on_frame(self, cam: str, msg: Image) -> None:
        """Validate + convert on arrival (a bad frame is logged and dropped; the last good one stays)."""
        try:
            image = self._check_frame_size(cam, wire.msg_to_image(msg, self.frame_hw.get(cam)))
        except wire.WireError as exc:
            self.ticks["bad_frames"] += 1
            self.bad_input_log.log(f"bad frame from {cam} dropped ({self.ticks['bad_frames']} so far): {exc}")
            return
        stamp = wire.seconds_from_stamp(msg.header.stamp)
        arrival = time.time()
        with self.lock:
            previous = self.frames.get(cam)
            self.frames[cam] = ReceivedFrame(image, stamp, arrival, time.monotonic())
            if cam == self.cfg.cameras[0] and self.cfg.tick_source == "camera":  # the first camera paces the loop
                self.clock.on_frame(stamp, arrival)
        if self.cfg.tick_source == "camera":
            self.frame_arrived.set()
        elif self.cfg.tick_source == "frame":
            if cam == self.cfg.cameras[0] and previous is not None and 0.0 < stamp - previous.stamp < 1.0:
                self.frame_interval += 0.2 * (min(stamp - previous.stamp, self.period) - self.frame_interval)
            if self._frame_set_due():
                self._run_tick()

    def _check_frame_size(self, cam: str, image: np.ndarray) -> np.ndarray:
        """A camera's first good frame fixes its size (later frames of another size are refused, not
        resized); a frame smaller than the policy's input (H, W) is refused."""
        h, w = image.shape[:2]
        if cam not in self.frame_hw:
            min_h, min_w = self.spec.image_size
            if h < min_h or w < min_w:
                raise wire.WireError(f"frame {h}x{w} is smaller than the policy input {min_h}x{min_w}")
            self.frame_hw[cam] = (h, w)
            self.get_logger().info(f"camera {cam}: {h}x{w} frames")
        return image

    def _frame_set_due(self) -> bool:
        """True when every camera has a frame newer than the last tick's and a control period has passed.

        Periods are measured on the camera clock (frame stamps): with a camera at k x ``control_hz`` every
        k-th frame set ticks. Half a frame interval of slack absorbs stamp jitter.
        """
        with self.lock:
            stamps = {c: f.stamp for c, f in self.frames.items()}
        if len(stamps) < len(self.cfg.cameras):
            return False
        if any(stamps[c] <= self.ticked_stamps.get(c, -np.inf) for c in self.cfg.cameras):
            return False
        last = max(self.ticked_stamps.values(), default=-np.inf)
        return min(stamps.values()) - last >= self.period - 0.5 * self.frame_interval

    def _on_timer(self) -> None:
        """Frame mode: a fallback tick when frames stop for two periods (it keeps resending, swapping weights
        and following the episode status; it reports the missing frames)."""
        if time.monotonic() - self.last_tick > 2.0 * self.period:
            self._run_tick()

    def _control_loop(self) -> None:
        """Camera and timer modes: tick at the TickClock's times until shutdown; an error ends the node."""
        try:
            if self.cfg.realtime_priority:
                set_thread_realtime(self.cfg.realtime_priority)
            warned = False
            while not self.control_stop.is_set():
                with self.lock:  # the executor thread feeds the clock
                    t = self.clock.next_tick(time.time())
                    mismatch, locked = self.clock.rate_mismatch, self.clock.locked
                    interval, offset = self.clock.frame_interval(), self.clock.offset()
                if mismatch and not warned:
                    warned = True
                    self.get_logger().warning(f"camera frame interval {interval * 1e3:.1f} ms is no integer fraction "
                                              "of the control period: ticks are not phase-locked")
                if locked:
                    self.get_logger().info(f"ticks locked to the camera, {offset * 1e3:.1f} ms after capture",
                                           throttle_duration_sec=30.0)
                if self.control_stop.wait(max(0.0, t - time.time())):
                    break
                self._await_late_frame(t)
                self._run_tick()
        except Exception as exc:  # noqa: BLE001 - reported, and the node exits non-zero like an executor error
            self.get_logger().fatal(f"control loop stopped: {exc!r}\n{traceback.format_exc()}")
            self.exit_code, self.exit_requested = 1, True

    def _await_late_frame(self, tick: float) -> None:
        """Camera mode: when this tick's frame is late, wait for it up to a quarter period, then act on what there
        is. A rare late frame then costs that tick some jitter instead of a whole period of latency."""
        deadline = tick + 0.25 * self.period
        while not self.control_stop.is_set():
            with self.lock:
                due = self.clock.frame_stamp_due(tick)
                newest = self.frames.get(self.cfg.cameras[0])
                if newest is not None and newest.stamp > due:
                    return
                self.frame_arrived.clear()
            remaining = deadline - time.time()
            if remaining <= 0:
                return
            self.frame_arrived.wait(remaining)

    def _run_tick(self) -> None:
        self.last_tick = time.monotonic()
        with self.lock:
            self.ticked_stamps = {c: f.stamp for c, f in self.frames.items()}
        self._tick()

    def _on_status(self, msg: String) -> None:
        try:
            status = wire.msg_to_json(msg, wire.EPISODE_STATUS)
        except wire.WireError as exc:
            self.ticks["bad_messages"] += 1
            self.bad_input_log.log(f"bad episode/status dropped: {exc}")
            return
        with self.lock:
            self.status = status

    def _on_reward(self, msg: Float32MultiArray) -> None:
        if len(msg.data) == 2 and np.all(np.isfinite(msg.data)):
            with self.lock:
                self.reward = (float(msg.data[0]), bool(msg.data[1] > 0.5))

    def _on_teleop(self, msg: Float32MultiArray) -> None:
        try:
            action = wire.msg_to_action(msg, self.spec.action_dim)
        except wire.WireError as exc:
            self.get_logger().error(f"ignoring teleop action: {exc}")
            return
        with self.lock:
            self.teleop = (time.monotonic(), np.clip(action, -1, 1))

    def _on_ack(self, msg: String) -> None:
        try:
            acked = wire.msg_to_json(msg, wire.LEARNER_ACK).get(self.cfg.source)
        except wire.WireError as exc:
            self.ticks["bad_messages"] += 1
            self.bad_input_log.log(f"bad learner/ack dropped: {exc}")
            return
        if isinstance(acked, int):
            self.outbox.ack(acked)  # the outbox has its own lock, never held while it writes to disk

    def _on_weights(self, msg: UInt8MultiArray) -> None:
        """Hand the payload to a decoder thread: decoding large weights must not delay a control tick."""
        payload = wire.msg_to_bytes(msg)
        with self.lock:
            self.weights_arrivals += 1
            arrival = self.weights_arrivals
        threading.Thread(target=self._decode_weights, args=(payload, arrival), name="weights-decoder",
                         daemon=True).start()

    def _decode_weights(self, payload: bytes, arrival: int) -> None:
        drop_realtime()  # started from the executor thread, which may tick at SCHED_FIFO: decode at normal priority
        try:
            from .weights import decode_weights  # torch: only on the training path
            version, step, state = decode_weights(payload)
        except ValueError as exc:
            self.get_logger().error(f"ignoring weights message: {exc}")
            return
        with self.lock:  # the last message to arrive wins, even if two decoders finish out of order
            if arrival > self.weights_staged_arrival:
                self.weights_staged_arrival = arrival
                self.pending_weights = (version, step, state)

    # -- control loop ------------------------------------------------------------------------
    def _tick(self) -> None:
        """One control tick: the command first, then the work that may wait (persist/resend, new weights)."""
        self.tick_start = time.time()
        try:
            self._control_step()
        finally:
            self._after_command()

    def _after_command(self) -> None:
        """Off the frame-to-command path: resend unacknowledged records; stage new weights for the next tick."""
        if self.train:
            self._resend()
        self._swap_weights()

    def _control_step(self) -> None:
        with self.lock:
            status = dict(self.status)
        if status.get("phase") == DONE and not self.train:
            self._finish_deploy()
        if self.ep is not None and status.get("episode_id") != self.ep["id"]:
            self._close_episode(truncated=True)  # the episode node moved on (restart): truncate ours
        if status.get("phase") != RUNNING:
            return
        eid = int(status["episode_id"])
        if self.ep is None:
            if self.resume is not None and eid == self.resume[0]:
                self._truncate_resumed(eid)
                return
            if self.ended_episode is not None and eid <= self.ended_episode:
                return
            self._open_episode(eid)
            self.weights_hold.on_open(eid)
        obs = self._observe()
        if obs is None:
            return
        self._step(*obs)

    def _observe(self):
        now = time.monotonic()
        with self.lock:  # a snapshot: the executor thread may store newer frames while this tick runs
            frames = dict(self.frames)
        if len(frames) < len(self.cfg.cameras) or any(now - frames[c].received > self.cfg.frame_timeout_s
                                                      for c in self.cfg.cameras):
            self.ticks["skipped"] += 1
            self.get_logger().warning("waiting for fresh camera frames", throttle_duration_sec=5.0)
            return None
        state = self.robot_state.state()
        if state is None or self.robot_state.age() > self.cfg.frame_timeout_s:
            self.ticks["skipped"] += 1
            self.get_logger().warning("waiting for a fresh robot state", throttle_duration_sec=5.0)
            return None
        from robot_envs.camera import preprocess
        chans = []
        for cam in self.cfg.cameras:
            raw = frames[cam].image
            chans.append(preprocess(raw, None, self.spec.image_size).transpose(2, 0, 1))
        image = np.ascontiguousarray(np.concatenate(chans, axis=0))
        proprio = np.asarray(self.task.proprio(state), dtype=np.float32)
        oldest = min((frames[c] for c in self.cfg.cameras), key=lambda f: f.stamp)
        return image, proprio, raw, (oldest.stamp, oldest.arrival)

    def _step(self, image: np.ndarray, proprio: np.ndarray, raw: np.ndarray, frame_times: tuple[float, float]) -> None:
        """Act on one observation; ``frame_times``: (capture stamp, arrival) [wall s] of its oldest frame."""
        ep = self.ep
        with self.lock:
            reward, success = self.reward
            teleop = self.teleop
        first = ep["t"] == 0
        reward = 0.0 if first else reward
        terminal = (not first) and success and self.task.terminate_on_success
        last = terminal or ep["t"] >= self.task.episode_length
        ep["return"] += reward
        ep["success"] = ep["success"] or (success and not first)
        # this tick's step record: its observation with the action and reward that led to it
        record = {"image": image, "proprio": proprio, "action": ep["prev_action"], "reward": reward,
                  "discount": 0.0 if terminal else 1.0, "is_first": first, "is_last": last,
                  "intervention": ep["prev_intervention"]}
        if last:
            self._record(record, raw)
            self._close_episode(truncated=False)
            return
        stacked = self.stacker.push(image, reset=first)
        fresh = teleop is not None and time.monotonic() - teleop[0] < self.cfg.teleop_timeout_s
        if fresh:
            action = teleop[1].astype(np.float32)
        else:
            action = self._act(stacked, proprio)
        self.pub_action.publish(wire.array_to_msg(action))
        self._publish_timing(self.tick_start, *frame_times)
        # persisting (fsync) and sending the record does not hold the command back; it is on disk
        # before the learner can see it, and before the next tick acts
        self._record(record, raw)
        ep["prev_action"], ep["prev_intervention"] = action, fresh
        ep["t"] += 1

    def _record(self, record: dict, raw: np.ndarray) -> None:
        """Persist + send the step record (train) and add the camera frame to the episode video."""
        self._emit(record)
        if self.ep["video"] is not None:
            self.ep["video"].add(raw)

    def _act(self, stacked: np.ndarray, proprio: np.ndarray) -> np.ndarray:
        """Train: exploration at the learner's step count, or the mean action in an eval episode."""
        if self.train:
            step = self.weights_step + self.ep["steps_since_weights"]
            self.ep["steps_since_weights"] += 1
            return np.asarray(self.policy.act(stacked, proprio, step, eval_mode=self.ep["eval"]), dtype=np.float32)
        return np.asarray(self.policy.act(stacked, proprio), dtype=np.float32)

    def _records_video(self, eid: int) -> bool:
        """Deploy records every episode; training every ``video_every``-th (the policy's view, 84x84)."""
        if not self.train:
            return True
        return self.cfg.video_every > 0 and eid % self.cfg.video_every == 0

    def _open_episode(self, eid: int) -> None:
        video = EpisodeVideo(Path(self.cfg.videos_dir) / f"episode_{eid:05d}.mp4", self.cfg.control_hz) \
            if self._records_video(eid) else None
        self.ep = {"id": eid, "t": 0, "return": 0.0, "success": False, "prev_action": np.zeros(self.spec.action_dim,
                   np.float32), "prev_intervention": False, "video": video, "steps_since_weights": 0,
                   "last_sent": None, "eval": self.schedule.is_eval(eid) or not self.train,
                   "eval_block": self.schedule.block(eid)}
        kind = f", eval block {self.ep['eval_block']}" if self.ep["eval_block"] >= 0 else ""
        self.get_logger().info(f"episode {eid} started (weights version {self.version}{kind})")

    def _truncate_resumed(self, eid: int) -> None:
        """Restarted mid-episode ``eid``: close the learner's copy (is_last) and ask for a new episode."""
        _eid, t, record = self.resume
        self.resume = None
        self.get_logger().warning(f"restarted during episode {eid} (t={t}): truncating it and requesting a new one")
        self._open_episode(eid)
        self.ep.update(t=t + 1, last_sent={**record, "is_last": bool(record["is_last"])})
        self._close_episode(truncated=True, request_end=True)

    def _close_episode(self, truncated: bool, request_end: bool | None = None) -> None:
        ep, self.ep = self.ep, None
        self.ended_episode = ep["id"]
        self.weights_hold.on_close(ep["id"])
        if truncated and ep["last_sent"] is not None and not ep["last_sent"]["is_last"]:
            self._emit({**ep["last_sent"], "is_first": False, "is_last": True, "reward": 0.0, "discount": 1.0},
                       ep=ep, truncated=True)  # close the learner's copy; the repeated obs carries no reward
        if ep["video"] is not None:
            ep["video"].close()
        summary = {"episode_id": ep["id"], "steps": ep["t"], "return": ep["return"], "success": ep["success"],
                   "truncated": truncated, "eval": ep["eval"]}
        self.done_episodes.append(summary)
        self.pub_summary.publish(wire.json_to_msg(summary))  # the episode node's episodes.csv uses these counts
        self.get_logger().info(f"episode {ep['id']} done: {ep['t']} steps, return {ep['return']:.3f}, "
                               f"success {ep['success']}{' (eval)' if ep['eval'] else ''}"
                               f"{' (truncated)' if truncated else ''}")
        request_end = (not truncated) if request_end is None else request_end
        if request_end and self.cli_end.service_is_ready():
            self.cli_end.call_async(Trigger.Request())
        elif request_end:
            self.get_logger().error("episode/end service not available: the episode node is down?")

    # -- transitions -------------------------------------------------------------------------
    def _emit(self, record: dict, ep: dict | None = None, truncated: bool = False) -> None:
        ep = ep or self.ep
        ep["last_sent"] = record
        if not self.train:
            return
        from mentor_policy.replay import encode_step_record
        seq = self.outbox.next_seq
        payload = encode_step_record(record, self._record_meta(seq, ep, bool(record["is_last"]), truncated))
        self.outbox.append(seq, payload)  # fsync: holds no lock, so frames and acks keep arriving
        self.outbox.mark_sent(seq)
        if self._publish_transition(payload):
            self.ticks["sent"] += 1

    def _record_meta(self, seq: int, ep: dict, last: bool, truncated: bool) -> dict:
        """Meta of a step record: transport ids, evaluation flags; the is_last one adds the episode's outcome."""
        meta = {"source": self.cfg.source, "seq": seq, "episode_id": ep["id"], "t": ep["t"], "eval": ep["eval"],
                "eval_block": ep["eval_block"], "weights_version": self.version}
        if last:
            meta.update(success=bool(ep["success"]), truncated=truncated,
                        eval_episodes=self.schedule.episodes if ep["eval"] else 0)
        return meta

    def _resend(self) -> None:
        due = self.outbox.due(self.cfg.resend_after_s, self.cfg.resend_per_tick)
        for seq, payload in due:
            if not self._publish_transition(payload):
                return  # DDS is saturated: try again next tick (the records stay in the outbox)
            self.outbox.mark_sent(seq)
            self.ticks["resent"] += 1

    def _publish_transition(self, payload: bytes) -> bool:
        """Publish one encoded record; False when DDS refuses it (reliable history full while the learner is
        slow or restarting). The record is already durable in the outbox and is resent later, so the
        control loop goes on."""
        try:
            self.pub_tr.publish(wire.bytes_to_msg(payload))
        except rclpy_implementation.RCLError as exc:
            self.ticks["publish_failed"] += 1
            self.get_logger().warning(f"transition publish refused ({exc}); kept in the outbox for resend",
                                      throttle_duration_sec=5.0)
            return False
        return True

    def _swap_weights(self) -> None:
        """Swap in staged weights, except during an evaluation block (they stay staged until it ended)."""
        if self.weights_hold.holding and self.version > 0:
            return
        with self.lock:
            pending, self.pending_weights = self.pending_weights, None
        if pending is None:
            return
        version, step, state = pending
        t0 = time.perf_counter()
        try:
            self.policy.load_policy_state(state)
        except Exception as exc:  # noqa: BLE001 - keep acting with the old weights
            self.get_logger().error(f"weights version {version} rejected: {exc}")
            return
        self.version, self.weights_step = version, step
        if self.ep is not None:
            self.ep["steps_since_weights"] = 0
        self.pub_version.publish(Int64(data=version))
        self.get_logger().info(f"acting with weights version {version} (learner step {step}; swapped in "
                               f"{(time.perf_counter() - t0) * 1e3:.1f} ms, after the tick's command)")

    def _finish_deploy(self) -> None:
        n = len(self.done_episodes)
        ok = [e for e in self.done_episodes if not e["truncated"]]
        summary = {"episodes": n, "success_rate": float(np.mean([e["success"] for e in ok])) if ok else 0.0,
                   "mean_return": float(np.mean([e["return"] for e in ok])) if ok else 0.0,
                   "per_episode": self.done_episodes, "policy": self.cfg.onnx or self.cfg.checkpoint}
        from mentor_policy.fileio import atomic_write_bytes
        Path(self.cfg.summary_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(self.cfg.summary_path), json.dumps(summary, indent=2).encode())
        print(f"deploy: {n} episodes, success rate {summary['success_rate']:.2f}, mean return "
              f"{summary['mean_return']:.3f} -> {self.cfg.summary_path}", flush=True)
        self.exit_requested = True

    def shutdown(self) -> None:
        self.control_stop.set()
        if self.control_thread is not None:
            self.control_thread.join(timeout=5.0)
        if self.outbox is not None:
            self.outbox.close()


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
