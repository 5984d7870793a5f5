"""``peg_insertion``: insert a peg held by the hand into a hole (sim, three shapes, multi-task).

Geometry (all boxes / cylinders, collision-cheap): the peg is attached to the hand body through the
SceneBuilder, its axis along the TCP z axis (pointing away from the hand, i.e. down when the gripper
points at the table). Each shape has its own hole block: walls of boxes around a hole of the peg's
cross-section plus ``clearance``, standing on the table. A hole's object pose is the centre of the
hole's bottom (on the table surface) with the hole axis along +z.

Each peg is a massless static child body of the hand registered as a scene object ``peg_<shape>``
(its pose is set in the HAND frame): the reward reads the peg's world pose directly. Multi-task
(``shape: all``): every episode samples one shape; the other pegs are parked ``peg_parking_offset``
away from the hand (out of view and reach) and their blocks parked at ``parking_xy``. The proprio
vector then ends with a one-hot of the active shape (order of ``SHAPES``).
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_envs.tasks.base import (
    DOWN_QUAT,
    RewardContext,
    SimTask,
    TaskConfig,
    _positive,
    _vec,
    point_from_frame,
    point_in_frame,
)

SHAPES = ("square", "round", "rect")  # order of the task ids / one-hot
_PEG_COLLISION_BITS = "2"  # pegs and hole walls collide with each other only (not with the robot)


@dataclass
class PegInsertionConfig(TaskConfig):
    """Peg-in-hole with a peg fixed in the hand."""

    shape: str = "all"  # "square" | "round" | "rect", or "all" = sample one per episode (multi-task)
    reset_pose: tuple[float, ...] = (0.50, 0.0, 0.14) + DOWN_QUAT  # TCP start above the hole area
    reset_noise_xy: float = 0.015  # half-width of the uniform xy reset offset [m]
    episode_length: int = 60  # control steps per episode
    table_height: float = 0.0  # z of the table surface [m] (franky-sim ground plane)
    tcp_offset_in_hand: float = 0.1034  # distance hand origin -> TCP along the hand z axis [m]
    peg_length: float = 0.06  # total peg length [m]
    peg_grip_depth: float = 0.02  # part of the peg above the TCP (between the fingers) [m]
    peg_half_width: float = 0.011  # square: half edge; round: radius; rect: half of the long side [m]
    rect_aspect: float = 0.5  # rect peg: short side / long side
    clearance: float = 0.003  # hole half-size minus peg half-size [m]
    hole_depth: float = 0.04  # height of the hole block (= depth of the hole) [m]
    block_half_size: float = 0.045  # half edge of the square hole block [m]
    round_segments: int = 12  # wall boxes approximating the round hole
    hole_min_xy: tuple[float, ...] = (0.47, -0.04)  # lower corner of the hole-centre sampling box [m]
    hole_max_xy: tuple[float, ...] = (0.53, 0.04)  # upper corner of the hole-centre sampling box [m]
    parking_xy: tuple[float, ...] = (2.0, 0.0)  # where inactive hole blocks are parked (out of view) [m]
    peg_parking_offset: float = -2.0  # hand-frame z of inactive pegs (-2 = 2 m behind the hand) [m]
    success_depth: float = 0.02  # peg tip depth below the block top counted as inserted [m]
    lateral_tolerance: float = 0.006  # max tip offset from the hole axis for success [m]
    lateral_weight: float = 2.0  # weight of the lateral error in the shaping distance
    reward_distance_scale: float = 15.0  # k in reward = 1 - tanh(k * shaped distance) [1/m]
    peg_rgba: tuple[float, ...] = (0.95, 0.85, 0.1, 1.0)  # peg colour (yellow)
    block_rgba: tuple[float, ...] = (0.9, 0.2, 0.2, 1.0)  # hole block colour (red; the floor is blue)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shape not in SHAPES + ("all",):
            raise ValueError(f"shape must be one of {SHAPES + ('all',)}, got {self.shape!r}")
        for name in ("hole_min_xy", "hole_max_xy", "parking_xy"):
            setattr(self, name, _vec(getattr(self, name), 2, name))
        if any(a > b for a, b in zip(self.hole_min_xy, self.hole_max_xy)):
            raise ValueError(f"hole_min_xy {self.hole_min_xy} must be <= hole_max_xy {self.hole_max_xy}")
        _positive(peg_length=self.peg_length, peg_half_width=self.peg_half_width, clearance=self.clearance,
                  hole_depth=self.hole_depth, success_depth=self.success_depth,
                  lateral_tolerance=self.lateral_tolerance, reward_distance_scale=self.reward_distance_scale,
                  tcp_offset_in_hand=self.tcp_offset_in_hand)
        if not 0 <= self.peg_grip_depth < self.peg_length:
            raise ValueError(f"peg_grip_depth must be in [0, peg_length), got {self.peg_grip_depth}")
        if not 0 < self.rect_aspect <= 1:
            raise ValueError(f"rect_aspect must be in (0, 1], got {self.rect_aspect}")
        if self.success_depth > self.hole_depth:
            raise ValueError(f"success_depth {self.success_depth} exceeds hole_depth {self.hole_depth}")
        if self.block_half_size <= self.peg_half_width + self.clearance + 0.005:
            raise ValueError("block_half_size must exceed the hole half-size by at least 5 mm of wall")
        if self.round_segments < 6:
            raise ValueError(f"round_segments must be >= 6, got {self.round_segments}")

    @property
    def tip_offset(self) -> float:
        """Peg tip position along the TCP z axis [m]."""
        return self.peg_length - self.peg_grip_depth


def peg_tip_position(ee_pose: np.ndarray, cfg: PegInsertionConfig) -> np.ndarray:
    """``(3,)`` base-frame position of the peg tip for a TCP pose ``(7,)``."""
    return point_from_frame(np.asarray(ee_pose, float), np.array([0.0, 0.0, cfg.tip_offset]))


def insertion_errors(tip_pos: np.ndarray, hole_pose: np.ndarray, cfg: PegInsertionConfig) -> tuple[float, float]:
    """(lateral error [m], insertion depth [m]) of the tip in the hole frame.

    Depth is measured down from the block's top surface (negative while the tip is above it).
    """
    local = point_in_frame(np.asarray(hole_pose, float), tip_pos)
    return float(np.hypot(local[0], local[1])), float(cfg.hole_depth - local[2])


def peg_reward(tip_pos: np.ndarray, hole_pose: np.ndarray, cfg: PegInsertionConfig) -> tuple[float, bool]:
    """Shaped insertion reward from the peg tip ``(3,)`` and the hole pose ``(7,)`` (base frame).

    d = lateral_weight * lateral + |success_depth - depth|; reward = 1 - tanh(k d) (+ bonus);
    success when lateral < lateral_tolerance and depth >= success_depth.
    """
    lateral, depth = insertion_errors(tip_pos, hole_pose, cfg)
    if not (math.isfinite(lateral) and math.isfinite(depth)):
        raise ValueError(f"peg reward got non-finite input: tip={tip_pos}, hole={hole_pose}")
    d = cfg.lateral_weight * lateral + abs(cfg.success_depth - depth)
    success = lateral < cfg.lateral_tolerance and depth >= cfg.success_depth
    return 1.0 - math.tanh(cfg.reward_distance_scale * d) + (cfg.success_bonus if success else 0.0), success


def _peg_half_extents(shape: str, cfg: PegInsertionConfig) -> tuple[float, float]:
    w = cfg.peg_half_width
    return (w, w * cfg.rect_aspect) if shape == "rect" else (w, w)


def _wall_boxes(shape: str, cfg: PegInsertionConfig) -> list[tuple[tuple[float, float], float, tuple[float, float]]]:
    """Wall boxes of a hole block: (centre xy, yaw, half extents xy), in the hole frame."""
    B = cfg.block_half_size
    if shape == "round":
        r = cfg.peg_half_width + cfg.clearance
        t = B - r
        n = cfg.round_segments
        half_len = (r + t) * math.tan(math.pi / n)
        out = []
        for i in range(n):
            a = 2 * math.pi * i / n
            c = r + t / 2
            out.append(((c * math.cos(a), c * math.sin(a)), a, (t / 2, half_len)))
        return out
    ax, ay = (e + cfg.clearance for e in _peg_half_extents(shape, cfg))
    wx, wy = (B - ax) / 2, (B - ay) / 2
    return [((ax + wx, 0.0), 0.0, (wx, B)), ((-ax - wx, 0.0), 0.0, (wx, B)),
            ((0.0, ay + wy), 0.0, (ax, wy)), ((0.0, -ay - wy), 0.0, (ax, wy))]


class PegInsertionTask(SimTask):
    """Peg-in-hole. Objects: ``hole_<shape>`` for every built shape (static blocks)."""

    config_cls = PegInsertionConfig

    def __init__(self, cfg: PegInsertionConfig) -> None:
        super().__init__(cfg)
        self.shapes: tuple[str, ...] = SHAPES if cfg.shape == "all" else (cfg.shape,)
        self.active_shape: str = self.shapes[0]

    @property
    def multi_task(self) -> bool:
        return len(self.shapes) > 1

    @property
    def task_id(self) -> int:
        """Index of the active shape in ``SHAPES``."""
        return SHAPES.index(self.active_shape)

    @property
    def object_names(self) -> tuple[str, ...]:
        return tuple(f"hole_{s}" for s in self.shapes) + tuple(f"peg_{s}" for s in self.shapes)

    @property
    def proprio_dim(self) -> int:
        return super().proprio_dim + (len(SHAPES) if self.multi_task else 0)

    def proprio(self, state: Any) -> np.ndarray:
        """Base proprio (TCP offset from reset, gripper width) + one-hot of the shape when multi-task."""
        base = super().proprio(state)
        if not self.multi_task:
            return base
        onehot = np.zeros(len(SHAPES), np.float32)
        onehot[self.task_id] = 1.0
        return np.concatenate([base, onehot])

    def begin_episode(self, rng: np.random.Generator) -> None:
        """Sample the active shape (multi-task) for the next episode."""
        self.active_shape = self.shapes[int(rng.integers(len(self.shapes)))]

    def info(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "shape": self.active_shape}

    # ---- scene ----------------------------------------------------------------------------
    def add_to_scene(self, builder: Any) -> None:
        for shape in self.shapes:
            self._add_peg(builder, shape)
            self._add_hole(builder, shape)

    def _add_hole(self, builder: Any, shape: str) -> None:
        cfg: PegInsertionConfig = self.cfg
        xy = cfg.hole_min_xy if shape == self.active_shape else cfg.parking_xy
        body = builder.add_object(f"hole_{shape}", pose=self._hole_pose(xy), free=False)
        for i, ((x, y), yaw, (hx, hy)) in enumerate(_wall_boxes(shape, cfg)):
            ET.SubElement(body, "geom", name=f"hole_{shape}_wall{i}", type="box",
                          pos=f"{x:.6g} {y:.6g} {cfg.hole_depth / 2:.6g}",
                          euler=f"0 0 {yaw:.6g}", size=f"{hx:.6g} {hy:.6g} {cfg.hole_depth / 2:.6g}",
                          rgba=" ".join(str(v) for v in cfg.block_rgba),
                          contype=_PEG_COLLISION_BITS, conaffinity=_PEG_COLLISION_BITS)

    def _add_peg(self, builder: Any, shape: str) -> None:
        cfg: PegInsertionConfig = self.cfg
        body = builder.add_object(f"peg_{shape}", pose=self._peg_pose_in_hand(shape == self.active_shape),
                                  free=False, parent=builder.hand_body)
        common = dict(name=f"peg_{shape}_geom", rgba=" ".join(str(v) for v in cfg.peg_rgba), mass="0",
                      contype=_PEG_COLLISION_BITS, conaffinity=_PEG_COLLISION_BITS)
        if shape == "round":
            ET.SubElement(body, "geom", type="cylinder", size=f"{cfg.peg_half_width} {cfg.peg_length / 2}", **common)
        else:
            hx, hy = _peg_half_extents(shape, cfg)
            ET.SubElement(body, "geom", type="box", size=f"{hx} {hy} {cfg.peg_length / 2}", **common)

    def _peg_pose_in_hand(self, active: bool) -> np.ndarray:
        cfg: PegInsertionConfig = self.cfg
        z = cfg.tcp_offset_in_hand - cfg.peg_grip_depth + cfg.peg_length / 2 if active else cfg.peg_parking_offset
        return np.array([0.0, 0.0, z, 0.0, 0.0, 0.0, 1.0])

    def _hole_pose(self, xy: Any) -> np.ndarray:
        return np.r_[float(xy[0]), float(xy[1]), self.cfg.table_height, 0.0, 0.0, 0.0, 1.0]

    def randomise_scene(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Active hole centre uniform in the hole box and its peg in the hand; the others parked.

        Hole poses are in the world frame, peg poses in the hand frame.
        """
        cfg: PegInsertionConfig = self.cfg
        poses = {}
        for i, shape in enumerate(self.shapes):
            active = shape == self.active_shape
            xy = rng.uniform(cfg.hole_min_xy, cfg.hole_max_xy) if active else np.asarray(cfg.parking_xy) + [0, 0.15 * i]
            poses[f"hole_{shape}"] = self._hole_pose(xy)
            poses[f"peg_{shape}"] = self._peg_pose_in_hand(active)
        return poses

    def reward(self, ctx: RewardContext) -> tuple[float, bool]:
        hole, peg = f"hole_{self.active_shape}", f"peg_{self.active_shape}"
        if hole not in ctx.object_poses:
            raise KeyError(f"peg reward needs the '{hole}' pose; got {sorted(ctx.object_poses)}")
        if peg in ctx.object_poses:  # privileged peg pose (sim): tip at +L/2 along the peg axis
            tip = point_from_frame(ctx.object_poses[peg], np.array([0.0, 0.0, self.cfg.peg_length / 2]))
        else:  # peg rigidly held at the configured offset from the TCP
            tip = peg_tip_position(ctx.robot_state.ee_pose, self.cfg)
        return peg_reward(tip, ctx.object_poses[hole], self.cfg)
