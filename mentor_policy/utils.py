"""Small helpers: device choice, safe schedule parsing, truncated-normal sampling, Polyak update."""
from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np
import torch
from torch import nn

_NUM = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_LINEAR = re.compile(rf"^linear\({_NUM},{_NUM},{_NUM}\)$")
_STEP_LINEAR = re.compile(rf"^step_linear\({_NUM},{_NUM},{_NUM},{_NUM},{_NUM}\)$")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def parse_schedule(text: str | float) -> Callable[[int], float]:
    """Parse a DrQ-v2 schedule string without ``eval``.

    Accepted: a constant (``"0.2"``), ``"linear(init, final, duration)"`` and
    ``"step_linear(init, final1, duration1, final2, duration2)"``; ``step`` is the agent step.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
        return lambda step: value
    s = str(text).strip()
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"schedule constant must be finite, got {text!r}")
        return lambda step: value
    m = _LINEAR.match(s)
    if m:
        init, final, duration = (float(g) for g in m.groups())
        if duration <= 0:
            raise ValueError(f"schedule duration must be > 0 in {text!r}")
        return lambda step: init + (final - init) * min(max(step / duration, 0.0), 1.0)
    m = _STEP_LINEAR.match(s)
    if m:
        init, final1, dur1, final2, dur2 = (float(g) for g in m.groups())
        if dur1 <= 0 or dur2 <= 0:
            raise ValueError(f"schedule durations must be > 0 in {text!r}")

        def step_linear(step: int) -> float:
            if step <= dur1:
                return init + (final1 - init) * max(step / dur1, 0.0)
            return final1 + (final2 - final1) * min((step - dur1) / dur2, 1.0)
        return step_linear
    raise ValueError(f"cannot parse schedule {text!r}: expected a number, 'linear(a,b,n)' or 'step_linear(a,b,n,c,m)'")


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
