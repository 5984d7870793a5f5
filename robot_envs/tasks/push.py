"""``push``: push a cube on the table into a goal region (sim, privileged reward)."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_envs.safety import SafetyConfig
from robot_envs.tasks.base import DOWN_QUAT, RewardContext, SimTask, TaskConfig, _positive, _vec


def _push_safety() -> SafetyConfig:
    # The closed fingers must reach down to the cube's mid-height: allow a low workspace floor.
    return SafetyConfig(workspace_min=(0.30, -0.25, 0.015), workspace_max=(0.70, 0.25, 0.30))


@dataclass
class PushConfig(TaskConfig):
    """Push: the cube centre must end within ``goal_radius`` (xy) of the goal centre."""

    reset_pose: tuple[float, ...] = (0.40, 0.0, 0.05) + DOWN_QUAT  # low start, fingers just above the table
    gripper_width: float | None = 0.0  # push with closed fingers [m]
    safety: SafetyConfig = field(default_factory=_push_safety)  # workspace reaching down to the table
    table_height: float = 0.0  # z of the table surface in the base frame [m] (franky-sim ground plane)
    cube_half_size: float = 0.025  # half edge of the cube [m]
    cube_mass: float = 0.1  # cube mass [kg]
    cube_rgba: tuple[float, ...] = (0.95, 0.85, 0.1, 1.0)  # cube colour (yellow; the floor is blue)
    cube_min_xy: tuple[float, ...] = (0.46, -0.06)  # lower corner of the cube start box [m]
    cube_max_xy: tuple[float, ...] = (0.50, 0.06)  # upper corner of the cube start box [m]
    goal_min_xy: tuple[float, ...] = (0.56, -0.10)  # lower corner of the goal-centre box [m]
    goal_max_xy: tuple[float, ...] = (0.62, 0.10)  # upper corner of the goal-centre box [m]
    goal_radius: float = 0.04  # goal disc radius = success distance cube->goal (xy) [m]
    goal_rgba: tuple[float, ...] = (0.1, 0.85, 0.2, 1.0)  # goal disc colour (green)
    min_start_distance: float = 0.07  # resample until cube and goal start at least this far apart (xy) [m]
    reach_weight: float = 0.3  # weight of the ee->cube shaping term
    push_weight: float = 1.0  # weight of the cube->goal shaping term
    reward_distance_scale: float = 10.0  # k in 1 - tanh(k * distance) [1/m]

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("cube_min_xy", "cube_max_xy", "goal_min_xy", "goal_max_xy"):
            setattr(self, name, _vec(getattr(self, name), 2, name))
        for lo, hi in (("cube_min_xy", "cube_max_xy"), ("goal_min_xy", "goal_max_xy")):
            if any(a > b for a, b in zip(getattr(self, lo), getattr(self, hi))):
                raise ValueError(f"{lo} {getattr(self, lo)} must be <= {hi} {getattr(self, hi)}")
        _positive(cube_half_size=self.cube_half_size, cube_mass=self.cube_mass, goal_radius=self.goal_radius,
                  reward_distance_scale=self.reward_distance_scale)
        if self.min_start_distance < 0 or self.reach_weight < 0 or self.push_weight < 0:
            raise ValueError("min_start_distance, reach_weight and push_weight must be >= 0")


def push_reward(ee_pos: np.ndarray, cube_pos: np.ndarray, goal_pos: np.ndarray,
                cfg: PushConfig) -> tuple[float, bool]:
    """Shaped push reward from the TCP, cube and goal positions (3,) [m, base frame].

    reward = w_reach * (1 - tanh(k |ee - cube|)) + w_push * (1 - tanh(k |cube - goal|_xy));
    success when the cube centre is within ``goal_radius`` of the goal centre in xy.
    """
    ee, cube, goal = (np.asarray(v, float)[:3] for v in (ee_pos, cube_pos, goal_pos))
    d_reach = float(np.linalg.norm(ee - cube))
    d_push = float(np.linalg.norm(cube[:2] - goal[:2]))
    if not (math.isfinite(d_reach) and math.isfinite(d_push)):
        raise ValueError(f"push reward got non-finite positions: ee={ee}, cube={cube}, goal={goal}")
    k = cfg.reward_distance_scale
    success = d_push < cfg.goal_radius
    reward = cfg.reach_weight * (1 - math.tanh(k * d_reach)) + cfg.push_weight * (1 - math.tanh(k * d_push))
    return reward + (cfg.success_bonus if success else 0.0), success


class PushTask(SimTask):
    """Push a cube to a goal disc. Objects: ``cube`` (free body), ``goal`` (static, visual only)."""

    config_cls = PushConfig
    CUBE, GOAL = "cube", "goal"

    @property
    def object_names(self) -> tuple[str, ...]:
        return (self.CUBE, self.GOAL)

    def add_to_scene(self, builder: Any) -> None:
        cfg: PushConfig = self.cfg
        h = cfg.cube_half_size
        cube = builder.add_object(self.CUBE, pose=self._on_table(cfg.cube_min_xy, h), free=True)
        ET.SubElement(cube, "geom", name="cube_geom", type="box", size=f"{h} {h} {h}", mass=f"{cfg.cube_mass}",
                      rgba=" ".join(str(v) for v in cfg.cube_rgba), friction="0.6 0.005 0.0001")
        goal = builder.add_object(self.GOAL, pose=self._on_table(cfg.goal_min_xy, 0.0005), free=False)
        ET.SubElement(goal, "geom", name="goal_geom", type="cylinder", size=f"{cfg.goal_radius} 0.0005",
                      rgba=" ".join(str(v) for v in cfg.goal_rgba), contype="0", conaffinity="0")

    def randomise_scene(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Cube and goal xy uniform in their boxes, at least ``min_start_distance`` apart."""
        cfg: PushConfig = self.cfg
        for _ in range(100):
            cube_xy = rng.uniform(cfg.cube_min_xy, cfg.cube_max_xy)
            goal_xy = rng.uniform(cfg.goal_min_xy, cfg.goal_max_xy)
            if np.linalg.norm(cube_xy - goal_xy) >= cfg.min_start_distance:
                return {self.CUBE: self._on_table(cube_xy, cfg.cube_half_size),
                        self.GOAL: self._on_table(goal_xy, 0.0005)}
        raise ValueError(f"cannot place cube and goal {cfg.min_start_distance} m apart within their boxes; "
                         "widen the boxes or lower min_start_distance")

    def _on_table(self, xy: Any, half_height: float) -> np.ndarray:
        return np.r_[float(xy[0]), float(xy[1]), self.cfg.table_height + half_height, 0.0, 0.0, 0.0, 1.0]

    def reward(self, ctx: RewardContext) -> tuple[float, bool]:
        missing = [n for n in self.object_names if n not in ctx.object_poses]
        if missing:
            raise KeyError(f"push reward needs poses of {missing}; got {sorted(ctx.object_poses)}")
        return push_reward(ctx.robot_state.ee_pose[:3], ctx.object_poses[self.CUBE][:3],
                           ctx.object_poses[self.GOAL][:3], self.cfg)
