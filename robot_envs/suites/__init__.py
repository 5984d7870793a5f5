"""Adapters that give standard RL benchmark suites the robot_envs env interface.

Every adapter exposes what ``robot_envs.make`` envs expose, so one agent and one training loop
run on all of them:

- ``spec``: :class:`mentor_policy.specs.EnvSpec` (one RGB camera, ``proprio_dim == 0``).
- ``reset() -> obs`` with ``obs = {"image": (3, H, W) uint8 RGB, "proprio": (0,) float32}``.
- ``step(action (A,) in [-1, 1]) -> (obs, reward, terminated, truncated, info)`` where one call
  repeats the action ``action_repeat`` times and sums the rewards; ``info["success"]`` is a bool.
- ``close()``.

Suites are named ``"dmc:<domain>_<task>"`` (DeepMind Control, e.g. ``dmc:cartpole_swingup``,
``dmc:hopper_hop``) and ``"metaworld:<task>"`` (Meta-World v3, e.g. ``metaworld:assembly``).
The third-party packages (dm-control, metaworld, mujoco) are imported lazily when an env is made.

Both suites render with MuJoCo; ``MUJOCO_GL`` defaults to ``egl`` (headless) when unset.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

SUITE_PREFIXES = ("dmc", "metaworld")


def is_suite_task(name: str) -> bool:
    """True when ``name`` has a suite prefix (``"dmc:..."`` or ``"metaworld:..."``)."""
    return isinstance(name, str) and name.split(":", 1)[0] in SUITE_PREFIXES and ":" in name


def parse_suite_task(name: str) -> tuple[str, str]:
    """Split ``"dmc:cartpole_swingup"`` into ``("dmc", "cartpole_swingup")``.

    Raises:
        ValueError: the name has no known suite prefix or an empty task part.
    """
    if not isinstance(name, str) or ":" not in name:
        raise ValueError(f"suite task must look like 'dmc:<domain>_<task>' or 'metaworld:<task>', got {name!r}")
    suite, task = name.split(":", 1)
    if suite not in SUITE_PREFIXES:
        raise ValueError(f"unknown suite {suite!r} in {name!r}; known: {', '.join(SUITE_PREFIXES)}")
    if not task.strip():
        raise ValueError(f"empty task name in {name!r}")
    return suite, task.strip()


def make_suite_env(name: str, **overrides: Any):
    """Make a suite env from its prefixed name; ``overrides`` set fields of the suite's config.

    Example: ``make_suite_env("dmc:cartpole_swingup", seed=1, image_size=(64, 64))``.
    Returns a :class:`robot_envs.suites.dmc.DMCEnv` or :class:`robot_envs.suites.metaworld.MetaWorldEnv`.
    """
    suite, task = parse_suite_task(name)
    if suite == "dmc":
        from robot_envs.suites.dmc import DMCConfig, DMCEnv, split_dmc_name

        domain, dmc_task = split_dmc_name(task)
        return DMCEnv(DMCConfig(domain=domain, task=dmc_task, **overrides))
    from robot_envs.suites.metaworld import MetaWorldConfig, MetaWorldEnv

    return MetaWorldEnv(MetaWorldConfig(task=task, **overrides))


def ensure_headless_gl() -> None:
    """Default MuJoCo to headless EGL rendering unless the caller chose a backend already."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def check_action(action: Any, action_dim: int) -> np.ndarray:
    """Validate a normalised action: shape ``(action_dim,)``, finite; returns it clipped to [-1, 1] as float64.

    Raises:
        ValueError: wrong shape or a NaN / inf entry (the message shows the offending action).
    """
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (action_dim,):
        raise ValueError(f"action must have shape ({action_dim},), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action contains NaN or inf: {a.tolist()}")
    return np.clip(a, -1.0, 1.0)


def frame_to_obs(frame: np.ndarray, image_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Turn one rendered ``(H, W, 3)`` uint8 RGB frame into the env observation dict.

    Returns ``{"image": (3, H, W) uint8, "proprio": (0,) float32}``.
    """
    if frame.shape != (image_size[0], image_size[1], 3):
        raise ValueError(f"rendered frame has shape {frame.shape}, expected {(image_size[0], image_size[1], 3)}")
    image = np.ascontiguousarray(np.transpose(np.asarray(frame, dtype=np.uint8), (2, 0, 1)))
    return {"image": image, "proprio": np.zeros((0,), dtype=np.float32)}


def validate_image_size(image_size: Any) -> tuple[int, int]:
    """Return ``image_size`` as an ``(H, W)`` int tuple, each at least 16 px."""
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"image_size must be (H, W), got {image_size!r}") from exc
    if min(h, w) < 16:
        raise ValueError(f"image_size must be at least 16x16, got {(h, w)}")
    return h, w
