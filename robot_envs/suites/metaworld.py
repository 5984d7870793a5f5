"""Meta-World (v3, gymnasium API) from pixels, with the robot_envs env interface.

Paper settings (MENTOR / DrM on Meta-World): action repeat 2, 84x84 RGB from the ``corner2``
camera moved to position (0.75, 0.075, 0.7) m (the view used by DrM/TD-MPC-style pixel
Meta-World), episodes of 500 simulator steps = 250 agent steps, a new random goal (one of the
task's 50 MT1 variations) every episode, success read from ``info["success"]``.

metaworld 3.1.1 pins mujoco 3.3.0 and fails on mujoco 4.0; see docs/benchmarks.md for the overlay
that provides it without touching the project's mujoco.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from mentor_policy.action_repeat import repeat_action
from mentor_policy.specs import EnvSpec
from robot_envs.suites import check_action, ensure_headless_gl, frame_to_obs, validate_image_size


@dataclass
class MetaWorldConfig:
    """One Meta-World task rendered from pixels."""

    task: str  # task name with or without version suffix, e.g. "assembly", "pick-place", "hammer-v3"
    action_repeat: int = 2  # simulator steps per agent step (paper: 2); rewards summed, success OR-ed
    image_size: tuple[int, int] = (84, 84)  # (H, W) of the rendered RGB frame in pixels (paper: 84x84)
    camera_name: str = "corner2"  # MuJoCo camera of the Meta-World scene (paper: corner2)
    # new camera position (m, world); None keeps the scene's
    camera_pos: Optional[tuple[float, float, float]] = (0.75, 0.075, 0.7)
    episode_length: int = 500  # simulator steps per episode (Meta-World's max_path_length, paper: 500)
    seed: int = 0  # seeds goal sampling and the env's randomness
    flip_vertical: bool = True  # flip frames vertically: Meta-World 3.1 renders the corner cameras upside down

    def __post_init__(self) -> None:
        task = str(self.task).strip()
        if not task:
            raise ValueError("Meta-World task must be non-empty, e.g. 'assembly'")
        self.task = task if task.endswith(("-v2", "-v3")) else task + "-v3"
        if int(self.action_repeat) < 1:
            raise ValueError(f"action_repeat must be >= 1, got {self.action_repeat}")
        self.action_repeat = int(self.action_repeat)
        self.image_size = validate_image_size(self.image_size)
        if not (1 <= int(self.episode_length) <= 500):
            raise ValueError(f"episode_length must be in [1, 500] simulator steps, got {self.episode_length}")
        self.episode_length = int(self.episode_length)
        if self.camera_pos is not None:
            pos = tuple(float(v) for v in self.camera_pos)
            if len(pos) != 3 or not all(np.isfinite(pos)):
                raise ValueError(f"camera_pos must be 3 finite numbers (m) or None, got {self.camera_pos!r}")
            self.camera_pos = pos


def _make_gym_env(cfg: MetaWorldConfig):
    """Build the gymnasium MT1 env; turn missing packages / version mismatches into clear errors."""
    ensure_headless_gl()
    try:
        import gymnasium as gym
        import metaworld  # noqa: F401  (registers the Meta-World/* gymnasium ids)
    except ImportError as exc:
        raise ImportError("Meta-World is not importable: see docs/benchmarks.md 'DMC and Meta-World overlays' "
                          f"({exc})") from exc
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    if cfg.task not in ALL_V3_ENVIRONMENTS:
        raise ValueError(f"unknown Meta-World task {cfg.task!r}; e.g. assembly-v3, pick-place-v3, hammer-v3")
    h, w = cfg.image_size
    try:
        return gym.make("Meta-World/MT1", env_name=cfg.task, seed=int(cfg.seed), render_mode="rgb_array",
                        camera_name=cfg.camera_name, width=w, height=h, max_episode_steps=cfg.episode_length,
                        disable_env_checker=True)  # the checker only warns that Meta-World obs leave its own box
    except ValueError as exc:  # metaworld 3.1.1 on mujoco 4.x fails while building the scene (eq_data size)
        import mujoco

        raise RuntimeError(f"metaworld could not build {cfg.task} on mujoco {mujoco.__version__} ({exc}); "
                           "metaworld 3.1.1 needs mujoco 3.3.0 first on PYTHONPATH, see docs/benchmarks.md "
                           "'DMC and Meta-World overlays'") from exc


class MetaWorldEnv:
    """A Meta-World task with the robot_envs interface (see :mod:`robot_envs.suites`).

    Observation ``{"image": (3, H, W) uint8, "proprio": (0,) float32}``; actions (4,) in [-1, 1]
    (end-effector xyz delta and gripper, as Meta-World defines them).
    """

    def __init__(self, cfg: MetaWorldConfig) -> None:
        self.cfg = cfg
        self._env = _make_gym_env(cfg)
        self._move_camera()
        shape = self._env.action_space.shape
        self.spec = EnvSpec(frame_channels=3, image_size=cfg.image_size, proprio_dim=0,
                            action_dim=int(np.prod(shape)))
        self._low = np.asarray(self._env.action_space.low, dtype=np.float64)
        self._high = np.asarray(self._env.action_space.high, dtype=np.float64)
        self._needs_reset = True
        self._first_reset = True

    @property
    def name(self) -> str:
        return f"metaworld:{self.cfg.task}"

    def _move_camera(self) -> None:
        if self.cfg.camera_pos is None:
            return
        import mujoco

        model = self._env.unwrapped.model
        cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, self.cfg.camera_name)
        if cam_id < 0:
            raise ValueError(f"Meta-World scene has no camera named {self.cfg.camera_name!r}")
        model.cam_pos[cam_id] = np.asarray(self.cfg.camera_pos, dtype=np.float64)

    def _render(self) -> dict[str, np.ndarray]:
        frame = np.asarray(self._env.render())
        if self.cfg.flip_vertical:
            frame = frame[::-1]
        return frame_to_obs(frame, self.cfg.image_size)

    def reset(self) -> dict[str, np.ndarray]:
        """Start an episode with a freshly sampled goal; returns the first observation."""
        seed = int(self.cfg.seed) if self._first_reset else None
        self._env.reset(seed=seed)
        self._first_reset = False
        self._needs_reset = False
        return self._render()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply ``action`` (A,) in [-1, 1] for ``action_repeat`` simulator steps.

        Returns ``(obs, summed reward, terminated, truncated, info)``; ``info["success"]`` is True
        when the task's success flag was set on any of the repeated steps. Meta-World episodes end
        by the time limit (``truncated``), not on success.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step() (and after an episode ended)")
        a = check_action(action, self.spec.action_dim)
        scaled = self._low + (a + 1.0) * 0.5 * (self._high - self._low)
        def once():
            _, r, terminated, truncated, info = self._env.step(scaled)
            return None, float(r), bool(terminated), bool(truncated), bool(info.get("success", 0.0) >= 1.0)

        _, reward, terminated, truncated, success = repeat_action(once, self.cfg.action_repeat)
        self._needs_reset = bool(terminated or truncated)
        return self._render(), reward, bool(terminated), bool(truncated), {"success": success}

    def close(self) -> None:
        """Release the simulator and its rendering context."""
        self._env.close()

    def __enter__(self) -> "MetaWorldEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_metaworld() -> Optional[str]:
    """None when a Meta-World env can be built and rendered here, else the precise reason why not."""
    try:
        with MetaWorldEnv(MetaWorldConfig(task="reach", image_size=(32, 32))) as env:
            env.reset()
    except (ImportError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
