"""episode_node: episode lifecycle, reward and success.

Phases (``episode/status``, std_msgs/String JSON, transient-local): RESETTING (scene randomised in
sim, arm moved to the task's reset pose) -> WAITING_FOR_HUMAN (tasks with ``needs_human_reset``,
until ``episode/confirm_reset``) -> RUNNING (reward/success published on ``episode/reward`` as
Float32MultiArray [reward, success]) -> ENDED (``episode/end`` called by the policy node at the
time limit or on success) -> RESETTING ... ; DONE after ``max_episodes`` (deploy).
Rewards come from the task (robot state + sim object poses + human label). A restart of this node
never continues an interrupted episode: its id is skipped (the old episode is truncated).
Every finished episode is appended to ``<run_dir>/episodes.csv``, with the step count, return and success
the policy node's episode recorder reports on ``episode/summary`` (what the learner stored; this node's own
counts are the fallback).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped, WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, String
from std_srvs.srv import SetBool, Trigger

from mentor_policy.fileio import atomic_write_bytes, truncate_torn_line
from robot_envs.labels import LabelStore

from . import qos, wire
from .common import DONE, ENDED, RESETTING, RUNNING, WAITING_FOR_HUMAN, StateAssembler, load_task, run_node
from .params import declare_config

CSV_HEADER = "episode_id,steps,return,success,truncated,human_label,wall_time\n"


@dataclass
class EpisodeNodeConfig:
    task: str = field(default="reach", metadata={"help": "task name: reward, success, reset pose"})
    task_config: str = field(default="", metadata={"help": "YAML file overriding the task config"})
    use_sim: bool = field(default=True, metadata={"help": "call sim/reset_scene on every reset"})
    run_dir: str = field(default="runs/default", metadata={"help": "episodes.csv and episode_state.json go here"})
    cameras: list[str] = field(default_factory=lambda: ["front"], metadata={"help": "camera names (image rewards)"})
    use_images: bool = field(default=False, metadata={"help": "give the task the newest camera frames (real "
                                                              "tasks: vision / classifier rewards)"})
    reward_hz: float = field(default=20.0, metadata={"help": "reward/success publishing rate while RUNNING [Hz]"})
    max_episodes: int = field(default=0, metadata={"help": "phase DONE after this many episodes (0 = never)"})
    service_timeout_s: float = field(default=60.0, metadata={"help": "time limit of reset service calls [s]; longer "
                                                                     "than the robot's reset_timeout_s"})
    reset_retries: int = field(default=3, metadata={"help": "reset attempts (with robot/recover between)"})
    label_frames_dir: str = field(default="", metadata={"help": "store the newest frame of every camera with each "
                                                                "episode/label_success call here, for the success "
                                                                "classifier (robot_envs.labels; '' = off)"})

    def __post_init__(self) -> None:
        if self.reward_hz <= 0 or self.service_timeout_s <= 0:
            raise ValueError("reward_hz and service_timeout_s must be > 0")
        if self.max_episodes < 0 or self.reset_retries < 1:
            raise ValueError("max_episodes must be >= 0 and reset_retries >= 1")


class EpisodeNode(Node):
    def __init__(self) -> None:
        super().__init__("episode")
        self.cfg = declare_config(self, EpisodeNodeConfig)
        self.task = load_task(self.cfg.task, self.cfg.task_config)
        self.run_dir = Path(self.cfg.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.run_dir / "episode_state.json"
        self.episode_id = self._recover_episode_id()
        self.phase, self.step, self.ret, self.success, self.label = RESETTING, 0, 0.0, False, None
        self.last_reward = 0.0
        self.finished = 0
        self.end_event, self.confirm_event = threading.Event(), threading.Event()
        self.robot_state = StateAssembler()
        self.objects: dict[str, np.ndarray] = {}
        self.create_subscription(PoseStamped, "robot/current_pose", self.robot_state.on_pose, qos.STATE)
        self.create_subscription(JointState, "robot/joint_states", self.robot_state.on_joints, qos.STATE)
        self.create_subscription(WrenchStamped, "robot/wrench", self.robot_state.on_wrench, qos.STATE)
        self.object_names = tuple(getattr(self.task, "object_names", ()))  # sim tasks only
        for name in self.object_names:
            self.create_subscription(PoseStamped, f"sim/objects/{name}/pose",
                                     lambda m, n=name: self.objects.__setitem__(n, wire.msg_to_pose(m)), qos.STATE)
        self.create_subscription(Float32MultiArray, "policy/action", self._on_action, qos.COMMAND)
        self.summaries: dict[int, dict] = {}  # episode id -> the policy's episode/summary
        self.summary_event = threading.Event()
        self.create_subscription(String, "episode/summary", self._on_summary, qos.STATE)
        self.images: dict[str, np.ndarray] = {}  # newest frame per camera, for image-based rewards
        self.label_store = LabelStore(self.cfg.label_frames_dir) if self.cfg.label_frames_dir else None
        if self.cfg.use_images or self.task.needs_images or self.label_store is not None:
            for cam in self.cfg.cameras:
                self.create_subscription(Image, f"{cam}/color/image_raw", lambda m, c=cam: self._on_image(c, m),
                                         qos.SENSOR)
        self.pub_status = self.create_publisher(String, "episode/status", qos.LATCHED)
        self.pub_reward = self.create_publisher(Float32MultiArray, "episode/reward", qos.STATE)
        self.create_service(Trigger, "episode/end", self._srv_end)
        self.create_service(Trigger, "episode/confirm_reset", self._srv_confirm)
        self.create_service(SetBool, "episode/label_success", self._srv_label)
        self.cli_robot_reset = self.create_client(Trigger, "robot/reset")
        self.cli_recover = self.create_client(Trigger, "robot/recover")
        self.cli_scene = self.create_client(Trigger, "sim/reset_scene")
        self.create_timer(1.0 / self.cfg.reward_hz, self._publish_reward)
        self.create_timer(1.0, self._publish_status)
        self.exit_requested, self.exit_code = False, 0
        self.worker = threading.Thread(target=self._lifecycle, daemon=True)
        self.worker.start()

    # -- persistence -------------------------------------------------------------------------
    def _recover_episode_id(self) -> int:
        if not self.state_path.exists():
            return -1
        try:
            saved = json.loads(self.state_path.read_text())
            last, phase = int(saved["episode_id"]), saved["phase"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"{self.state_path} is corrupt ({exc}); move it away to start a new count") from exc
        if phase == RUNNING:
            self.get_logger().warning(f"restarted while episode {last} was running: it is truncated; "
                                   f"continuing with episode {last + 1}")
        return last

    def _save_state(self) -> None:
        atomic_write_bytes(self.state_path, json.dumps({"episode_id": self.episode_id, "phase": self.phase}).encode())

    # -- lifecycle ---------------------------------------------------------------------------
    def _lifecycle(self) -> None:
        try:
            while not self.exit_requested:
                self._set_phase(RESETTING)
                self._reset()
                if self.task.needs_human_reset:
                    self._set_phase(WAITING_FOR_HUMAN)
                    self.get_logger().info("scene reset: waiting for episode/confirm_reset")
                    self.confirm_event.clear()
                    self.confirm_event.wait()
                    if self.exit_requested:
                        return
                self.episode_id += 1
                self.step, self.ret, self.success, self.label = 0, 0.0, False, None
                self.end_event.clear()
                self._set_phase(RUNNING)
                self.end_event.wait()
                if self.exit_requested:
                    return  # shutting down mid-episode: the restarted node truncates it
                self._set_phase(ENDED)
                self._adopt_policy_counts()
                self._write_csv(truncated=not self.success)  # time limit (or interrupted), not a success
                self.finished += 1
                if self.cfg.max_episodes and self.finished >= self.cfg.max_episodes:
                    self._set_phase(DONE)
                    return
        except Exception as exc:  # noqa: BLE001 - fatal for this node: logged, process exits non-zero
            self.get_logger().fatal(f"episode lifecycle failed: {exc}")
            self.exit_code, self.exit_requested = 2, True

    def _call(self, client, what: str) -> tuple[bool, str]:
        if not client.wait_for_service(timeout_sec=self.cfg.service_timeout_s):
            return False, f"{what} service not available"
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + self.cfg.service_timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not future.done():
            return False, f"{what} timed out"
        return future.result().success, future.result().message

    def _reset(self) -> None:
        for attempt in range(1, self.cfg.reset_retries + 1):
            ok, msg = (True, "") if not self.cfg.use_sim else self._call(self.cli_scene, "sim/reset_scene")
            if ok:
                ok, msg = self._call(self.cli_robot_reset, "robot/reset")
            if ok:
                return
            self.get_logger().error(f"reset attempt {attempt}/{self.cfg.reset_retries} failed: {msg}")
            self._call(self.cli_recover, "robot/recover")
        raise RuntimeError(f"reset failed {self.cfg.reset_retries} times; check the robot (robot/status)")

    def _set_phase(self, phase: str) -> None:
        self.phase = phase
        self._save_state()
        self._publish_status()
        self.get_logger().info(f"episode {self.episode_id}: {phase}")

    def _publish_status(self) -> None:
        self.pub_status.publish(wire.json_to_msg({"episode_id": self.episode_id, "phase": self.phase, "step": self.step,
                                                  "return": round(self.ret, 6), "success": self.success}))

    def _write_csv(self, truncated: bool) -> None:
        path = self.run_dir / "episodes.csv"
        truncate_torn_line(path)  # a row torn by a crash must not swallow this one
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a") as fh:
            if new:
                fh.write(CSV_HEADER)
            label = "" if self.label is None else int(self.label)
            fh.write(f"{self.episode_id},{self.step},{self.ret:.6f},{int(self.success)},{int(truncated)},{label},"
                     f"{time.time():.3f}\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _on_summary(self, msg: String) -> None:
        try:
            summary = wire.msg_to_json(msg, wire.EPISODE_SUMMARY)
        except wire.WireError as exc:
            self.get_logger().error(f"bad episode/summary ignored: {exc}", throttle_duration_sec=2.0)
            return
        eid = summary["episode_id"]
        summary = {"steps": summary["steps"], "return": float(summary["return"]), "success": bool(summary["success"])}
        self.summaries = {k: v for k, v in self.summaries.items() if k > eid - 10}
        self.summaries[eid] = summary
        self.summary_event.set()

    def _adopt_policy_counts(self, timeout_s: float = 1.0) -> None:
        """Use the policy's step count, return and success for the CSV: the policy's episode recorder decides
        them, and they are what the learner stored. Own counts (actions seen while RUNNING, rewards and
        success at action time) remain when no summary arrives."""
        deadline = time.monotonic() + timeout_s
        while self.episode_id not in self.summaries and time.monotonic() < deadline:
            self.summary_event.clear()
            self.summary_event.wait(0.05)
        summary = self.summaries.get(self.episode_id)
        if summary is None:
            self.get_logger().warning(f"no episode/summary from the policy for episode {self.episode_id}: "
                                      "episodes.csv gets this node's own step count, return and success")
            return
        self.step, self.ret, self.success = summary["steps"], summary["return"], summary["success"]

    # -- reward ------------------------------------------------------------------------------
    def _publish_reward(self) -> None:
        if self.phase != RUNNING:
            return
        state = self.robot_state.state()
        if state is None or any(n not in self.objects for n in self.object_names):
            return
        from robot_envs.tasks import RewardContext
        ctx = RewardContext(robot_state=state, object_poses=dict(self.objects), images=dict(self.images),
                            human_label=self.label)
        reward, success = self.task.outcome(ctx)
        self.last_reward = float(reward)
        self.success = self.success or bool(success)
        self.pub_reward.publish(wire.array_to_msg(np.array([reward, float(success)])))

    def _on_image(self, cam: str, msg: Image) -> None:
        try:
            self.images[cam] = wire.msg_to_image(msg)
        except wire.WireError as exc:
            self.get_logger().error(f"bad frame from {cam} ignored for rewards: {exc}", throttle_duration_sec=5.0)

    def _on_action(self, _msg) -> None:
        if self.phase == RUNNING:
            self.step += 1
            self.ret += self.last_reward

    # -- services ----------------------------------------------------------------------------
    def _srv_end(self, _req, resp):
        resp.success = self.phase == RUNNING
        resp.message = f"episode {self.episode_id} ended" if resp.success else f"no running episode ({self.phase})"
        self.end_event.set()
        return resp

    def _srv_confirm(self, _req, resp):
        resp.success = self.phase == WAITING_FOR_HUMAN
        resp.message = "reset confirmed" if resp.success else f"not waiting for a reset ({self.phase})"
        self.confirm_event.set()
        return resp

    def _srv_label(self, req, resp):
        self.label = bool(req.data)
        resp.success, resp.message = True, f"episode {self.episode_id} labelled {'success' if req.data else 'failure'}"
        if self.label_store is not None:
            stored = [self.label_store.add(self.label, cam, self.images[cam], self.episode_id, self.step)
                      for cam in self.cfg.cameras if cam in self.images]
            resp.message += f"; {len(stored)} frame(s) stored in {self.label_store.directory}"
            if not stored:
                resp.success, resp.message = False, resp.message + " (no camera frame has arrived yet)"
        self.get_logger().info(resp.message)
        return resp

    def shutdown(self) -> None:
        self.exit_requested = True
        self.end_event.set()
        self.confirm_event.set()


def main(args: list[str] | None = None) -> int:
    return run_node(EpisodeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
