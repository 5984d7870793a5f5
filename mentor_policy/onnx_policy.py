"""Run an exported policy (:mod:`mentor_policy.export`) on ONNX Runtime, without torch.

``OnnxPolicy.act`` follows the policy protocol of :meth:`mentor_policy.policy.ActorPolicy.act`
(``act(image, proprio, *, explore=False)``); an exported graph holds the mean action only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class OnnxPolicyConfig:
    """ONNX Runtime session settings of :class:`OnnxPolicy`."""

    intra_op_threads: int = 1  # 1: one observation is too little work to split, and the CPU is shared
    optimized_model_path: str = ""  # if set, ORT writes its optimised graph there (inspection / reuse)
    extra_session_config: dict = field(default_factory=dict)  # ORT session config entries (key -> value)

    def __post_init__(self) -> None:
        if int(self.intra_op_threads) < 1:
            raise ValueError(f"OnnxPolicyConfig.intra_op_threads must be >= 1, got {self.intra_op_threads}")


class OnnxPolicy:
    """ONNX Runtime policy: ``act(image (C, H, W) uint8, proprio (P,) | None) -> (A,) float32``.

    Sessions use full graph optimisation, sequential execution and, by default, one intra-op thread:
    on the 2-core machines this project runs on the policy shares the CPU with the learner and the
    simulator, and a second spinning worker measured slower under that contention. With more than
    one thread, spinning is switched off for the same reason.
    """

    def __init__(self, path: str | Path, intra_op_threads: int | None = None,
                 cfg: OnnxPolicyConfig | None = None) -> None:
        import onnxruntime as ort

        cfg = cfg or OnnxPolicyConfig()
        if intra_op_threads is not None:
            cfg = OnnxPolicyConfig(int(intra_op_threads), cfg.optimized_model_path, dict(cfg.extra_session_config))
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX policy {self.path} does not exist")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = cfg.intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if cfg.intra_op_threads > 1:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if cfg.optimized_model_path:
            opts.optimized_model_filepath = cfg.optimized_model_path
        for key, value in cfg.extra_session_config.items():
            opts.add_session_config_entry(str(key), str(value))
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ValueError(f"cannot load ONNX policy {self.path}: {type(exc).__name__}: {exc}") from exc
        inputs = {i.name: i for i in self.session.get_inputs()}
        if "image" not in inputs:
            raise ValueError(f"ONNX policy {self.path} has no 'image' input (inputs: {sorted(inputs)})")
        self.image_shape = tuple(inputs["image"].shape[1:])  # (C, H, W)
        self.proprio_dim = int(inputs["proprio"].shape[1]) if "proprio" in inputs else 0
        self.action_dim = int(self.session.get_outputs()[0].shape[1])
        self._outputs = [self.session.get_outputs()[0].name]

    @property
    def in_channels(self) -> int:
        """Channels of the stacked policy image (frame_stack * 3 * cameras)."""
        return int(self.image_shape[0])

    def act(self, image: np.ndarray, proprio: np.ndarray | None = None, *, explore: bool = False,
            step: int = 0) -> np.ndarray:
        """Deterministic mean action ``(A,)`` float32 for one stacked observation (the policy protocol of
        ``ActorPolicy.act``; an exported graph holds the mean action only, so ``explore`` must be False)."""
        if explore:
            raise ValueError("an ONNX policy acts deterministically (the mean action): explore needs the torch policy")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.shape != self.image_shape:
            raise ValueError(f"image must be uint8 of shape {self.image_shape}, got {image.dtype} {image.shape}")
        feeds = {"image": np.ascontiguousarray(image[None])}
        if self.proprio_dim:
            feeds["proprio"] = self._check_proprio(proprio)[None]
        return self.session.run(self._outputs, feeds)[0][0]

    def _check_proprio(self, proprio) -> np.ndarray:
        if proprio is None:
            raise ValueError(f"this policy needs a proprio vector of length {self.proprio_dim}")
        prop = np.ascontiguousarray(proprio, dtype=np.float32)
        if prop.shape[-1:] != (self.proprio_dim,) or not np.isfinite(prop).all():
            raise ValueError(f"proprio must be finite with last dimension {self.proprio_dim}, got "
                             f"shape {prop.shape}: {prop}")
        return prop

    def act_batch(self, image: np.ndarray, proprio: np.ndarray | None = None) -> np.ndarray:
        """Batched variant: ``(B, C, H, W)`` uint8 (+ ``(B, P)``) -> ``(B, A)``."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 4 or image.shape[1:] != self.image_shape:
            raise ValueError(f"images must be uint8 of shape (B, {self.image_shape}), got {image.dtype} {image.shape}")
        feeds = {"image": np.ascontiguousarray(image)}
        if self.proprio_dim:
            prop = self._check_proprio(proprio)
            if prop.shape != (image.shape[0], self.proprio_dim):
                raise ValueError(f"proprio must have shape ({image.shape[0]}, {self.proprio_dim}), got {prop.shape}")
            feeds["proprio"] = prop
        return self.session.run(self._outputs, feeds)[0]
