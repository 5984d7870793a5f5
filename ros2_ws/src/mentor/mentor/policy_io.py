"""Policy-side helpers: env spec from the task, frame stacking, deploy policy loading, videos."""
from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import numpy as np


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
                       ort_threads: int = 1, ort_spin: bool = False):
    """An object with ``act(image, proprio)`` (deterministic): OnnxPolicy if ``onnx`` else ActorPolicy.

    ``checkpoint`` may be a learner checkpoint (dict with a ``policy`` entry) or a bare policy state.
    ``ort_threads`` / ``ort_spin``: ONNX Runtime intra-op threads and whether they spin between calls
    (lowest latency on a dedicated CPU; burns the cores while idle).
    """
    if onnx:
        from mentor_policy.export import OnnxPolicy, OnnxPolicyConfig
        extra = {"session.intra_op.allow_spinning": "1"} if ort_spin else {}
        return OnnxPolicy(onnx, cfg=OnnxPolicyConfig(intra_op_threads=ort_threads, extra_session_config=extra))
    from mentor_policy.checkpoint import load_checkpoint
    from mentor_policy.policy import ActorPolicy
    obj = load_checkpoint(checkpoint)
    state = obj["policy"] if isinstance(obj, dict) and "policy" in obj else obj
    policy = ActorPolicy(spec, agent_cfg, device=device)
    policy.load_policy_state(state)
    return _Deterministic(policy)


class _Deterministic:
    """Adapts ActorPolicy.act(image, proprio, step, eval_mode) to act(image, proprio) (eval mode)."""

    def __init__(self, policy) -> None:
        self.policy = policy

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
