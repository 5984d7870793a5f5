"""MoE layer: batched experts equal per-expert Linear computation; top-k routing; aux loss."""
import pytest
import torch
import torch.nn.functional as F

from mentor_policy.agent import moe_aux_terms
from mentor_policy.networks import Actor, MoE


def _moe(seed=0):
    torch.manual_seed(seed)
    moe = MoE(dim=12, num_experts=5, top_k=2, expert_hidden=7, gate_hidden=6, gate_dropout=0.1).eval()
    with torch.no_grad():  # non-zero biases so they are tested too
        moe.experts.b1.normal_()
        moe.experts.b2.normal_()
    return moe


def _loop_reference(moe, x):
    """Per-expert Python loop with the same weights (the reference's dense formulation)."""
    probs = torch.softmax(moe.gate_fc2(F.relu(moe.gate_fc1(x))), dim=-1)
    vals, idx = torch.topk(probs, moe.top_k, dim=-1)
    vals = vals / vals.sum(-1, keepdim=True)
    e = moe.experts
    outs = torch.stack([F.relu(x @ e.w1[i] + e.b1[i]) @ e.w2[i] + e.b2[i] for i in range(moe.num_experts)], 1)
    w = torch.zeros_like(probs).scatter(1, idx, vals)
    return (outs * w.unsqueeze(-1)).sum(1), probs, idx


def test_dense_and_sparse_match_loop_reference():
    moe = _moe()
    x = torch.randn(9, 12)
    ref, probs, idx = _loop_reference(moe, x)
    dense, routing = moe(x)
    sparse, _ = moe(x, sparse=True)
    assert torch.allclose(dense, ref, atol=1e-5)
    assert torch.allclose(sparse, ref, atol=1e-5)
    assert torch.allclose(routing["probs"], probs) and torch.equal(routing["topk_idx"], idx)
    assert torch.allclose(routing["probs"].sum(-1), torch.ones(9))


def test_only_top_k_experts_contribute():
    moe = _moe(1)
    x = torch.randn(4, 12)
    _, routing = moe(x)
    idx = routing["topk_idx"]
    unused = [e for e in range(5) if e not in idx[0].tolist()]
    out0, _ = moe(x[:1])
    with torch.no_grad():  # changing an unused expert must not change sample 0's output
        moe.experts.w2[unused[0]].add_(10.0)
    out1, _ = moe(x[:1])
    assert torch.allclose(out0, out1)


def test_records_per_expert_activations():
    moe = _moe()
    acts = {}
    moe(torch.randn(6, 12), acts=acts)
    assert acts["moe.experts.fc1"].shape == (5, 6, 7)
    assert acts["moe.experts.fc2"].shape == (5, 6, 12)
    assert acts["moe.gate_fc1"].shape == (1, 6, 6) and acts["moe.gate_fc2"].shape == (1, 6, 5)


def test_aux_terms_values_and_gradient():
    probs = torch.full((4, 4), 0.25, requires_grad=True)
    idx = torch.tensor([[0, 1], [2, 3], [0, 1], [2, 3]])
    terms = moe_aux_terms(probs, idx)
    assert torch.allclose(terms["usage"], torch.full((4,), 0.25))
    assert terms["balance"].item() == pytest.approx(1.0)
    assert terms["entropy"].item() == pytest.approx(torch.log(torch.tensor(4.0)).item())
    # skewed routing -> larger balance loss, and the gate gets a gradient from it
    logits = torch.zeros(8, 4, requires_grad=True)
    p = torch.softmax(logits + torch.tensor([3.0, 0, 0, 0]), -1)
    t = moe_aux_terms(p, torch.topk(p, 2, -1).indices)
    assert t["balance"].item() > 1.0
    t["balance"].backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_moe_actor_gradients_reach_experts_and_gate():
    torch.manual_seed(0)
    actor = Actor(20, 0, 3, 8, 16, use_moe=True, num_experts=4, top_k=2, expert_hidden=8, gate_hidden=8)
    mu, routing = actor(torch.randn(10, 20))
    loss = mu.pow(2).sum() + moe_aux_terms(routing["probs"], routing["topk_idx"])["balance"]
    loss.backward()
    assert actor.moe.experts.w1.grad.abs().sum() > 0 and actor.moe.experts.w2.grad.abs().sum() > 0
    assert actor.moe.gate_fc1.weight.grad.abs().sum() > 0
