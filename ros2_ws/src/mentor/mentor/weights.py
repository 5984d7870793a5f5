"""Policy weights on the wire (learner -> policy): torch-serialised, loaded with weights_only=True.

Payload: ``torch.save({"version": int, "step": int, "state": {name: Tensor}})`` where ``state`` is
``MentorAgent.policy_state()`` (encoder + actor + exploration std + counters). ``step`` is the
learner's env-step count (the actor's exploration schedule continues from it).
"""
from __future__ import annotations

import io

import torch


def encode_weights(version: int, step: int, state: dict) -> bytes:
    """Serialise a policy state (tensors/primitives only) with its version and env step."""
    if version < 0 or step < 0:
        raise ValueError(f"version and step must be >= 0, got {version}, {step}")
    buf = io.BytesIO()
    torch.save({"version": int(version), "step": int(step),
                "state": {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in state.items()}}, buf)
    return buf.getvalue()


def decode_weights(payload: bytes) -> tuple[int, int, dict]:
    """(version, step, state) from :func:`encode_weights` bytes; ValueError on anything malformed."""
    try:
        obj = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt input
        raise ValueError(f"weights payload of {len(payload)} bytes is not a torch weights file: {exc}") from exc
    if not isinstance(obj, dict) or not {"version", "step", "state"} <= set(obj) or not isinstance(obj["state"], dict):
        raise ValueError("weights payload lacks version/step/state")
    return int(obj["version"]), int(obj["step"]), obj["state"]
