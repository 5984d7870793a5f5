"""Policy-side helpers: env spec from the task, frame stacking, deploy policy loading (checkpoint or ONNX), videos."""
from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

_LOG = logging.getLogger(__name__)


def build_spec(task, n_cameras: int, image_size: tuple[int, int] | None = None):
    """EnvSpec of the policy: 3*n_cameras channels per step, the task's image size/proprio/action dims."""
    from mentor_policy.specs import EnvSpec
    size = tuple(image_size or task.cfg.image_size)
    return EnvSpec(frame_channels=3 * n_cameras, image_size=size, proprio_dim=int(task.proprio_dim),
                   action_dim=int(task.cfg.action.action_dim))


class FrameStacker:
    """Keeps the last ``k`` single-step images (C, H, W) and returns them stacked (k*C, H, W), oldest first.

    On ``reset`` (episode start) the stack is filled with copies of the first image.
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"frame_stack must be >= 1, got {k}")
        self.k = k
        self._frames: deque[np.ndarray] = deque(maxlen=k)

    def push(self, image: np.ndarray, reset: bool = False) -> np.ndarray:
        if reset or not self._frames:
            self._frames.clear()
            self._frames.extend([image] * self.k)
        else:
            if image.shape != self._frames[-1].shape:
                raise ValueError(f"image shape {image.shape} differs from the stack's {self._frames[-1].shape}")
            self._frames.append(image)
        return np.concatenate(list(self._frames), axis=0)


def load_deploy_policy(onnx: str, checkpoint: str, spec, agent_cfg, device: str = "auto",
                       ort_threads: int = 1, ort_spin: bool = False, log: Callable[[str], None] | None = None,
                       task: str | None = None, cameras: Sequence[str] | None = None):
    """An object with ``act(image, proprio)`` (deterministic): OnnxPolicy if ``onnx`` else ActorPolicy.

    ``checkpoint`` may be a learner checkpoint (``checkpoints/latest.pt`` or ``checkpoints/best.pt``: a dict
    with a ``policy`` entry) or a bare policy state. When the checkpoint records the ``agent_config`` it
    was trained with, the policy is built from that (the networks must match the trained ones) and
    ``log`` (default: this module's logger) warns where ``agent_cfg`` (the user's choice) differs; it
    also warns when the checkpoint's ``task`` / ``cameras`` differ from the given ones. The returned
    object's ``agent_cfg`` is the config the policy was built with (frame stack).
    ``ort_threads`` / ``ort_spin``: ONNX Runtime intra-op threads and whether they spin between calls
    (lowest latency on a dedicated CPU; burns the cores while idle).
    """
    if onnx:
        from mentor_policy.export import OnnxPolicy, OnnxPolicyConfig
        extra = {"session.intra_op.allow_spinning": "1"} if ort_spin else {}
        return OnnxPolicy(onnx, cfg=OnnxPolicyConfig(intra_op_threads=ort_threads, extra_session_config=extra))
    from mentor_policy.checkpoint import load_checkpoint
    from mentor_policy.policy import ActorPolicy
    log = log or _LOG.warning
    obj = load_checkpoint(checkpoint)
    learner_ckpt = isinstance(obj, dict) and "policy" in obj
    state = obj["policy"] if learner_ckpt else obj
    if learner_ckpt:
        agent_cfg = _checkpoint_agent_config(obj, agent_cfg, checkpoint, log)
        _warn_mismatch(obj, "task", task, checkpoint, log)
        _warn_mismatch(obj, "cameras", None if cameras is None else list(cameras), checkpoint, log)
    policy = ActorPolicy(spec, agent_cfg, device=device)
    policy.load_policy_state(state)
    return _Deterministic(policy)


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


class _Deterministic:
    """Adapts ActorPolicy.act(image, proprio, step, eval_mode) to act(image, proprio) (eval mode)."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.agent_cfg = policy.cfg  # the AgentConfig the networks were built from

    def act(self, image: np.ndarray, proprio: np.ndarray) -> np.ndarray:
        return self.policy.act(image, proprio, step=10**9, eval_mode=True)


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
