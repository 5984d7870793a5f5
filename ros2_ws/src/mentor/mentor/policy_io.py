"""Policy-side helpers: deploy policy loading (checkpoint or ONNX), episode videos."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

_LOG = logging.getLogger(__name__)


def make_policy(cfg, spec, agent_overrides: Mapping, log: Callable[[str], None] | None = None):
    """The policy node's policy for ``cfg`` (a PolicyNodeConfig): a fresh ActorPolicy to train (weights come
    from the learner), a HoldStillPolicy to record (the operator drives), else the deploy policy of
    :func:`load_deploy_policy`."""
    from mentor_policy.config import load_agent_config

    agent_cfg = load_agent_config(cfg.agent_config, dict(agent_overrides))
    if cfg.mode == "train":
        from mentor_policy.policy import ActorPolicy
        return ActorPolicy(spec, agent_cfg, device=cfg.device)
    if cfg.mode == "record":
        from mentor_policy.policy import HoldStillPolicy
        return HoldStillPolicy(spec, agent_cfg.frame_stack)
    return load_deploy_policy(cfg.onnx, cfg.checkpoint, spec, agent_cfg, cfg.device, cfg.ort_threads, cfg.ort_spin,
                              log=log, task=cfg.task, cameras=cfg.cameras)


def load_deploy_policy(onnx: str, checkpoint: str, spec, agent_cfg, device: str = "auto",
                       ort_threads: int = 1, ort_spin: bool = False, log: Callable[[str], None] | None = None,
                       task: str | None = None, cameras: Sequence[str] | None = None):
    """The deploy policy: an OnnxPolicy if ``onnx``, else an ActorPolicy (both ``act(image, proprio, *, explore)``).

    ``checkpoint`` may be a learner checkpoint (``checkpoints/latest.pt`` or ``checkpoints/best.pt``: a dict
    with a ``policy`` entry) or a bare policy state. When the checkpoint records the ``agent_config`` it
    was trained with, the policy is built from that (the networks must match the trained ones) and
    ``log`` (default: this module's logger) warns where ``agent_cfg`` (the user's choice) differs; it
    also warns when the checkpoint's ``task`` / ``cameras`` differ from the given ones. Both policies have
    ``in_channels`` (frame_stack * channels of one step).
    ``ort_threads`` / ``ort_spin``: ONNX Runtime intra-op threads and whether they spin between calls
    (lowest latency on a dedicated CPU; burns the cores while idle).
    """
    if onnx:
        from mentor_policy.onnx_policy import OnnxPolicy, OnnxPolicyConfig
        extra = {"session.intra_op.allow_spinning": "1"} if ort_spin else {}
        return OnnxPolicy(onnx, cfg=OnnxPolicyConfig(intra_op_threads=ort_threads, extra_session_config=extra))
    from mentor_policy.checkpoint import read_policy
    from mentor_policy.policy import ActorPolicy
    log = log or _LOG.warning
    state, run = read_policy(checkpoint)
    agent_cfg = _checkpoint_agent_config(run, agent_cfg, checkpoint, log)
    _warn_mismatch(run, "task", task, checkpoint, log)
    _warn_mismatch(run, "cameras", None if cameras is None else list(cameras), checkpoint, log)
    policy = ActorPolicy(spec, agent_cfg, device=device)
    policy.load_policy_state(state)
    return policy


def agent_config_from_dict(values: Mapping, log: Callable[[str], None] | None = None):
    """``AgentConfig(**values)`` without the keys this version does not know (each logged as a warning):
    a checkpoint written before or after a field was added or removed still loads."""
    import dataclasses

    from mentor_policy.config import AgentConfig
    known = {f.name for f in dataclasses.fields(AgentConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        (log or _LOG.warning)(f"ignoring agent config keys this version does not know: {unknown}")
    return AgentConfig(**{k: v for k, v in values.items() if k in known})


def config_differences(a, b) -> dict[str, tuple]:
    """``{field: (a's value, b's value)}`` for the fields where two AgentConfigs differ."""
    da, db = a.to_dict(), b.to_dict()
    return {k: (da.get(k), db.get(k)) for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)}


def _checkpoint_agent_config(obj: Mapping, given, path, log: Callable[[str], None]):
    """The checkpoint's agent config when it has one (warning where ``given`` differs), else ``given``."""
    if not isinstance(obj.get("agent_config"), Mapping):
        return given
    trained = agent_config_from_dict(obj["agent_config"], log)
    diff = config_differences(given, trained)
    if diff:
        shown = ", ".join(f"{k}: {mine!r} -> {theirs!r}" for k, (mine, theirs) in diff.items())
        log(f"{path} was trained with another agent config; building the policy from the checkpoint's "
            f"(agent_config/agent_overrides given -> checkpoint): {shown}")
    return trained


def _warn_mismatch(obj: Mapping, key: str, given, path, log: Callable[[str], None]) -> None:
    if given is not None and key in obj and obj[key] != given:
        log(f"{path} was trained with {key} {obj[key]!r}, deploying with {given!r}")


class EpisodeVideo:
    """Writes RGB frames (H, W, 3) uint8 to an mp4 (temp file renamed on close)."""

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_suffix(".tmp.mp4")
        self.fps = fps
        self.writer = None

    def add(self, frame: np.ndarray) -> None:
        import cv2
        if self.writer is None:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise RuntimeError(f"cannot open a video writer for {self.tmp}")
        self.writer.write(np.ascontiguousarray(frame[:, :, ::-1]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            os.replace(self.tmp, self.path)
            self.writer = None
