"""expert_node: a scripted operator for sim graphs (demonstrations and interventions without a human).

It plays the part of the person at the teleop device: from the sim's privileged object poses
(``sim/objects/<name>/pose``) and the TCP pose (``robot/current_pose``) it computes the task's scripted
expert action (:mod:`robot_envs.experts`, the same experts the in-process demo recorder uses) and
publishes it on ``teleop/action`` at ``rate_hz`` while the episode (``episode/status``) is RUNNING and
its step lies in the takeover window. The policy node records those steps as interventions, exactly
as it does for the keyboard, a joystick or a SpaceMouse.

``takeover_from_step`` 0 and ``takeover_steps`` 0: the expert drives whole episodes (``mentor-run record
--expert``: a demo store). ``takeover_from_step`` k > 0: the policy acts first and the expert takes over
at step k (an intervention mid-episode), for ``takeover_steps`` steps (0 = to the end).
``label_every_s`` > 0: the scripted operator also presses the success/failure keys: every that many seconds
of a running episode it calls ``episode/label_success`` with the episode node's own success flag of the
moment (``episode/reward``), so a graph with ``label_frames_dir`` collects labelled frames for the success
classifier without a person.
Sim only: a real graph has no privileged poses, and the node refuses to start with ``use_sim`` false.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray, String
from std_srvs.srv import SetBool

from robot_envs.experts import new_expert

from . import qos, wire
from .common import RUNNING, load_task, run_node
from .params import declare_config


@dataclass
class ExpertNodeConfig:
    task: str = field(default="reach", metadata={"help": "sim task whose scripted expert drives"})
    task_config: str = field(default="", metadata={"help": "YAML file overriding the task config"})
    use_sim: bool = field(default=True, metadata={"help": "must be true: the expert reads sim object poses"})
    rate_hz: float = field(default=20.0, metadata={"help": "publish rate of teleop/action [Hz]; above control_hz"})
    takeover_from_step: int = field(default=0, metadata={"help": "episode step at which the expert takes over "
                                                                 "(0 = whole episodes)"})
    takeover_steps: int = field(default=0, metadata={"help": "steps the expert drives, then lets go (0 = to the "
                                                             "episode's end)"})
    label_every_s: float = field(default=0.0, metadata={"help": "label the current frame success/failure (the "
                                                                "sim's own flag) this often [s]; 0 = never"})

    def __post_init__(self) -> None:
        if not self.use_sim:
            raise ValueError("expert_node is sim only: a real graph has no privileged object poses (use teleop)")
        if self.rate_hz <= 0 or self.takeover_from_step < 0 or self.takeover_steps < 0 or self.label_every_s < 0:
            raise ValueError("rate_hz must be > 0, takeover_from_step, takeover_steps and label_every_s >= 0")


class _PoseView:
    """The ``env.world.object_poses`` an expert reads, answered from the newest pose messages."""

    def __init__(self) -> None:
        self.poses: dict[str, np.ndarray] = {}

    def object_poses(self, names: list[str]) -> dict[str, np.ndarray]:
        return {n: self.poses[n] for n in names}


class ExpertNode(Node):
    def __init__(self) -> None:
        super().__init__("expert")
        self.cfg = declare_config(self, ExpertNodeConfig)
        task = load_task(self.cfg.task, self.cfg.task_config)
        self.world = _PoseView()
        self.view = SimpleNamespace(task=task, world=self.world, last_state=None)  # what an expert reads of an env
        self.status: dict = {}
        self.expert, self.expert_episode = None, None
        for name in task.object_names:
            self.create_subscription(PoseStamped, f"sim/objects/{name}/pose",
                                     lambda m, n=name: self.world.poses.__setitem__(n, wire.msg_to_pose(m)), qos.STATE)
        self.create_subscription(PoseStamped, "robot/current_pose", self._on_pose, qos.STATE)
        self.create_subscription(String, "episode/status", self._on_status, qos.LATCHED)
        self.pub = self.create_publisher(Float32MultiArray, "teleop/action", qos.COMMAND)
        self.create_timer(1.0 / self.cfg.rate_hz, self._publish)
        self.object_names = tuple(task.object_names)
        self.success: bool | None = None  # the episode node's success flag of the moment
        if self.cfg.label_every_s > 0:
            self.create_subscription(Float32MultiArray, "episode/reward", self._on_reward, qos.STATE)
            self.label_client = self.create_client(SetBool, "episode/label_success")
            self.create_timer(self.cfg.label_every_s, self._label)
        self.get_logger().info(f"scripted {task.name} expert: takes over at step {self.cfg.takeover_from_step}"
                               f" for {self.cfg.takeover_steps or 'all remaining'} steps of every episode")

    def _on_pose(self, msg: PoseStamped) -> None:
        self.view.last_state = SimpleNamespace(ee_pose=wire.msg_to_pose(msg))

    def _on_status(self, msg: String) -> None:
        try:
            self.status = wire.msg_to_json(msg, wire.EPISODE_STATUS)
        except wire.WireError as exc:
            self.get_logger().error(f"bad episode/status ignored: {exc}", throttle_duration_sec=5.0)

    def _on_reward(self, msg: Float32MultiArray) -> None:
        if len(msg.data) == 2:
            self.success = bool(msg.data[1] > 0.5)

    def _label(self) -> None:
        if self.status.get("phase") == RUNNING and self.success is not None and self.label_client.service_is_ready():
            self.label_client.call_async(SetBool.Request(data=self.success))

    def in_window(self, step: int) -> bool:
        """True when the expert drives at episode step ``step``."""
        start, n = self.cfg.takeover_from_step, self.cfg.takeover_steps
        return step >= start and (n == 0 or step < start + n)

    def _publish(self) -> None:
        st = self.status
        if st.get("phase") != RUNNING or not self.in_window(int(st.get("step", 0))):
            return
        if self.view.last_state is None or any(n not in self.world.poses for n in self.object_names):
            return
        if self.expert_episode != st.get("episode_id"):  # a fresh expert per episode (push keeps a phase)
            self.expert, self.expert_episode = new_expert(self.cfg.task), st.get("episode_id")
        action = np.asarray(self.expert(self.view), np.float32)
        self.pub.publish(wire.array_to_msg(action))


def main(args: list[str] | None = None) -> int:
    return run_node(ExpertNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
