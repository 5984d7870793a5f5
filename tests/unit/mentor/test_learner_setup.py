"""learner_setup: the learner node's ReplayConfig is built from its AgentConfig, seed included."""
import numpy as np

from mentor.learner_setup import learner_replay_config
from mentor_policy.config import AgentConfig


def test_learner_replay_config_takes_the_agent_seed():
    acfg = AgentConfig(seed=7, frame_stack=2, nstep=2, discount=0.95, batch_size=16)
    cfg = learner_replay_config(acfg, capacity=500, keep_evicted_episodes=True)
    assert cfg.seed == 7  # was always ReplayConfig's default 0
    assert (cfg.frame_stack, cfg.nstep, cfg.discount, cfg.batch_size) == (2, 2, 0.95, 16)
    assert cfg.capacity == 500 and cfg.delete_evicted is False
    assert learner_replay_config(acfg, capacity=500, keep_evicted_episodes=False).delete_evicted is True
    other = learner_replay_config(AgentConfig(seed=8), capacity=500, keep_evicted_episodes=True)
    assert other.seed == 8
    # the sampling RNG is seeded from it (ReplayBuffer: np.random.default_rng(cfg.seed))
    assert np.random.default_rng(cfg.seed).integers(1 << 30) != np.random.default_rng(other.seed).integers(1 << 30)
