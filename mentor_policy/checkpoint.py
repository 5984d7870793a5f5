"""Atomic, verified, safe checkpoint files (``torch.save`` / ``torch.load(weights_only=True)``).

File layout: ``MAGIC`` (10 bytes), the SHA-256 of the payload (32 bytes), the payload (``torch.save``
bytes). :func:`save_checkpoint` refuses non-finite tensors, writes a temporary file, reads it back and
checks its digest before it replaces the old file (which stays until then). :func:`load_checkpoint`
verifies the digest (garbled bytes are an error, not NaN weights) and refuses non-finite tensors.
Files without the header (written before it existed) load unverified.
"""
from __future__ import annotations

import hashlib
import io
import math
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


MAGIC = b"MENTORCK1\n"  # header of a verified checkpoint file
_DIGEST = 32  # SHA-256 bytes


def non_finite_entries(obj: Any, prefix: str = "", limit: int = 5) -> list[str]:
    """Names of (up to ``limit``) floating tensors / floats inside ``obj`` holding NaN or inf."""
    found: list[str] = []

    def walk(value: Any, name: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                found.append(name)
        elif isinstance(value, float):
            if not math.isfinite(value):
                found.append(name)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, f"{name}.{k}" if name else str(k))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{name}[{i}]")

    walk(obj, prefix)
    return found


def check_finite_state(obj: Any, what: str) -> None:
    """Raise ``CheckpointError`` when ``obj`` holds a NaN / inf tensor or float (naming a few)."""
    bad = non_finite_entries(obj)
    if bad:
        raise CheckpointError(f"{what} holds non-finite values in {bad}")


def _split(data: bytes, path: Path) -> bytes:
    """The payload of a verified checkpoint file's bytes (``CheckpointError`` when the digest fails)."""
    digest, payload = data[len(MAGIC):len(MAGIC) + _DIGEST], data[len(MAGIC) + _DIGEST:]
    if len(digest) != _DIGEST or hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"checkpoint {path} ({len(data)} bytes) fails its SHA-256 check: the file is "
                              "truncated or its bytes were changed")
    return payload


