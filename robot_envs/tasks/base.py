"""Task base class, task configuration dataclasses, YAML loading and the task registry.

A task owns everything that differs between manipulation problems: the action space, the safety
box, the episode length and control rate, the reset pose and its noise, the proprioception vector
and the reward. Sim tasks additionally build their objects into the MuJoCo scene and randomise
them per episode. Poses are ``(7,)`` float64 ``[x, y, z, qx, qy, qz, qw]`` in the robot base frame
(metres); angles are radians.

Reward design (every task): an episode runs its fixed horizon of ``episode_length`` steps and is
*not* ended by success (``terminate_on_success=False``); it counts as a success when any step
succeeded. Every step pays a shaped reward in [0, 1] that grows toward the goal, plus
``success_bonus`` on each step that is in success. Rewards are never negative, so the best return
comes from reaching success early and staying there; hovering just outside success earns strictly
less (``tests/unit/robot_envs/test_task_rewards.py`` checks this per task with a scripted oracle). Ending the
episode at the first success is allowed only when that is still optimal under the agent's discount
γ: the success step must outweigh the largest return a non-success stream could still collect,
``success_bonus >= max_failure_reward / (1 - γ)`` (:func:`check_reward_design`, run by the learner).
With a positive dense reward and no such bonus, termination pays the agent for *not* succeeding.

Success from a trained classifier (every task): with ``classifier_path`` set, :meth:`Task.outcome` (what
the env and the episode node record) takes success from a :class:`robot_envs.classifier.SuccessClassifier`
on ``classifier_camera``'s newest frame and pays the sparse reward ``1 + success_bonus`` on a success step,
else 0. A step with an operator's label, and every step without a classifier, gets the task's own
:meth:`Task.reward` (real tasks let the label decide).
"""
from __future__ import annotations

import dataclasses
import math
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from mentor_policy.fileio import read_yaml_mapping
from mentor_policy.specs import EnvSpec
from robot_envs import transforms as tf
from robot_envs.actions import ActionSpaceConfig
from robot_envs.robot import RobotState
from robot_envs.safety import SafetyConfig

# A top-down Franka TCP orientation (gripper pointing at the table): 180 deg about base x.
DOWN_QUAT = (1.0, 0.0, 0.0, 0.0)


