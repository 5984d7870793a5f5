"""Expert-usage and gradient-conflict diagnostics on tiny real networks (CPU, seconds)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mentor_policy.agent import MentorAgent
from mentor_policy.checkpoint import save_checkpoint
from mentor_policy.config import AgentConfig
from mentor_policy.diagnostics import (
    compare_gradient_conflict,
    cosine_matrix,
    expert_usage,
    expert_usage_by_step,
    expert_usage_by_task,
    gradient_conflict,
    routing_weights,
    write_usage_heatmap,
)
from mentor_policy.diagnostics import main as diagnostics_main
from mentor_policy.policy import ActorPolicy
from mentor_policy.replay import ReplayBuffer, ReplayConfig
from mentor_policy.specs import EnvSpec

SPEC = EnvSpec(frame_channels=3, image_size=(24, 24), proprio_dim=2, action_dim=2)


def tiny_cfg(**kw) -> AgentConfig:
    base = dict(frame_stack=2, encoder_channels=4, feature_dim=8, hidden_dim=16, num_experts=4, moe_top_k=2,
                expert_hidden_dim=8, gate_hidden_dim=8, batch_size=8, num_expl_steps=0, num_seed_frames=0,
                channels_last=False, seed=3)
    base.update(kw)
    return AgentConfig(**base)


def obs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (n, 6, 24, 24), dtype=np.uint8)
    proprio = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    return image, proprio


@pytest.fixture(scope="module")
def policy() -> ActorPolicy:
    torch.manual_seed(0)
    return ActorPolicy(SPEC, tiny_cfg(), device="cpu")


def test_routing_weights_are_topk_distributions(policy):
    image, proprio = obs(10)
    w = routing_weights(policy, image, proprio, batch_size=4)  # several chunks
    assert w.shape == (10, 4)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    assert ((w > 0).sum(axis=1) <= 2).all() and (w >= 0).all()
    # deterministic (dropout off) and independent of the chunking
    np.testing.assert_allclose(w, routing_weights(policy, image, proprio, batch_size=10), atol=1e-6)  # float32 sums
    assert policy.training  # the diagnostic restored the module's mode


def test_usage_per_task_and_step(policy, tmp_path):
    image, proprio = obs(12, seed=1)
    tasks = ["peg", "golf", "cable"] * 4
    by_task = expert_usage_by_task(policy, image, proprio, tasks)
    assert by_task.labels == ("cable", "golf", "peg") and by_task.usage.shape == (3, 4)
    np.testing.assert_allclose(by_task.usage.sum(axis=1), 1.0, atol=1e-9)
    assert by_task.counts.tolist() == [4, 4, 4]
    # the per-task mean is the mean of that task's rows
    w = routing_weights(policy, image, proprio)
    np.testing.assert_allclose(by_task.usage[2], w[0::3].mean(axis=0), atol=1e-12)

    by_step = expert_usage_by_step(policy, image, proprio, steps=list(range(12)), bin_size=5)
    assert by_step.labels == (0, 5, 10) and by_step.counts.tolist() == [5, 5, 2]
    np.testing.assert_allclose(by_step.usage.sum(axis=1), 1.0, atol=1e-9)

    png = write_usage_heatmap(by_task, tmp_path / "usage.png", title="tiny")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000


def test_usage_rejects_bad_input(policy):
    image, proprio = obs(3)
    with pytest.raises(ValueError, match="channels"):
        routing_weights(policy, image[:, :3], proprio)
    with pytest.raises(ValueError, match="proprio"):
        routing_weights(policy, image, proprio[:2])
    bad = proprio.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        routing_weights(policy, image, bad)
    with pytest.raises(ValueError):
        expert_usage(np.ones((3, 4)) / 4, ["a", "b"])
    mlp = ActorPolicy(SPEC, tiny_cfg(use_moe=False), device="cpu")
    with pytest.raises(ValueError, match="MLP"):
        routing_weights(mlp, image, proprio)


def test_cosine_matrix_properties():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0]])
    m = cosine_matrix(list(g))
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(np.diag(m), 1.0)
    assert m[0, 1] == pytest.approx(0.0) and m[0, 2] == pytest.approx(-1.0)
    assert m[3, 0] == 0.0  # a zero gradient has no direction


# ---- with a full MentorAgent (critic needed for the actor loss) ------------------------------
TOY_SPEC = EnvSpec(frame_channels=3, image_size=(32, 32), proprio_dim=2, action_dim=2)


def make_agent(spec: EnvSpec = SPEC, **kw) -> MentorAgent:
    return MentorAgent(spec, tiny_cfg(perturb_mode="none", **kw), device="cpu")


def test_gradient_conflict_identical_batches_are_parallel():
    agent = make_agent()
    image, proprio = obs(6, seed=2)
    batch = {"image": image, "proprio": proprio}
    before = {k: v.clone() for k, v in agent.actor.state_dict().items()}
    gc = gradient_conflict(agent, {"a": batch, "b": dict(batch)})
    assert gc.tasks == ("a", "b") and gc.matrix.shape == (2, 2)
    np.testing.assert_allclose(gc.matrix, 1.0, atol=1e-9)
    assert gc.mean == pytest.approx(1.0) and (gc.grad_norms > 0).all()
    # a diagnostic: no weight changed, no .grad left behind
    for k, v in agent.actor.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in agent.actor.parameters())


def test_gradient_conflict_moe_vs_mlp_shapes_and_symmetry():
    batches = {}
    for i, name in enumerate(("peg", "golf", "cable")):
        image, proprio = obs(5, seed=10 + i)
        batches[name] = {"image": image, "proprio": proprio}
    result = compare_gradient_conflict({"moe": make_agent(), "mlp": make_agent(use_moe=False)}, batches)
    for name, gc in result.items():
        assert gc.matrix.shape == (3, 3), name
        np.testing.assert_allclose(gc.matrix, gc.matrix.T, atol=1e-12)
        np.testing.assert_allclose(np.diag(gc.matrix), 1.0)
        assert (np.abs(gc.matrix) <= 1.0 + 1e-12).all()
        off = gc.matrix[~np.eye(3, dtype=bool)]
        assert gc.mean == pytest.approx(off.mean())
    with pytest.raises(ValueError, match="image"):
        gradient_conflict(make_agent(), {"a": {"proprio": np.zeros((2, 2), np.float32)}})


def test_cli_toy_rollouts(tmp_path, capsys):
    agent = MentorAgent(TOY_SPEC, tiny_cfg(perturb_mode="none"), device="cpu")
    ckpt = save_checkpoint(tmp_path / "agent.pt", agent.state_dict())
    assert diagnostics_main(["--checkpoint", str(ckpt), "--task", "toy", "--episodes", "1", "--bin", "4",
                             "--out", str(tmp_path / "diag"), "--device", "cpu"]) == 0
    import json

    report = json.loads((tmp_path / "diag" / "diagnostics.json").read_text())
    # toy: 30 env steps / action_repeat 2 = 15 agent steps + the first observation = 16 samples
    assert report["samples"] == 16 and (tmp_path / "diag" / "usage_by_step.png").is_file()
    for row in report["usage_by_step"].values():
        assert sum(row) == pytest.approx(1.0)


def test_cli_replay_multitask(tmp_path, capsys):
    # proprio = 2 base dims + a 3-way task one-hot, as the multi-task peg insertion builds it
    spec = EnvSpec(frame_channels=3, image_size=(24, 24), proprio_dim=5, action_dim=2)
    agent = make_agent(spec)
    replay = ReplayBuffer(tmp_path / "replay", ReplayConfig(capacity=200, frame_stack=2, batch_size=4, fsync=False),
                          spec)
    rng = np.random.default_rng(0)
    for ep_i in range(3):
        t = 6
        proprio = np.zeros((t + 1, 5), np.float32)
        proprio[:, :2] = rng.uniform(-1, 1, (t + 1, 2))
        proprio[:, 2 + ep_i] = 1.0
        replay.add_episode({"image": rng.integers(0, 256, (t + 1, 3, 24, 24), dtype=np.uint8), "proprio": proprio,
                            "action": np.zeros((t + 1, 2), np.float32), "reward": np.zeros(t + 1, np.float32),
                            "discount": np.ones(t + 1, np.float32)})
    ckpt = save_checkpoint(tmp_path / "agent.pt", agent.state_dict())
    assert diagnostics_main(["--checkpoint", str(ckpt), "--task", "replay", "--replay-dir", str(tmp_path / "replay"),
                             "--onehot-dims", "3", "--out", str(tmp_path / "diag"), "--device", "cpu"]) == 0
    import json

    report = json.loads((tmp_path / "diag" / "diagnostics.json").read_text())
    assert sorted(report["usage_by_task"]) == ["task0", "task1", "task2"]
    gc = np.array(report["gradient_conflict"]["matrix"])
    assert gc.shape == (3, 3) and np.allclose(gc, gc.T) and np.allclose(np.diag(gc), 1.0)
    assert "gradient conflict (MoE actor)" in capsys.readouterr().out
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="bad.pt"):
        diagnostics_main(["--checkpoint", str(tmp_path / "bad.pt"), "--out", str(tmp_path / "d2")])
