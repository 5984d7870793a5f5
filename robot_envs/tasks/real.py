"""Real-robot tasks: rewards from a recorded goal pose, a colour detector, a classifier or human labels.

Every real task needs a human to re-stage the scene between episodes (``needs_human_reset``). The
numbers that depend on the cell (goal pose, workspace, hole region, camera names) come from a YAML
file the user records, e.g. ``get_task("peg_insertion_real", config_file="my_cell/peg.yaml")``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from robot_envs import transforms as tf
from robot_envs.tasks.base import RewardContext, Task, TaskConfig, _positive, point_in_frame
from robot_envs.vision import BallDetector, BallDetectorConfig, image_to_plane


@dataclass
class RealTaskConfig(TaskConfig):
    """Common defaults of real tasks: human resets, operator labels may override success."""

    needs_human_reset: bool = True  # an operator re-stages the scene and confirms each reset
    success_bonus: float = 0.0  # sparse rewards already pay most in success; set ~1 with a dense reward
    human_label_overrides: bool = True  # a human success label, when given, decides success


class _RealTask(Task):
    config_cls = RealTaskConfig

    @property
    def max_failure_reward(self) -> float:
        """Sparse by default: a step out of success earns 0."""
        return 0.0

    def _human(self, ctx: RewardContext) -> bool | None:
        return ctx.human_label if self.cfg.human_label_overrides else None


# --------------------------------------------------------------------------------------------
@dataclass
class PegInsertionRealConfig(RealTaskConfig):
    """Peg held in the gripper; goal = the TCP pose recorded with the peg fully inserted."""

    goal_pose: tuple[float, ...] | None = None  # (7,) recorded TCP pose at full insertion (base frame); required
    lateral_tolerance: float = 0.004  # max TCP offset from the goal across the insertion axis [m]
    depth_tolerance: float = 0.005  # TCP within this distance of the goal along the axis = inserted [m]
    dense: bool = False  # False: reward 1 on success else 0; True: 1 - tanh(k * distance)
    reward_distance_scale: float = 20.0  # k for the dense reward [1/m]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.goal_pose is None:
            raise ValueError("peg_insertion_real needs goal_pose: record the TCP pose with the peg inserted "
                             "and set it in the task YAML (goal_pose: [x, y, z, qx, qy, qz, qw])")
        self.goal_pose = tuple(tf.as_pose(self.goal_pose, "goal_pose").tolist())
        _positive(lateral_tolerance=self.lateral_tolerance, depth_tolerance=self.depth_tolerance,
                  reward_distance_scale=self.reward_distance_scale)


def pose_goal_errors(ee_pose: np.ndarray, goal_pose: np.ndarray) -> tuple[float, float]:
    """(lateral [m], axial [m]) TCP error in the goal frame; axial > 0 = not yet deep enough.

    The insertion axis is the goal TCP's +z (pointing into the hole for a top-down grasp).
    """
    local = point_in_frame(np.asarray(goal_pose, float), np.asarray(ee_pose, float)[:3])
    return float(np.hypot(local[0], local[1])), float(-local[2])


class PegInsertionRealTask(_RealTask):
    config_cls = PegInsertionRealConfig

    @property
    def max_failure_reward(self) -> float:
        return 1.0 if self.cfg.dense else 0.0

    def reward(self, ctx: RewardContext) -> tuple[float, bool]:
        cfg: PegInsertionRealConfig = self.cfg
        lateral, axial = pose_goal_errors(ctx.robot_state.ee_pose, np.asarray(cfg.goal_pose))
        success = lateral < cfg.lateral_tolerance and axial < cfg.depth_tolerance
        human = self._human(ctx)
        if human is not None:
            success = bool(human)
        if cfg.dense:
            d = math.hypot(lateral, max(axial, 0.0))
            return 1.0 - math.tanh(cfg.reward_distance_scale * d) + (cfg.success_bonus if success else 0.0), success
        return (1.0 if success else 0.0) + (cfg.success_bonus if success else 0.0), success


# --------------------------------------------------------------------------------------------
@dataclass
class GolfRealConfig(RealTaskConfig):
    """Putt a coloured ball into a hole region seen by a calibrated camera."""

    detect_camera: str = "front"  # camera whose full-resolution image is searched for the ball
    # HSV threshold of the ball (orange by default)
    ball: BallDetectorConfig = field(default_factory=BallDetectorConfig)
    hole_center_px: tuple[float, ...] | None = (320.0, 240.0)  # hole centre (u, v) in that image [px]
    hole_radius_px: float = 25.0  # hole radius in the image [px]
    image_to_table: tuple[tuple[float, ...], ...] | None = None  # optional (3, 3) image->table homography
    hole_center_m: tuple[float, ...] | None = None  # hole centre (x, y) on the table [m]; used with the homography
    hole_radius_m: float = 0.03  # hole radius on the table [m]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.ball, BallDetectorConfig):
            raise ValueError(f"ball must be a BallDetectorConfig (a mapping in YAML), got {type(self.ball).__name__}")
        if self.image_to_table is not None:
            H = np.asarray(self.image_to_table, float)
            if H.shape != (3, 3) or not np.all(np.isfinite(H)):
                raise ValueError(f"image_to_table must be a finite 3x3 matrix, got {self.image_to_table}")
            if self.hole_center_m is None or len(self.hole_center_m) != 2:
                raise ValueError("image_to_table needs hole_center_m: (x, y) of the hole on the table [m]")
            _positive(hole_radius_m=self.hole_radius_m)
        else:
            if self.hole_center_px is None or len(self.hole_center_px) != 2:
                raise ValueError("golf_real needs hole_center_px (u, v) or image_to_table + hole_center_m")
            _positive(hole_radius_px=self.hole_radius_px)


class GolfRealTask(_RealTask):
    """Success when the detected ball centre lies in the hole region (image or table plane)."""

    config_cls = GolfRealConfig

    def __init__(self, cfg: GolfRealConfig) -> None:
        super().__init__(cfg)
        self.detector = BallDetector(cfg.ball)

    def ball_in_hole(self, image: np.ndarray) -> bool:
        """True when a ball is detected in ``image`` (H, W, 3) uint8 RGB inside the hole region."""
        cfg: GolfRealConfig = self.cfg
        det = self.detector.detect(image)
        if det is None:
            return False
        if cfg.image_to_table is not None:
            xy = image_to_plane(np.asarray(cfg.image_to_table), (det.u, det.v))
            return bool(np.linalg.norm(xy - np.asarray(cfg.hole_center_m)) <= cfg.hole_radius_m)
        return bool(math.hypot(det.u - cfg.hole_center_px[0], det.v - cfg.hole_center_px[1]) <= cfg.hole_radius_px)

    def reward(self, ctx: RewardContext) -> tuple[float, bool]:
        cam = self.cfg.detect_camera
        if cam not in ctx.images:
            raise KeyError(f"golf_real needs an image from camera '{cam}'; got {sorted(ctx.images)}")
        success = self.ball_in_hole(ctx.images[cam])
        human = self._human(ctx)
        if human is not None:
            success = bool(human)
        return (1.0 + self.cfg.success_bonus) if success else 0.0, success


# --------------------------------------------------------------------------------------------
class CableRoutingRealTask(_RealTask):
    """Route a cable through clips: success from the operator's labels and, with ``classifier_path`` set,
    from a trained image classifier (:meth:`Task.outcome`); a label overrides the classifier."""

    def reward(self, ctx: RewardContext) -> tuple[float, bool]:
        success = bool(self._human(ctx))
        return (1.0 + self.cfg.success_bonus) if success else 0.0, success


# --------------------------------------------------------------------------------------------
class HumanLabelledTask(_RealTask):
    """Generic real task: reward 1 when the operator labels the step a success, else 0."""

    def reward(self, ctx: RewardContext) -> tuple[float, bool]:
        success = bool(ctx.human_label)
        return (1.0 + self.cfg.success_bonus) if success else 0.0, success
