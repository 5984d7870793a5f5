"""Atomic, safe checkpoint files (``torch.save`` / ``torch.load(weights_only=True)``)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from mentor_policy.fileio import atomic_write_bytes  # noqa: F401 - part of this module's API


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read (missing, truncated, corrupt) or does not fit the model."""


def to_bytes(obj: Any) -> bytes:
    """Serialise tensors / primitive containers with ``torch.save``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def from_bytes(data: bytes, what: str = "payload") -> Any:
    """Inverse of :func:`to_bytes`, loaded with ``weights_only=True``; errors -> ``CheckpointError``."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt data; keep the cause
        raise CheckpointError(f"cannot decode {what} ({len(data)} bytes): {type(exc).__name__}: {exc}") from exc


def save_checkpoint(path: str | Path, obj: Any) -> Path:
    """Save ``obj`` (tensors and primitive containers only) atomically to ``path``."""
    path = Path(path)
    atomic_write_bytes(path, to_bytes(obj))
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> Any:
    """Load a checkpoint with ``weights_only=True``. Raises ``CheckpointError`` naming the file and
    the cause when it is missing, truncated or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    size = path.stat().st_size
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # corrupt zip, unpickling error, truncated stream ...
        raise CheckpointError(f"checkpoint {path} ({size} bytes) is corrupt or truncated: "
                              f"{type(exc).__name__}: {exc}") from exc


def check_state_shapes(module: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    """Raise ``CheckpointError`` if ``state`` does not fit ``module`` (missing/extra keys, shapes)."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint entry {name!r} must be a dict of tensors, got {type(state).__name__}")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(f"checkpoint entry {name!r} does not match the model: missing keys {missing}, "
                              f"unexpected keys {extra}")
    for key, tensor in own.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"checkpoint parameter {name}.{key} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(tensor.shape):
            raise CheckpointError(f"checkpoint parameter {name}.{key} has shape {tuple(value.shape)}, "
                                  f"the model expects {tuple(tensor.shape)}")


def load_module_state(module: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    """Shape-checked ``module.load_state_dict(state)``."""
    check_state_shapes(module, state, name)
    module.load_state_dict(state)
