"""Small helpers: device choice, truncated-normal sampling, Polyak update (schedules: mentor_policy.schedule)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def sample_truncated_normal(mu: torch.Tensor, std: float | torch.Tensor, clip: float | None,
                            generator: torch.Generator | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Sample ``mu + clip(std * N(0,1), -clip, clip)``, clamped to ``[-1+eps, 1-eps]``.

    Gradient flows to ``mu`` (the clamp to the action box is straight-through, as in DrQ-v2).
    Shapes: ``mu (..., A)``; returns the same shape.
    """
    noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype) * std
    if clip is not None:
        noise = noise.clamp(-clip, clip)
    x = mu + noise
    clamped = x.clamp(-1.0 + eps, 1.0 - eps)
    return x - x.detach() + clamped.detach()


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak: ``target <- tau * source + (1 - tau) * target`` (parameters only, in place)."""
    with torch.no_grad():
        t_params = list(target.parameters())
        s_params = list(source.parameters())
        torch._foreach_mul_(t_params, 1.0 - tau)
        torch._foreach_add_(t_params, s_params, alpha=tau)


def as_tensor(x, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """numpy array or tensor -> tensor on ``device`` (non-blocking copy when pinned)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x.to(device=device, dtype=dtype if dtype is not None else x.dtype, non_blocking=True)


def check_finite(name: str, x: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` when a float tensor holds NaN or inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} holds {bad} non-finite values (NaN/inf); shape {tuple(x.shape)}")


def check_shape(name: str, x, expected: tuple) -> None:
    """Raise ``ValueError`` when ``x.shape`` differs from ``expected`` (``None`` = any size)."""
    shape = tuple(x.shape)
    if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
        pretty = tuple("*" if e is None else e for e in expected)
        raise ValueError(f"{name} has shape {shape}, expected {pretty}")
