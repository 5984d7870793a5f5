"""The policy node's settings (filled from ROS parameters by ``mentor.params.declare_config``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .evaluation import EvalSchedule
from .tick_clock import TICK_SOURCES


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class PolicyNodeConfig:
    mode: str = field(default="train", metadata=_help(
        "train (send transitions), deploy (evaluate) or record (send transitions; the arm holds still unless "
        "teleop drives)"))
    task: str = field(default="reach", metadata=_help("task name: proprio, action space, episode length"))
    task_config: str = field(default="", metadata=_help("YAML file overriding the task config"))
    use_sim: bool = field(default=True, metadata=_help("simulated world (informational)"))
    cameras: list[str] = field(default_factory=lambda: ["front"], metadata=_help("camera names, channel order"))
    control_hz: float = field(default=10.0, metadata=_help("control rate [Hz]"))
    tick_source: str = field(default="frame", metadata=_help(
        "frame: tick when a new frame set arrives (at most control_hz; camera fps should be a multiple of it); "
        "camera: fixed-rate ticks phase-locked to the camera (tick_offset_s after capture); timer: free-running"))
    tick_offset_s: float = field(default=-1.0, metadata=_help(
        "tick_source camera: capture stamp -> tick [s]; < 0 = learn it (99th percentile of the delay + 1 ms)"))
    realtime_priority: int = field(default=0, metadata=_help(
        "SCHED_FIFO priority (1-99) of the thread that ticks (camera/timer: the executor thread one below); "
        "0 = normal scheduling. Needs root, CAP_SYS_NICE or an rtprio limit"))
    agent_config: str = field(default="tiny", metadata=_help("mentor_policy preset or YAML path"))
    agent_overrides: str = field(default="", metadata=_help("YAML mapping of AgentConfig overrides"))
    device: str = field(default="auto", metadata=_help("torch device: auto | cpu | cuda"))
    torch_threads: int = field(default=1, metadata=_help("torch CPU threads (0 = torch default)"))
    source: str = field(default="robot", metadata=_help("transition source name (unique per robot)"))
    outbox_dir: str = field(default="runs/default/actor/outbox", metadata=_help("durable transition outbox"))
    resend_after_s: float = field(default=1.0, metadata=_help("resend unacknowledged records after [s]"))
    resend_per_tick: int = field(default=20, metadata=_help("max records resent per control tick"))
    teleop_timeout_s: float = field(default=0.3, metadata=_help("a teleop action is fresh for [s]"))
    frame_timeout_s: float = field(default=1.0, metadata=_help("frames/state older than this skip the tick [s]"))
    checkpoint: str = field(default="", metadata=_help("deploy: checkpoint or policy weights (.pt)"))
    onnx: str = field(default="", metadata=_help("deploy: ONNX policy (used instead of checkpoint)"))
    ort_threads: int = field(default=1, metadata=_help("deploy with ONNX: ONNX Runtime intra-op threads"))
    ort_spin: bool = field(default=False, metadata=_help("deploy with ONNX: threads spin between ticks"))
    videos_dir: str = field(default="runs/default/videos", metadata=_help("episode videos (mp4) directory"))
    video_every: int = field(default=10, metadata=_help("train: record every N-th episode (0 = none); deploy: all"))
    video_camera: str = field(default="", metadata=_help("camera whose frames the videos show ('' = the first)"))
    summary_path: str = field(default="runs/default/deploy_summary.json", metadata=_help("deploy summary JSON"))
    eval_every_episodes: int = field(default=20, metadata=_help(
        "train: an evaluation block after every N training episodes (0 = no evaluation)"))
    eval_episodes: int = field(default=5, metadata=_help("train: deterministic episodes per evaluation block"))

    def __post_init__(self) -> None:
        if self.tick_source not in TICK_SOURCES:
            raise ValueError(f"tick_source must be one of {TICK_SOURCES}, got {self.tick_source!r}")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError(f"realtime_priority must be in 0..99, got {self.realtime_priority}")
        if self.mode not in ("train", "deploy", "record"):
            raise ValueError(f"mode must be train, deploy or record, got {self.mode!r}")
        if self.ort_threads < 1 or self.video_every < 0:
            raise ValueError(f"need ort_threads >= 1 and video_every >= 0, got {self.ort_threads}, {self.video_every}")
        if self.control_hz <= 0 or self.resend_after_s <= 0 or self.resend_per_tick < 1:
            raise ValueError("control_hz and resend_after_s must be > 0 and resend_per_tick >= 1")
        if self.tick_offset_s >= 1.0 / self.control_hz:
            raise ValueError(f"tick_offset_s must be below the control period, got {self.tick_offset_s}")
        if self.mode == "deploy" and not (self.checkpoint or self.onnx):
            raise ValueError("deploy mode needs checkpoint or onnx")
        if self.video_camera and self.video_camera not in self.cameras:
            raise ValueError(f"video_camera {self.video_camera!r} is not one of the cameras {self.cameras}")
        EvalSchedule(self.eval_every_episodes, self.eval_episodes)  # validates both