def save_checkpoint(path: str | Path, obj: Any) -> Path:
    """Save ``obj`` (tensors and primitive containers only) atomically and verified to ``path``.

    Refuses (``CheckpointError``) an ``obj`` with non-finite values: a good checkpoint is never
    replaced by a diverged one. The old file is replaced only after the new one was read back intact.
    """
    path = Path(path)
    check_finite_state(obj, f"the checkpoint for {path}")
    payload = to_bytes(obj)
    digest = hashlib.sha256(payload).digest()

    def verify(tmp: Path) -> None:
        data = tmp.read_bytes()
        if not data.startswith(MAGIC) or _split(data, tmp) != payload:
            raise CheckpointError(f"checkpoint {path}: the written file does not read back intact")

    atomic_write_bytes(path, MAGIC + digest + payload, verify=verify)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> Any:
    """Load a checkpoint with ``weights_only=True``. Raises ``CheckpointError`` naming the file and
    the cause when it is missing, truncated, corrupt (digest) or holds non-finite values.
    ``mmap`` applies to files without the verified header only (a verified file is read whole)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        verified = fh.read(len(MAGIC)) == MAGIC
    try:
        if verified:
            obj = torch.load(io.BytesIO(_split(path.read_bytes(), path)), map_location=map_location,
                             weights_only=True)
        else:
            obj = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except CheckpointError:
        raise
    except Exception as exc:  # corrupt zip, unpickling error, truncated stream ...
        raise CheckpointError(f"checkpoint {path} ({size} bytes) is corrupt or truncated: "
                              f"{type(exc).__name__}: {exc}") from exc
    check_finite_state(obj, f"checkpoint {path}")
    return obj


def describe_checkpoint(obj: Any) -> str:
    """A short description of what a loaded checkpoint file holds (for error messages)."""
    if not isinstance(obj, Mapping):
        return f"a {type(obj).__name__}"
    if "encoder.convs.0.weight" in obj:
        return "a bare policy state (actor weights only)"
    if "agent" in obj:
        return "a learner checkpoint"
    if "policy" in obj:
        return "a policy checkpoint (best.pt or export: actor weights, no learner state)"
    if "nets" in obj and "optims" in obj:
        return "a bare agent state (MentorAgent.state_dict())"
    return f"a mapping with keys {sorted(map(str, obj))[:12]}"


def require_entries(obj: Any, path: str | Path, keys: tuple[str, ...], expected: str) -> Mapping:
    """``obj`` if it is a mapping holding ``keys``; else ``CheckpointError`` naming the file, what
    ``expected`` it should be and what it holds instead."""
    if isinstance(obj, Mapping) and all(k in obj for k in keys):
        return obj
    missing = [k for k in keys if not isinstance(obj, Mapping) or k not in obj]
    raise CheckpointError(f"{path} is not {expected}: it holds {describe_checkpoint(obj)} (missing {missing})")


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


# --------------------------------------------------------------------------------------------
# The learner's checkpoint files: checkpoints/latest.pt (resume) and checkpoints/best.pt (deploy)
# --------------------------------------------------------------------------------------------
#: entries of ``latest.pt``: the full agent state to resume, the policy weights to deploy, counters
LATEST_ENTRIES = ("agent", "policy", "env_steps", "updates", "weights_version", "episodes")
#: entries of ``best.pt``: the weights that scored best in an evaluation block, and the score
BEST_ENTRIES = ("policy", "weights_version", "eval_success")
#: what a deploy needs besides the weights (both files): the agent config the networks were built from
RUN_ENTRIES = ("agent_config", "task", "cameras")


def run_description(agent_config: Mapping, task: str, cameras: list[str]) -> dict:
    """The RUN_ENTRIES of a learner checkpoint."""
    return {"agent_config": dict(agent_config), "task": str(task), "cameras": list(cameras)}


def write_latest(path: str | Path, *, agent: Mapping, policy: Mapping, env_steps: int, updates: int,
                 weights_version: int, episodes: int, run: Mapping) -> Path:
    """Write ``latest.pt`` (atomic, verified): ``MentorAgent.state_dict()``, ``policy_state()``, counters."""
    return save_checkpoint(path, {"agent": agent, "policy": policy, "env_steps": int(env_steps),
                                  "updates": int(updates), "weights_version": int(weights_version),
                                  "episodes": int(episodes), **run})


def write_best(path: str | Path, *, policy: Mapping, weights_version: int, env_steps: int, eval_success: float,
               run: Mapping, **evaluation: Any) -> Path:
    """Write ``best.pt``: a policy state with the evaluation that chose it (``eval_*`` entries, free form)."""
    return save_checkpoint(path, {"policy": policy, "weights_version": int(weights_version),
                                  "env_steps": int(env_steps), "eval_success": float(eval_success),
                                  **evaluation, **run})


def read_latest(path: str | Path) -> Mapping:
    """``latest.pt`` with every LATEST_ENTRIES entry; ``CheckpointError`` saying what the file holds otherwise."""
    return require_entries(load_checkpoint(path), path, LATEST_ENTRIES, "a learner checkpoint")


def read_best(path: str | Path) -> Mapping:
    """``best.pt`` (memory-mapped) with every BEST_ENTRIES entry."""
    return require_entries(load_checkpoint(path, mmap=True), path, BEST_ENTRIES, "a best-policy checkpoint")


def read_policy(path: str | Path) -> tuple[Mapping, Mapping]:
    """``(policy state, run description)`` from ``latest.pt``, ``best.pt`` or a bare ``policy_state()`` file.

    The run description holds the RUN_ENTRIES the file has (none for a bare state or an older file)."""
    obj = load_checkpoint(path)
    if isinstance(obj, Mapping) and "policy" in obj:
        state, run = obj["policy"], {k: obj[k] for k in RUN_ENTRIES if k in obj}
    else:
        state, run = obj, {}
    if not isinstance(state, Mapping) or "encoder.convs.0.weight" not in state:
        raise CheckpointError(f"{path} holds neither a learner checkpoint nor a policy state: it holds "
                              f"{describe_checkpoint(obj)}")
    return state, run


def read_agent_state(path: str | Path) -> Mapping:
    """``MentorAgent.state_dict()`` from ``latest.pt`` or from a file holding the bare agent state."""
    obj = load_checkpoint(path)
    state = obj.get("agent") if isinstance(obj, Mapping) and "version" not in obj else obj
    return require_entries(state, path, ("config", "spec", "nets"), "a MentorAgent state (latest.pt)")
