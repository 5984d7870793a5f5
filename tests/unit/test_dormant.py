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
    actor = Actor(30, 2, 8, 16, use_moe=True, num_experts=3, top_k=2, expert_hidden=5, gate_hidden=4)
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