# --------------------------------------------------------------------------------------------
# Pose helpers (quaternions are [qx, qy, qz, qw]; the rest lives in robot_envs.transforms)
# --------------------------------------------------------------------------------------------
def point_in_frame(pose: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Express the base-frame ``point (3,)`` in the frame of ``pose (7,)``."""
    return tf.quat_to_matrix(pose[3:]).T @ (np.asarray(point, dtype=np.float64) - pose[:3])


def point_from_frame(pose: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Map ``local (3,)`` given in the frame of ``pose (7,)`` into the base frame."""
    return pose[:3] + tf.quat_to_matrix(pose[3:]) @ np.asarray(local, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Config loading
# --------------------------------------------------------------------------------------------
class TaskConfigError(ValueError):
    """A task configuration (YAML file or overrides) is invalid; the message names the key."""


def _convert(value: Any, hint: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, Mapping):
            raise TaskConfigError(f"'{key}' must be a mapping for {hint.__name__}, got {type(value).__name__}")
        return config_from_dict(hint, value, prefix=f"{key}.")
    if isinstance(value, list):
        return tuple(_convert(v, None, key) for v in value)
    return value


def config_from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclass fields.

    Lists become tuples. Unknown keys raise ``TaskConfigError`` listing the valid ones; the
    dataclass's own ``__post_init__`` validates the values.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise TaskConfigError(f"unknown key(s) {[prefix + k for k in unknown]} for {cls.__name__}; "
                              f"valid: {sorted(names)}")
    kwargs = {k: _convert(v, hints.get(k), prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, TaskConfigError):
            raise
        raise TaskConfigError(f"invalid {cls.__name__} config{' at ' + prefix.rstrip('.') if prefix else ''}: "
                              f"{exc}") from exc


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-dict (YAML-safe) form of a config dataclass: tuples become lists."""
    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(cfg))


def merge_overrides(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base``; keys may be dotted (``"safety.max_translation"``)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest:
            value = {rest: value}
        if isinstance(value, Mapping) and isinstance(out.get(head), dict):
            out[head] = merge_overrides(out[head], value)
        else:
            out[head] = value
    return out


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; clear errors for missing/corrupt/non-mapping files."""
    return read_yaml_mapping(path, "task config", TaskConfigError)


def _vec(value: Any, n: int, what: str) -> tuple[float, ...]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be {n} finite numbers, got {value!r}")
    return tuple(float(x) for x in arr)


def _box(lo: Any, hi: Any, what: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    lo_t, hi_t = _vec(lo, 3, f"{what}_min"), _vec(hi, 3, f"{what}_max")
    if any(a > b for a, b in zip(lo_t, hi_t)):
        raise ValueError(f"{what}_min {lo_t} must be <= {what}_max {hi_t} in every axis")
    return lo_t, hi_t


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v}")


# --------------------------------------------------------------------------------------------
# Task config and base class
# --------------------------------------------------------------------------------------------
@dataclass
class TaskConfig:
    """Settings shared by every task. Sub-classes add the task's own geometry and thresholds."""

    name: str = ""  # registry name of the task (filled in by get_task)
    episode_length: int = 50  # control steps per episode before truncation
    control_hz: float = 10.0  # control rate of the policy (Hz)
    reset_pose: tuple[float, ...] = (0.45, 0.0, 0.25) + DOWN_QUAT  # (7,) TCP pose reached at reset, base frame
    reset_noise_xy: float = 0.02  # half-width (m) of the uniform xy offset added to reset_pose
    reset_noise_yaw: float = 0.0  # half-width (rad) of the uniform yaw offset about base z
    needs_human_reset: bool = False  # a human must re-stage the scene and confirm before each episode
    terminate_on_success: bool = False  # end the episode at the first success; sound only with a big bonus (module doc)
    success_bonus: float = 1.0  # added to the reward on every success step (>= 0)
    gripper_width: float | None = None  # fixed gripper opening (m) commanded with every target; None = leave it
    # camera names used by the policy, in order (sim names or configured real ones)
    cameras: tuple[str, ...] = ("front",)
    image_size: tuple[int, ...] = (84, 84)  # (H, W) of the policy image in pixels
    action: ActionSpaceConfig = field(default_factory=ActionSpaceConfig)  # which action dims and their scales
    safety: SafetyConfig = field(default_factory=SafetyConfig)  # workspace box and per-step limits
    # a SuccessClassifier file (robot_envs.labels train); set = success and a sparse reward from its verdict
    classifier_path: str | None = None
    classifier_camera: str = "front"  # camera whose newest frame the classifier sees
    classifier_threshold: float | None = None  # success probability threshold; None = the classifier's own

    def __post_init__(self) -> None:
        if int(self.episode_length) != self.episode_length or self.episode_length < 1:
            raise ValueError(f"episode_length must be a positive integer, got {self.episode_length}")
        self.episode_length = int(self.episode_length)
        _positive(control_hz=float(self.control_hz))
        self.reset_pose = tuple(tf.as_pose(self.reset_pose, "reset_pose").tolist())
        if not (self.reset_noise_xy >= 0 and self.reset_noise_yaw >= 0):
            raise ValueError(f"reset noise must be >= 0, got xy={self.reset_noise_xy} yaw={self.reset_noise_yaw}")
        if not (math.isfinite(self.success_bonus) and self.success_bonus >= 0):
            raise ValueError(f"success_bonus must be a finite number >= 0, got {self.success_bonus}")
        lo, hi = self.safety.gripper_min_width, self.safety.gripper_max_width
        if self.gripper_width is not None and not (lo <= self.gripper_width <= hi):
            raise ValueError(f"gripper_width must be None or within the safety limits [{lo}, {hi}] m, "
                             f"got {self.gripper_width}")
        if isinstance(self.cameras, str) or not self.cameras or not all(isinstance(c, str) and c for c in self.cameras):
            raise ValueError(f"cameras must be a non-empty list of names, got {self.cameras!r}")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"camera names must be unique, got {self.cameras}")
        self.cameras = tuple(self.cameras)
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            raise ValueError(f"image_size must be (H, W) with both >= 16, got {self.image_size}")
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if self.classifier_path is not None and not str(self.classifier_path):
            raise ValueError("classifier_path must be a file path or null")
        if self.classifier_threshold is not None and not 0.0 < self.classifier_threshold < 1.0:
            raise ValueError(f"classifier_threshold must be in (0, 1) or null, got {self.classifier_threshold}")


@dataclass
class RewardContext:
    """Everything a reward may look at after one control step.

    robot_state: the arm state after the step. object_poses: privileged ``(7,)`` poses of scene
    objects by name (sim only; empty on a real robot). images: the latest ``(H, W, 3)`` uint8 RGB
    frame per camera name. human_label: an operator's success label for this step, or None.
    """

    robot_state: RobotState
    object_poses: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    human_label: bool | None = None


class Task(ABC):
    """A manipulation task: configuration + proprioception + reward (see module docstring)."""

    config_cls: ClassVar[type[TaskConfig]] = TaskConfig
    is_sim: ClassVar[bool] = False  # True: needs a SimWorld (add_to_scene / randomise_scene)

    def __init__(self, cfg: TaskConfig) -> None:
        if not isinstance(cfg, self.config_cls):
            raise TypeError(f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(cfg).__name__}")
        self.cfg = cfg
        self._reset_pose = np.asarray(cfg.reset_pose, dtype=np.float64)
        self.classifier = None  # robot_envs.classifier.SuccessClassifier when cfg.classifier_path is set
        if cfg.classifier_path is not None:
            from robot_envs.classifier import SuccessClassifier  # lazy: torch only when used

            self.classifier = SuccessClassifier.load(cfg.classifier_path)

    # ---- shared properties ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def episode_length(self) -> int:
        return self.cfg.episode_length

    @property
    def control_hz(self) -> float:
        return self.cfg.control_hz

    @property
    def needs_human_reset(self) -> bool:
        return self.cfg.needs_human_reset

    @property
    def terminate_on_success(self) -> bool:
        return self.cfg.terminate_on_success

    @property
    def proprio_dim(self) -> int:
        """Length P of :meth:`proprio`: normalised TCP position (3) + normalised gripper width (1)."""
        return 4

    def env_spec(self, n_cameras: int) -> EnvSpec:
        """The policy's observation/action spec for this task seen by ``n_cameras`` cameras: one time
        step is (3 * n_cameras, H, W) uint8 at the task's ``image_size``, its proprio and action dims."""
        if n_cameras < 1:
            raise ValueError(f"a policy needs at least one camera, got {n_cameras}")
        return EnvSpec(frame_channels=3 * int(n_cameras), image_size=tuple(self.cfg.image_size),
                       proprio_dim=int(self.proprio_dim), action_dim=int(self.cfg.action.action_dim))

    @property
    def max_failure_reward(self) -> float:
        """Largest reward a step that is not in success can earn (dense shaping: 1; sparse tasks: 0)."""
        return 1.0

    @property
    def reset_pose(self) -> np.ndarray:
        """Nominal ``(7,)`` reset pose (copy)."""
        return self._reset_pose.copy()

    # ---- episode hooks --------------------------------------------------------------------
    def sample_reset_pose(self, rng: np.random.Generator) -> np.ndarray:
        """``(7,)`` reset pose: nominal pose + uniform xy offset (m) + uniform yaw offset (rad, about base z)."""
        pose = self._reset_pose.copy()
        pose[:2] += rng.uniform(-self.cfg.reset_noise_xy, self.cfg.reset_noise_xy, size=2)
        if self.cfg.reset_noise_yaw > 0:
            yaw = rng.uniform(-self.cfg.reset_noise_yaw, self.cfg.reset_noise_yaw)
            pose[3:] = tf.quat_multiply(tf.rotvec_to_quat([0.0, 0.0, yaw]), pose[3:])
        return pose

    def begin_episode(self, rng: np.random.Generator) -> None:
        """Pick per-episode task variables (e.g. the peg shape). Called by the env before reset."""

    def proprio(self, state: RobotState) -> np.ndarray:
        """``(P,)`` float32 in about [-1, 1]: the TCP position (base frame) mapped from the safety
        workspace box to [-1, 1] per axis, and the gripper width mapped from [0, gripper_max_width].

        Only the robot's own state: what a real arm reports too. Values stay in [-1, 1] because the
        safety layer keeps every commanded target inside the box.
        """
        ee = np.asarray(state.ee_pose, dtype=np.float64)
        if ee.shape != (7,) or not np.all(np.isfinite(ee)):
            raise ValueError(f"robot state ee_pose must be a finite (7,) pose, got {ee!r}")
        lo, hi = np.asarray(self.cfg.safety.workspace_min), np.asarray(self.cfg.safety.workspace_max)
        pos = 2.0 * (ee[:3] - lo) / (hi - lo) - 1.0
        width = 2.0 * float(state.gripper_width) / self.cfg.safety.gripper_max_width - 1.0
        return np.concatenate([pos, [width]]).astype(np.float32)

    @abstractmethod
    def reward(self, ctx: RewardContext) -> tuple[float, bool]:
        """The task's own reward and success flag for the step described by ``ctx``."""

    @property
    def needs_images(self) -> bool:
        """True when :meth:`outcome` looks at camera frames (a success classifier is configured)."""
        return self.classifier is not None

    def outcome(self, ctx: RewardContext) -> tuple[float, bool]:
        """Reward and success of the step as recorded: the classifier's verdict (sparse reward) when one
        is configured and no operator label was given, else :meth:`reward`, which decides how a label
        counts (see module docstring)."""
        if self.classifier is None or ctx.human_label is not None:
            return self.reward(ctx)
        cam = self.cfg.classifier_camera
        if cam not in ctx.images:
            raise KeyError(f"task {self.name!r}: the success classifier needs camera {cam!r}; got {sorted(ctx.images)}")
        success = self.classifier.predict_success(ctx.images[cam], self.cfg.classifier_threshold)
        return (1.0 + self.cfg.success_bonus) if success else 0.0, bool(success)

    def info(self) -> dict[str, Any]:
        """Extra per-episode information for the env's info dict (e.g. the active task id)."""
        return {}


class SimTask(Task):
    """A task that lives in a SimWorld: builds objects into the scene and randomises them."""

    is_sim = True

    @abstractmethod
    def add_to_scene(self, builder: Any) -> None:
        """Add this task's bodies/geoms to the MuJoCo scene through the SimWorld ``SceneBuilder``."""

    @abstractmethod
    def randomise_scene(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """New ``(7,)`` poses of the movable objects for the next episode, by object name."""

    @property
    def object_names(self) -> tuple[str, ...]:
        """Names of the objects whose poses the reward needs (privileged state)."""
        return ()


def check_reward_design(task: Task, discount: float) -> None:
    """Raise ``TaskConfigError`` when ending episodes at success would make failure the better choice.

    With ``terminate_on_success`` the success step ends the reward stream, so it must be worth at
    least what staying unsuccessful could still collect: ``success_bonus >= max_failure_reward / (1 - γ)``.
    Fixed-horizon tasks (the default) always pass: their rewards are non-negative and largest in success.
    """
    if not 0.0 <= discount < 1.0:
        raise ValueError(f"discount must lie in [0, 1), got {discount}")
    if not task.terminate_on_success:
        return
    needed = task.max_failure_reward / (1.0 - discount)
    if task.cfg.success_bonus < needed * (1.0 - 1e-9):  # tolerance: 1 / (1 - 0.9) is 10.000000000000002
        raise TaskConfigError(
            f"task '{task.name}' ends episodes at success with success_bonus {task.cfg.success_bonus}, but with "
            f"discount {discount} a policy that never succeeds can collect up to {needed:.3g}: set "
            f"terminate_on_success: false (recommended) or success_bonus >= {needed:.3g}")


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[[TaskConfig], Task]] = {}
_CONFIG_CLASSES: dict[str, type[TaskConfig]] = {}
_DEFAULTS: dict[str, dict[str, Any]] = {}


def register_task(name: str, task_cls: type[Task], defaults: Mapping[str, Any] | None = None) -> None:
    """Register ``task_cls`` under ``name``; ``defaults`` overlay the config class's own defaults."""
    if name in _REGISTRY:
        raise ValueError(f"task '{name}' is already registered")
    _REGISTRY[name] = task_cls
    _CONFIG_CLASSES[name] = task_cls.config_cls
    _DEFAULTS[name] = dict(defaults or {})


def list_tasks() -> list[str]:
    """Names of all registered tasks, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def task_config(name: str, config_file: str | Path | None = None, **overrides: Any) -> TaskConfig:
    """The config of task ``name``: dataclass defaults < registry defaults < YAML file < overrides.

    ``overrides`` keys may be dotted for nested configs, e.g. ``**{"safety.max_translation": 0.01}``.
    """
    _ensure_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown task '{name}'; available: {sorted(_REGISTRY)}")
    data = merge_overrides({}, _DEFAULTS[name])
    if config_file is not None:
        data = merge_overrides(data, load_yaml_mapping(config_file))
    data = merge_overrides(data, overrides)
    if data.get("name", name) != name:
        raise TaskConfigError(f"config names task '{data['name']}' but task '{name}' was requested")
    data["name"] = name
    return config_from_dict(_CONFIG_CLASSES[name], data)


def get_task(name: str, config_file: str | Path | None = None, **overrides: Any) -> Task:
    """Build the registered task ``name`` (see :func:`task_config` for how its config is assembled)."""
    cfg = task_config(name, config_file, **overrides)
    return _REGISTRY[name](cfg)


def _ensure_builtin() -> None:
    # Importing the package registers the built-in tasks (reach, push, peg_insertion, real tasks).
    import robot_envs.tasks  # noqa: F401
