"""``reach``: touch a coloured target sphere placed at random in the workspace (sim, privileged reward)."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_envs.safety import SafetyConfig
from robot_envs.tasks.base import RewardContext, SimTask, TaskConfig, _box, _positive


@dataclass
class ReachConfig(TaskConfig):
    """Reach: the TCP must come within ``success_radius`` of the target centre."""

    target_min: tuple[float, ...] = (0.38, -0.12, 0.08)  # lower corner of the target sampling box [m, base]
    target_max: tuple[float, ...] = (0.58, 0.12, 0.22)  # upper corner of the target sampling box [m, base]
    cameras: tuple[str, ...] = ("front", "side")  # two views: together they fix the target's 3D position
    # the safety box: the target box plus ~5 cm, so that exploration stays where the targets are
    safety: SafetyConfig = field(default_factory=lambda: SafetyConfig(workspace_min=(0.33, -0.17, 0.05),
                                                                      workspace_max=(0.63, 0.17, 0.30)))
    target_radius: float = 0.03  # radius of the visible (non-colliding) target sphere [m] (~8 px at 84x84)
    target_rgba: tuple[float, ...] = (0.95, 0.1, 0.1, 1.0)  # colour of the target sphere (red)
    success_radius: float = 0.04  # TCP-to-target distance counted as success [m]
    reward_distance_scale: float = 10.0  # k in reward = 1 - tanh(k * distance) [1/m]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.target_min, self.target_max = _box(self.target_min, self.target_max, "target")
        _positive(target_radius=self.target_radius, success_radius=self.success_radius,
                  reward_distance_scale=self.reward_distance_scale)
        if len(self.target_rgba) != 4:
            raise ValueError(f"target_rgba must be 4 numbers (r, g, b, a in [0, 1]), got {self.target_rgba}")


def reach_reward(ee_pos: np.ndarray, target_pos: np.ndarray, cfg: ReachConfig) -> tuple[float, bool]:
    """Dense reach reward in [0, 1] (+ success bonus) from the TCP and target positions (3,) [m].

    reward = 1 - tanh(k * |ee - target|); success when the distance is below ``success_radius``.
    """
    dist = float(np.linalg.norm(np.asarray(ee_pos, float)[:3] - np.asarray(target_pos, float)[:3]))
    if not math.isfinite(dist):
        raise ValueError(f"reach reward got non-finite positions: ee={ee_pos}, target={target_pos}")
    success = dist < cfg.success_radius
    reward = 1.0 - math.tanh(cfg.reward_distance_scale * dist) + (cfg.success_bonus if success else 0.0)
    return reward, success


class ReachTask(SimTask):
    """Reach a target sphere. Objects: ``target`` (static body moved per episode)."""

    config_cls = ReachConfig
    TARGET = "target"

    @property
    def object_names(self) -> tuple[str, ...]:
        return (self.TARGET,)

    def add_to_scene(self, builder: Any) -> None:
        """A red, non-colliding sphere (static body, moved by ``SimWorld.set_object_pose``)."""
        cfg: ReachConfig = self.cfg
        centre = (np.array(cfg.target_min) + np.array(cfg.target_max)) / 2
        body = builder.add_object(self.TARGET, pose=np.r_[centre, 0, 0, 0, 1], free=False)
        ET.SubElement(body, "geom", name="target_geom", type="sphere", size=f"{cfg.target_radius}",
                      rgba=" ".join(str(v) for v in cfg.target_rgba), contype="0", conaffinity="0")

    def randomise_scene(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Target position uniform in the target box; identity orientation."""
        cfg: ReachConfig = self.cfg
        pos = rng.uniform(cfg.target_min, cfg.target_max)
        return {self.TARGET: np.r_[pos, 0.0, 0.0, 0.0, 1.0]}

    def reward(self, ctx: RewardContext) -> tuple[float, bool]:
        if self.TARGET not in ctx.object_poses:
            raise KeyError(f"reach reward needs the '{self.TARGET}' pose; got {sorted(ctx.object_poses)}")
        return reach_reward(ctx.robot_state.ee_pose[:3], ctx.object_poses[self.TARGET][:3], self.cfg)
