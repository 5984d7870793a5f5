"""Dormant ratio from recorded activations, and sigma / lambda / perturb factor formulas."""
import math

import pytest
import torch

from mentor_policy import dormant as dm
from mentor_policy.networks import Actor


def test_counts_on_known_activations():
    a = torch.ones(1, 8, 10)
    a[:, :, :3] = 0.0  # 3 dead neurons
    a[:, :, 3] = 0.01  # below 0.025 * layer mean (= 0.025 * 0.701)
    experts = torch.ones(2, 8, 4)
    experts[1, :, 0] = 0.0  # one dead neuron in expert 1 only
    dormant, total = dm.dormant_counts({"layer": a, "experts": experts}, 0.025)
    assert (dormant, total) == (4 + 1, 10 + 8)
    assert dm.dormant_ratio({"layer": a}, 0.025) == pytest.approx(0.4)


def test_per_expert_threshold_uses_each_experts_own_mean():
    experts = torch.ones(2, 4, 3)
    experts[0] *= 100.0  # a loud expert must not make the quiet expert's neurons dormant
    assert dm.dormant_counts({"e": experts}, 0.025) == (0, 6)


def test_actor_records_every_linear_layer():
    actor = Actor(30, 0, 2, 8, 16, use_moe=True, num_experts=3, top_k=2, expert_hidden=5, gate_hidden=4)
    acts = {}
    actor(torch.randn(7, 30), acts=acts)
    # trunk 8 + fc1 16 + gate 4 + 3 + experts 3*5 + 3*16 + out 2
    assert dm.dormant_counts(acts)[1] == 8 + 16 + 4 + 3 + 15 + 48 + 2
    with pytest.raises(ValueError, match="at least one"):
        dm.dormant_ratio({})
    with pytest.raises(ValueError, match=r"\(G, B, n\)"):
        dm.dormant_ratio({"x": torch.ones(3, 4)})


def test_formulas():
    assert dm.exploration_std(0.2) == pytest.approx(0.4)
    assert dm.exploration_std(1.0, 0.8) == pytest.approx(0.8 / (1 + math.exp(-8)))
    assert dm.value_lambda(0.2, 0.6) == pytest.approx(0.3)
    assert dm.value_lambda(1.0, 0.6) == pytest.approx(0.6 / (1 + math.exp(40)))
    assert dm.value_lambda(100.0) == 0.0
    assert dm.perturb_factor(0.0, 0.2, 0.9) == 0.9
    assert dm.perturb_factor(0.3, 0.2, 0.9) == pytest.approx(0.4)
    assert dm.perturb_factor(0.9, 0.2, 0.9) == 0.2


# ---- post-activation definition, checked against an independent computation -------------------
def _independent_ratio(outputs: list[torch.Tensor], threshold: float = 0.025) -> float:
    """DrM's rule written out by hand over a list of (B, n) post-activation outputs, one per layer."""
    dormant = total = 0
    for out in outputs:
        score = out.abs().mean(dim=0)
        dormant += int((score < threshold * score.mean()).sum())
        total += score.numel()
    return dormant / total


def test_mlp_actor_ratio_matches_forward_hooks_after_each_nonlinearity():
    """Rebuild the MLP actor from nn modules, hook every nonlinearity, and compare."""
    torch.manual_seed(0)
    actor = Actor(30, 4, 2, 8, 16, use_moe=False)
    with torch.no_grad():  # kill a few fc1 neurons so that the ratio is not trivially 0
        actor.fc1.bias[:5] = -50.0
    obs = torch.randn(64, 34)
    image, proprio = obs[:, :30], obs[:, 30:]
    nonlin = {"trunk": torch.nn.Tanh(), "fc1": torch.nn.ReLU(), "fc2": torch.nn.ReLU(), "out": torch.nn.Tanh()}
    seen: list[torch.Tensor] = []
    for module in nonlin.values():
        module.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    with torch.no_grad():
        t = nonlin["trunk"](actor.trunk.norm(actor.trunk.linear(image)))
        h = nonlin["fc1"](actor.fc1(torch.cat([t, proprio], dim=1)))
        h = nonlin["fc2"](actor.fc2(h))
        nonlin["out"](actor.out(h))
    acts = {}
    actor(obs, acts=acts)
    assert len(seen) == len(acts) == 4
    assert dm.dormant_ratio(acts) == pytest.approx(_independent_ratio(seen))
    assert dm.dormant_ratio(acts) >= 5 / (8 + 16 + 16 + 2)  # the 5 dead neurons count


def test_moe_actor_ratio_matches_a_hand_computation_of_every_expert_and_the_gate():
    torch.manual_seed(1)
    actor = Actor(30, 0, 2, 8, 16, use_moe=True, num_experts=3, top_k=2, expert_hidden=5, gate_hidden=4)
    actor.eval()  # no gate dropout
    obs = torch.randn(50, 30)
    with torch.no_grad():
        t = torch.tanh(actor.trunk.norm(actor.trunk.linear(obs)))
        h = torch.relu(actor.fc1(t))
        moe = actor.moe
        g = torch.relu(moe.gate_fc1(h))
        probs = torch.softmax(moe.gate_fc2(g), dim=-1)
        ex = moe.experts
        hidden = [torch.relu(h @ ex.w1[e] + ex.b1[e]) for e in range(3)]
        outs = [torch.relu(hidden[e] @ ex.w2[e] + ex.b2[e]) for e in range(3)]
        y, _ = moe(h)
        mu = torch.tanh(actor.out(torch.relu(y)))
    acts = {}
    actor(obs, acts=acts)
    expected = _independent_ratio([t, h, g, probs, *hidden, *outs, mu])
    assert dm.dormant_ratio(acts) == pytest.approx(expected)


@pytest.mark.parametrize("preset", ["tiny", "cpu", "paper"])
def test_dormant_ratio_at_initialisation_is_clearly_above_zero(preset):
    """Measured on pre-activation values the ratio was 0.000 for every net: sigma, lambda and alpha never moved."""
    import numpy as np

    from mentor_policy.config import load_agent_config
    from mentor_policy.policy import ActorPolicy
    from mentor_policy.specs import EnvSpec

    cfg = load_agent_config(preset, {"seed": 0})
    spec = EnvSpec(frame_channels=3, image_size=(48, 48), proprio_dim=4, action_dim=3)
    policy = ActorPolicy(spec, cfg, device="cpu")
    rng = np.random.default_rng(0)
    # camera-like batch: one smooth scene with a small object at random places (little variation across samples)
    base = np.full((policy.in_channels, 48, 48), 90, np.uint8)
    images = np.repeat(base[None], 32, axis=0)
    for i in range(32):
        y, x = rng.integers(4, 40, size=2)
        images[i, :, y:y + 5, x:x + 5] = 220
    proprio = torch.as_tensor(rng.uniform(-1, 1, (32, 4)), dtype=torch.float32)
    acts = {}
    with torch.no_grad():
        policy.actor(policy.features(torch.as_tensor(images), proprio), acts=acts)
    beta = dm.dormant_ratio(acts)
    print(f"{preset}: beta at init {beta:.3f}")
    assert beta > 0.05, f"{preset}: beta at init {beta:.3f}"
