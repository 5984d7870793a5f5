"""Task-oriented and random perturbation of MoE and MLP actors, critics and value predictors."""
import copy

import pytest
import torch

from mentor_policy.networks import Actor, Critic
from mentor_policy.perturb import (
    perturbable_names,
    random_perturb,
    reset_optimizer,
    sample_from_stats,
    snapshot_stats,
    task_oriented_perturb,
)


def _actor(use_moe, seed=0):
    torch.manual_seed(seed)
    return Actor(24, 0, 3, 8, 16, use_moe=use_moe, num_experts=4, top_k=2, expert_hidden=6, gate_hidden=5)


def _snapshots(module, k, scale=0.5):
    snaps = []
    for i in range(k):
        m = copy.deepcopy(module)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * scale)
        snaps.append({n: v.clone() for n, v in m.state_dict().items()})
    return snaps


def test_perturbable_names_cover_experts_and_gate_not_layernorm():
    names = perturbable_names(_actor(True))
    assert {"moe.experts.w1", "moe.experts.b1", "moe.experts.w2", "moe.experts.b2",
            "moe.gate_fc1.weight", "moe.gate_fc2.bias", "trunk.0.weight", "fc1.weight", "out.bias"} <= set(names)
    assert not any(n.startswith("trunk.1") for n in names)  # LayerNorm
    assert "fc2.weight" in perturbable_names(_actor(False))


@pytest.mark.parametrize("use_moe", [True, False])
def test_task_oriented_result_lies_between_current_and_sample(use_moe):
    actor = _actor(use_moe)
    before = {n: p.detach().clone() for n, p in actor.named_parameters()}
    snaps = _snapshots(actor, 4)
    alpha = 0.7
    sampled = task_oriented_perturb(actor, snaps, alpha, torch.Generator().manual_seed(5))
    # the same generator seed reproduces the sample
    again = sample_from_stats(snapshot_stats(snaps, perturbable_names(actor)), torch.Generator().manual_seed(5))
    assert sampled.keys() == again.keys() and all(torch.equal(sampled[n], again[n]) for n in sampled)
    params = dict(actor.named_parameters())
    for name, s in sampled.items():
        p, b = params[name].detach(), before[name]
        assert p.shape == b.shape == s.shape
        lo, hi = torch.minimum(b, s), torch.maximum(b, s)
        assert bool(((p >= lo - 1e-6) & (p <= hi + 1e-6)).all()), name
        assert torch.allclose(p, alpha * b + (1 - alpha) * s, atol=1e-6)
        assert not torch.equal(p, b)
    # LayerNorm untouched
    assert torch.equal(params["trunk.1.weight"].detach(), before["trunk.1.weight"])


@pytest.mark.parametrize("use_moe", [True, False])
def test_identical_snapshots_equal_to_current_leave_weights(use_moe):
    actor = _actor(use_moe)
    state = {n: v.clone() for n, v in actor.state_dict().items()}
    task_oriented_perturb(actor, [state] * 5, 0.3, torch.Generator().manual_seed(0))
    for n, v in actor.state_dict().items():
        assert torch.allclose(v, state[n], atol=1e-6), n


def test_stats_mean_std_and_floor():
    snaps = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 2.0])}]
    (mean, std), = snapshot_stats(snaps, ["w"]).values()
    assert torch.allclose(mean, torch.tensor([2.0, 2.0]))
    assert std[0] == pytest.approx(2 ** 0.5) and std[1] == pytest.approx(1e-7)
    with pytest.raises(ValueError, match=">= 2"):
        snapshot_stats(snaps[:1], ["w"])
    with pytest.raises(ValueError, match="shape"):
        snapshot_stats([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}], ["w"])


def test_random_perturb_critic_and_moe():
    for module in (Critic(24, 0, 3, 8, 16), _actor(True)):
        before = {n: p.detach().clone() for n, p in module.named_parameters()}
        fresh = random_perturb(module, 0.8)
        params = dict(module.named_parameters())
        for name, f in fresh.items():
            assert torch.allclose(params[name].detach(), 0.8 * before[name] + 0.2 * f, atol=1e-6)
        assert any(not torch.equal(params[n].detach(), before[n]) for n in fresh)


def test_reset_optimizer_clears_adam_state():
    actor = _actor(True)
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    actor(torch.randn(4, 24))[0].sum().backward()
    opt.step()
    assert len(opt.state) > 0
    reset_optimizer(opt)
    assert len(opt.state) == 0
    actor(torch.randn(4, 24))[0].sum().backward()
    opt.step()  # still usable
    assert all(int(s["step"]) == 1 for s in opt.state.values())


def test_bad_alpha_rejected():
    actor = _actor(False)
    state = actor.state_dict()
    with pytest.raises(ValueError, match="alpha"):
        task_oriented_perturb(actor, [state, state], 1.5)
