"""Dormant ratio (DrM) and the exploration quantities derived from it.

Activations are the actor's layer outputs *after their nonlinearity* (DrM's definition: a neuron is
dormant when its mean |activation| over the batch is small relative to its layer's mean), recorded
during a forward pass the update already makes (``Actor.forward(obs, acts=dict)``); each entry has
shape ``(G, B, n)``: ``G`` separate layers (1 for a Linear, ``E`` for a batched expert layer, so
every expert's neurons are counted separately), ``B`` samples, ``n`` neurons. Measured before the
ReLU instead, almost no neuron ever has a near-zero mean |value|, so the ratio would be ~0 for any
network and sigma, lambda and the perturbation factor would never move.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch


def dormant_counts(acts: Mapping[str, torch.Tensor], threshold: float = 0.025) -> tuple[int, int]:
    """``(dormant, total)`` neurons. A neuron is dormant when its mean ``|output|`` over the batch is
    below ``threshold`` times the mean of that quantity over its layer."""
    dormant = 0
    total = 0
    with torch.no_grad():
        for name, a in acts.items():
            if a.dim() != 3:
                raise ValueError(f"activation {name!r} must be (G, B, n), got shape {tuple(a.shape)}")
            score = a.abs().mean(dim=1)  # (G, n)
            layer_mean = score.mean(dim=1, keepdim=True)  # (G, 1)
            dormant += int((score < threshold * layer_mean).sum())
            total += score.numel()
    return dormant, total


def dormant_ratio(acts: Mapping[str, torch.Tensor], threshold: float = 0.025) -> float:
    """Fraction of dormant neurons over all recorded layers (0..1)."""
    dormant, total = dormant_counts(acts, threshold)
    if total == 0:
        raise ValueError("dormant_ratio needs at least one recorded layer")
    return dormant / total


def exploration_std(beta: float, max_std: float = 0.8, temp: float = 10.0, target: float = 0.2) -> float:
    """sigma = max_std / (1 + exp(-temp * (beta - target)))."""
    return max_std / (1.0 + math.exp(-temp * (beta - target)))


def value_lambda(beta: float, target_lambda: float = 0.6, temp: float = 50.0, target: float = 0.2) -> float:
    """lambda = target_lambda / (1 + exp(temp * (beta - target)))."""
    z = temp * (beta - target)
    if z > 700:  # exp overflow: the sigmoid is 0 there
        return 0.0
    return target_lambda / (1.0 + math.exp(z))


def perturb_factor(beta: float, min_pf: float = 0.2, max_pf: float = 0.9) -> float:
    """alpha = clip(1 - 2 beta, min_pf, max_pf): weight kept on the current parameters."""
    return min(max(1.0 - 2.0 * beta, min_pf), max_pf)
