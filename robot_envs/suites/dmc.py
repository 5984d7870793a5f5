"""DeepMind Control Suite (dm-control) from pixels, with the robot_envs env interface.

Paper settings (MENTOR / DrM / DrQ-v2 on DMC): action repeat 2, 84x84 RGB from camera 0
(camera 2 for quadruped), frame stack 3 (done by the agent: mentor_policy/frames.py, not here),
episodes of 1000 simulator steps = 500 agent steps. DMC has no notion of success:
``info["success"]`` is always False and the benchmark compares episode returns instead.

dm-control 1.0.50 needs mujoco 3.17 (it fails on mujoco 4.0's model layout); see
docs/benchmarks.md for the overlay that provides it without touching the project's mujoco.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from mentor_policy.action_repeat import repeat_action
from mentor_policy.specs import EnvSpec
from robot_envs.suites import check_action, ensure_headless_gl, frame_to_obs, validate_image_size

# Domains whose default view (camera 0) is unsuitable; the DrQ-v2 family uses camera 2 there.
_DEFAULT_CAMERA_BY_DOMAIN = {"quadruped": 2}
# dm-control domains whose names contain underscores.
_UNDERSCORE_DOMAINS = ("ball_in_cup", "point_mass", "humanoid_CMU")


def split_dmc_name(name: str) -> tuple[str, str]:
    """``"cartpole_swingup"`` -> ``("cartpole", "swingup")``; ``"ball_in_cup_catch"`` -> ``("ball_in_cup", "catch")``.

    The domain is the part before the first underscore, except for the domains whose own name
    has underscores (``ball_in_cup``, ``point_mass``, ``humanoid_CMU``).
    """
    if "_" not in name:
        raise ValueError(f"DMC task must be '<domain>_<task>', e.g. 'cartpole_swingup', got {name!r}")
    for domain in _UNDERSCORE_DOMAINS:
        if name.startswith(domain + "_"):
            return domain, name[len(domain) + 1:]
    domain, task = name.split("_", 1)
    return domain, task


@dataclass
class DMCConfig:
    """One DeepMind Control task rendered from pixels."""

    domain: str  # dm-control domain, e.g. "cartpole", "hopper", "dog", "quadruped"
    task: str  # task of that domain, e.g. "swingup", "hop", "stand"
    action_repeat: int = 2  # simulator steps per agent step (paper: 2); rewards are summed
    image_size: tuple[int, int] = (84, 84)  # (H, W) of the rendered RGB frame in pixels (paper: 84x84)
    camera_id: Optional[int] = None  # MuJoCo camera index; None = paper default (0, or 2 for quadruped)
    seed: int = 0  # seeds the task's random initial states
    # episode length in simulated seconds; None = the task's own (usually 1000 steps)
    time_limit_s: Optional[float] = None

    def __post_init__(self) -> None:
        if not self.domain or not self.task:
            raise ValueError(f"DMC domain and task must be non-empty, got {self.domain!r}, {self.task!r}")
        if int(self.action_repeat) < 1:
            raise ValueError(f"action_repeat must be >= 1, got {self.action_repeat}")
        self.action_repeat = int(self.action_repeat)
        self.image_size = validate_image_size(self.image_size)
        if self.camera_id is None:
            self.camera_id = _DEFAULT_CAMERA_BY_DOMAIN.get(self.domain, 0)
        if int(self.camera_id) < 0:
            raise ValueError(f"camera_id must be >= 0, got {self.camera_id}")
        if self.time_limit_s is not None and not (float(self.time_limit_s) > 0):
            raise ValueError(f"time_limit_s must be > 0 or None, got {self.time_limit_s}")


def _load_suite(cfg: DMCConfig):
    """Load the dm-control env; turn version mismatches into a message that says what to do."""
    ensure_headless_gl()
    try:
        from dm_control import suite
    except ImportError as exc:
        raise ImportError("dm-control is not installed: `pip install dm-control` (see docs/benchmarks.md)") from exc
    if (cfg.domain, cfg.task) not in suite.ALL_TASKS:
        raise ValueError(f"unknown DMC task {cfg.domain}_{cfg.task}; e.g. cartpole_swingup, hopper_hop, dog_stand")
    kwargs: dict[str, Any] = {"random": int(cfg.seed)}
    if cfg.time_limit_s is not None:
        kwargs["time_limit"] = float(cfg.time_limit_s)
    try:
        return suite.load(cfg.domain, cfg.task, task_kwargs=kwargs)
    except AttributeError as exc:
        from importlib.metadata import version

        import mujoco

        raise RuntimeError(
            f"dm-control {version('dm-control')} cannot drive mujoco {mujoco.__version__} "
            f"({exc}); put a matching mujoco (3.17 for dm-control 1.0.50) first on PYTHONPATH, "
            "see docs/benchmarks.md 'DMC and Meta-World overlays'"
        ) from exc


class DMCEnv:
    """A DMC task with the robot_envs interface (see :mod:`robot_envs.suites`).

    Observation ``{"image": (3, H, W) uint8, "proprio": (0,) float32}``; actions are in [-1, 1]
    and mapped linearly onto the task's action bounds.
    """

    def __init__(self, cfg: DMCConfig) -> None:
        self.cfg = cfg
        self._env = _load_suite(cfg)
        aspec = self._env.action_spec()
        self._low = np.asarray(aspec.minimum, dtype=np.float64)
        self._high = np.asarray(aspec.maximum, dtype=np.float64)
        self.spec = EnvSpec(frame_channels=3, image_size=cfg.image_size, proprio_dim=0,
                            action_dim=int(np.prod(aspec.shape)))
        self._needs_reset = True

    @property
    def name(self) -> str:
        return f"dmc:{self.cfg.domain}_{self.cfg.task}"

    def _render(self) -> dict[str, np.ndarray]:
        h, w = self.cfg.image_size
        frame = self._env.physics.render(height=h, width=w, camera_id=int(self.cfg.camera_id))
        return frame_to_obs(frame, self.cfg.image_size)

    def reset(self) -> dict[str, np.ndarray]:
        """Start an episode; returns the first observation."""
        self._env.reset()
        self._needs_reset = False
        return self._render()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply ``action`` (A,) in [-1, 1] for ``action_repeat`` simulator steps.

        Returns ``(obs, summed reward, terminated, truncated, info)``; ``terminated`` means a true
        terminal (DMC discount 0), ``truncated`` the time limit. ``info = {"success": False,
        "discount": float}``.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step() (and after an episode ended)")
        a = check_action(action, self.spec.action_dim)
        scaled = self._low + (a + 1.0) * 0.5 * (self._high - self._low)
        def once():
            ts = self._env.step(scaled)
            terminal = bool(ts.last() and ts.discount is not None and float(ts.discount) == 0.0)
            return ts, float(ts.reward or 0.0), terminal, bool(ts.last() and not terminal), False

        ts, reward, terminated, truncated, _ = repeat_action(once, self.cfg.action_repeat)
        discount = float(ts.discount if ts.discount is not None else 1.0)
        self._needs_reset = terminated or truncated
        return self._render(), reward, terminated, truncated, {"success": False, "discount": discount}

    def close(self) -> None:
        """Release the simulator and its rendering context."""
        self._env.close()

    def __enter__(self) -> "DMCEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_dmc() -> Optional[str]:
    """None when a DMC env can be built and rendered here, else the precise reason why not."""
    try:
        with DMCEnv(DMCConfig(domain="cartpole", task="swingup", image_size=(32, 32))) as env:
            env.reset()
    except (ImportError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
