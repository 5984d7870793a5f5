"""Pure-Python pieces of the learner node (no rclpy, no torch), testable without ROS."""
from __future__ import annotations

from typing import Any

from mentor_policy.replay import ReplayConfig


def learner_replay_config(agent_cfg: Any, capacity: int, keep_evicted_episodes: bool) -> ReplayConfig:
    """ReplayConfig of the learner's buffer.

    frame_stack, nstep, discount, batch_size and ``seed`` (the sampling RNG) come from the AgentConfig,
    so replay sampling follows the agent's seed; capacity and eviction come from the learner node config.
    """
    return ReplayConfig.from_agent_config(agent_cfg, capacity=capacity,
                                          delete_evicted=not keep_evicted_episodes)
