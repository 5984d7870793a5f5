"""Atomic checkpoints, weights_only loading and clear errors."""
import os

import numpy as np
import pytest
import torch

from mentor_policy.agent import MentorAgent
from mentor_policy.checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from mentor_policy.config import load_agent_config
from mentor_policy.specs import EnvSpec


SPEC = EnvSpec(3, (24, 24), 2, 2)


def _agent(tmp_path=None, **over):
    cfg = load_agent_config("tiny", {"batch_size": 8, "hidden_dim": 32, "num_expl_steps": 0, **over})
    return MentorAgent(SPEC, cfg, device="cpu", store_dir=tmp_path)


def _batch(rng, b=8):
    c = SPEC.stacked_channels(3)
    return {"image": rng.integers(0, 256, (b, c, 24, 24), dtype=np.uint8),
            "next_image": rng.integers(0, 256, (b, c, 24, 24), dtype=np.uint8),
            "proprio": rng.standard_normal((b, 2)).astype(np.float32),
            "next_proprio": rng.standard_normal((b, 2)).astype(np.float32),
            "action": rng.uniform(-1, 1, (b, 2)).astype(np.float32),
            "reward": rng.standard_normal(b).astype(np.float32), "discount": np.full(b, 0.97, np.float32)}


def test_roundtrip_and_atomic_write(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"a": torch.arange(3), "n": 4, "s": "x", "l": [1.5, None]})
    assert load_checkpoint(path)["l"] == [1.5, None]
    assert os.listdir(tmp_path) == ["ck.pt"]  # no temp files left


def test_corrupt_truncated_missing(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"a": torch.randn(100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": np.random.default_rng()}, path)  # a pickled non-tensor object
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_full_agent_state_roundtrip_continues_identically(tmp_path):
    rng = np.random.default_rng(0)
    agent = _agent()
    for i in range(2):
        agent.update(_batch(rng), i)
    path = save_checkpoint(tmp_path / "agent.pt", agent.state_dict())
    saved_beta = agent.dormant_ratio
    batch = _batch(rng)
    m1 = agent.update(batch, 2)
    a1 = agent.act(batch["image"][0], batch["proprio"][0], 10, eval_mode=False)

    other = _agent(seed=7)  # different seed: everything must come from the checkpoint
    other.load_state_dict(load_checkpoint(path))
    assert other.update_count == 2 and other.dormant_ratio == saved_beta
    m2 = other.update(batch, 2)
    a2 = other.act(batch["image"][0], batch["proprio"][0], 10, eval_mode=False)
    assert m1["critic_loss"] == pytest.approx(m2["critic_loss"], rel=1e-5)
    assert m1["actor_loss"] == pytest.approx(m2["actor_loss"], rel=1e-5)
    np.testing.assert_allclose(a1, a2, atol=1e-6)
    for (n, p), q in zip(agent.critic.named_parameters(), other.critic.parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_state_holds_optimisers_counters_rng(tmp_path):
    agent = _agent()
    agent.update(_batch(np.random.default_rng(1)), 0)
    state = agent.state_dict()
    assert set(state["optims"]) == {"encoder", "actor", "critic", "value_predictor"}
    assert state["optims"]["actor"]["state"]  # Adam moments present
    assert state["counters"]["update_count"] == 1
    assert {"torch", "aug", "perturb", "policy_numpy"} <= set(state["rng"])
    assert 0.0 <= state["dormant_ratio"] <= 1.0


def test_shape_mismatch_names_parameter_and_shapes(tmp_path):
    agent = _agent()
    path = save_checkpoint(tmp_path / "a.pt", agent.state_dict())
    bigger = _agent(hidden_dim=48)
    with pytest.raises(CheckpointError, match=r"actor\.fc1\.weight.*\(32, 18\).*\(48, 18\)"):
        bigger.load_state_dict(load_checkpoint(path))
    with pytest.raises(CheckpointError, match="version"):
        agent.load_state_dict({"version": 99})
    with pytest.raises(CheckpointError, match="missing keys"):
        load_module_state(agent.critic, {}, "critic")
