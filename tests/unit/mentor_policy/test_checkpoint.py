"""Atomic checkpoints, weights_only loading and clear errors."""
import os

import numpy as np
import pytest
import torch

from mentor_policy.agent import MentorAgent
from mentor_policy.checkpoint import (
    MAGIC,
    CheckpointError,
    load_checkpoint,
    load_module_state,
    read_agent_state,
    read_best,
    read_latest,
    read_policy,
    require_entries,
    run_description,
    save_checkpoint,
    write_best,
    write_latest,
)
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
    with pytest.raises(CheckpointError, match="SHA-256"):
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
    a1 = agent.act(batch["image"][0], batch["proprio"][0], explore=True, step=10)

    other = _agent(seed=7)  # different seed: everything must come from the checkpoint
    other.load_state_dict(load_checkpoint(path))
    assert other.update_count == 2 and other.dormant_ratio == saved_beta
    m2 = other.update(batch, 2)
    a2 = other.act(batch["image"][0], batch["proprio"][0], explore=True, step=10)
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


def test_garbled_bytes_fail_the_digest_instead_of_loading_nan_weights(tmp_path):
    """Random bytes written inside the tensor data once loaded silently as NaN/inf weights."""
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"w": torch.randn(4096)})
    data = bytearray(path.read_bytes())
    assert data.startswith(MAGIC)
    rng = np.random.default_rng(0)
    at = len(data) - 2000  # inside the float storage, not the zip directory
    data[at:at + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_non_finite_values_are_never_saved_over_a_good_checkpoint_nor_loaded(tmp_path):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"agent": {"w": torch.ones(3)}, "updates": 5})
    good = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"non-finite values in \['agent.w'\]"):
        save_checkpoint(path, {"agent": {"w": torch.tensor([1.0, float("nan"), 0.0])}, "updates": 6})
    with pytest.raises(CheckpointError, match="non-finite"):
        save_checkpoint(path, {"loss": float("inf")})
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["latest.pt"]
    legacy = tmp_path / "legacy.pt"  # a file without the verified header (older versions) is still checked
    torch.save({"w": torch.tensor([float("inf")])}, legacy)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(legacy)


def test_a_write_that_does_not_read_back_keeps_the_old_file(tmp_path, monkeypatch):
    import mentor_policy.checkpoint as ck
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"v": torch.tensor([1.0])})
    good = path.read_bytes()
    real_split = ck._split
    monkeypatch.setattr(ck, "_split", lambda data, p: real_split(data, p)[:-1])  # the read-back differs
    with pytest.raises(CheckpointError, match="does not read back intact"):
        save_checkpoint(path, {"v": torch.tensor([2.0])})
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["latest.pt"]


def test_a_foreign_file_as_the_learner_checkpoint_gets_a_clear_error(tmp_path):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, _agent().policy_state())  # a bare policy state where the learner's file belongs
    keys = ("agent", "updates", "weights_version", "episodes")
    with pytest.raises(CheckpointError, match=r"latest.pt is not a learner checkpoint: it holds a bare policy state"):
        require_entries(load_checkpoint(path), path, keys, "a learner checkpoint")
    save_checkpoint(path, {"policy": {}, "eval_success": 0.8})
    with pytest.raises(CheckpointError, match="a policy checkpoint"):
        require_entries(load_checkpoint(path), path, keys, "a learner checkpoint")
    ok = {"agent": {}, "updates": 1, "weights_version": 2, "episodes": 3}
    assert require_entries(ok, path, keys, "a learner checkpoint") is ok


def test_the_learner_files_are_written_and_read_by_one_module(tmp_path):
    agent = _agent()
    run = run_description(agent.cfg.to_dict(), "reach", ["front"])
    write_latest(tmp_path / "latest.pt", agent=agent.state_dict(), policy=agent.policy_state(), env_steps=500,
                 updates=40, weights_version=7, episodes=10, run=run)
    write_best(tmp_path / "best.pt", policy=agent.policy_state(), weights_version=6, env_steps=450,
               eval_success=0.8, run=run, eval_block=2)
    save_checkpoint(tmp_path / "bare.pt", agent.policy_state())
    latest = read_latest(tmp_path / "latest.pt")
    assert (latest["updates"], latest["weights_version"], latest["episodes"], latest["task"]) == (40, 7, 10, "reach")
    best = read_best(tmp_path / "best.pt")
    assert best["eval_success"] == 0.8 and best["eval_block"] == 2 and best["cameras"] == ["front"]
    for name, has_run in (("latest.pt", True), ("best.pt", True), ("bare.pt", False)):
        state, described = read_policy(tmp_path / name)
        assert "encoder.convs.0.weight" in state and (described == run) is has_run and (described == {}) != has_run
    assert read_agent_state(tmp_path / "latest.pt")["config"] == agent.cfg.to_dict()
    save_checkpoint(tmp_path / "agent.pt", agent.state_dict())
    assert read_agent_state(tmp_path / "agent.pt")["counters"]["update_count"] == 0
    with pytest.raises(CheckpointError, match="is not a learner checkpoint: it holds a policy checkpoint"):
        read_latest(tmp_path / "best.pt")
    with pytest.raises(CheckpointError, match="is not a MentorAgent state"):
        read_agent_state(tmp_path / "bare.pt")
    save_checkpoint(tmp_path / "other.pt", {"weights": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="neither a learner checkpoint nor a policy state"):
        read_policy(tmp_path / "other.pt")
