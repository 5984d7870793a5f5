"""Pure-Python pieces of the learner node (no rclpy, no torch), testable without ROS."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from mentor_policy.replay import ReplayBuffer, ReplayConfig, ReplayError, load_episode_file

log = logging.getLogger(__name__)


def learner_replay_config(agent_cfg: Any, capacity: int, keep_evicted_episodes: bool) -> ReplayConfig:
    """ReplayConfig of the learner's buffer.

    frame_stack, nstep, discount, batch_size and ``seed`` (the sampling RNG) come from the AgentConfig,
    so replay sampling follows the agent's seed; capacity and eviction come from the learner node config.
    """
    return ReplayConfig.from_agent_config(agent_cfg, capacity=capacity,
                                          delete_evicted=not keep_evicted_episodes)


def seed_episodes(buffer: ReplayBuffer, directory: str | Path, spec: Any, kind: str) -> int:
    """Add every episode file (``ep_*.npz``) of ``directory`` (a demo store or an earlier run's replay) to
    ``buffer``; returns how many were new. Each is keyed by its source directory and file, so seeding again
    (a restart) adds nothing. A missing directory is an error; a corrupt file is skipped with the reason."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{kind} directory {directory} does not exist")
    tag = hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:10]
    added = 0
    for path in sorted(directory.glob("ep_*.npz")):
        key = f"{kind}-{tag}-{path.name.split('_')[1]}"
        if buffer.has_episode(key):
            continue
        try:
            episode = load_episode_file(path, spec)
        except ReplayError as exc:  # another spec, or a damaged file: the rest still seeds
            log.warning("not seeding %s: %s", path, exc)
            continue
        buffer.add_episode(episode, key=key)
        added += 1
    return added
