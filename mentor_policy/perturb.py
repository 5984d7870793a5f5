"""Network perturbation: task-oriented (MENTOR, toward the top-K snapshots) and random (DrM).

Both mix every *perturbable* parameter ``theta <- alpha * theta + (1 - alpha) * other``, where
``other`` is a sample from the element-wise Gaussian of the top-K snapshots (task-oriented) or the
parameters of a freshly initialised copy (random). Perturbable parameters are the weights and
biases of ``nn.Linear`` / ``nn.Conv2d`` layers and of modules flagged ``perturbable = True``
(the batched MoE experts); LayerNorm parameters are left alone (as in DrM).
"""
from __future__ import annotations

import copy
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from mentor_policy.networks import weight_init

MIN_STD = 1e-7


def perturbable_names(module: nn.Module) -> list[str]:
    """Names (as in ``module.state_dict()``) of the parameters that perturbation touches."""
    names = []
    for mod_name, mod in module.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)) or getattr(mod, "perturbable", False):
            for p_name, _ in mod.named_parameters(recurse=False):
                names.append(f"{mod_name}.{p_name}" if mod_name else p_name)
    return names


def snapshot_stats(snapshots: Sequence[Mapping[str, torch.Tensor]], names: Sequence[str]
                   ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Element-wise ``(mean, std)`` over the snapshots for each name; ``std >= 1e-7``."""
    if len(snapshots) < 2:
        raise ValueError(f"snapshot statistics need >= 2 snapshots, got {len(snapshots)}")
    stats = {}
    for name in names:
        try:
            stacked = torch.stack([s[name].to(torch.float32) for s in snapshots])
        except KeyError as exc:
            raise KeyError(f"snapshot lacks parameter {name!r}") from exc
        except RuntimeError as exc:
            shapes = [tuple(s[name].shape) for s in snapshots]
            raise ValueError(f"snapshots disagree on the shape of {name!r}: {shapes}") from exc
        std, mean = torch.std_mean(stacked, dim=0)
        stats[name] = (mean, std.clamp_min(MIN_STD))
    return stats


def sample_from_stats(stats: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One sample ``theta~ ~ N(mean, std)`` per parameter (CPU, float32)."""
    return {name: torch.normal(mean, std, generator=generator) for name, (mean, std) in stats.items()}


def mix_parameters_(module: nn.Module, others: Mapping[str, torch.Tensor], alpha: float) -> None:
    """In place: ``theta <- alpha * theta + (1 - alpha) * others[name]`` for every given name."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"perturb factor alpha must lie in [0, 1], got {alpha}")
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, other in others.items():
            p = params[name]
            if tuple(other.shape) != tuple(p.shape):
                raise ValueError(f"perturbation of {name!r}: shape {tuple(other.shape)} != parameter {tuple(p.shape)}")
            p.mul_(alpha).add_(other.to(device=p.device, dtype=p.dtype), alpha=1.0 - alpha)


def task_oriented_perturb(module: nn.Module, snapshots: Sequence[Mapping[str, torch.Tensor]], alpha: float,
                          generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Perturb ``module`` toward a sample of its top-K snapshots (state dicts of the same module).

    Returns the sampled parameters (CPU) that were mixed in.
    """
    stats = snapshot_stats(snapshots, perturbable_names(module))
    sampled = sample_from_stats(stats, generator)
    mix_parameters_(module, sampled, alpha)
    return sampled


def random_perturb(module: nn.Module, alpha: float,
                   init_fn: Callable[[nn.Module], None] = weight_init) -> dict[str, torch.Tensor]:
    """DrM: mix with a freshly initialised copy of ``module``; returns the fresh parameters."""
    fresh = copy.deepcopy(module)
    fresh.apply(init_fn)
    fresh_params = dict(fresh.named_parameters())
    others = {name: fresh_params[name].detach() for name in perturbable_names(module)}
    mix_parameters_(module, others, alpha)
    return others


def reset_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Forget the optimiser's per-parameter state (Adam moments and step counts)."""
    optimizer.state.clear()
