"""Export the deployed policy (uint8 stacked image (+ proprio) -> deterministic mean action) to ONNX,
and run it on ONNX Runtime without torch.

Graph inputs: ``image (B, C, H, W) uint8`` and, when the spec has proprioception,
``proprio (B, P) float32``; output ``action (B, A) float32`` in (-1, 1). Preprocessing
(``x / 255 - 0.5``) is inside the graph. The MoE is exported with its sparse (top-k experts only)
path, which gives the same values as the dense training path.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

ONNX_OPSET = 17


def export_onnx(policy, path: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Write ``policy`` (an :class:`~mentor_policy.policy.ActorPolicy`) to ``path`` atomically and
    validate it with ``onnx.checker``. Returns the path."""
    import copy
    import tempfile

    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = policy.spec
    module = copy.deepcopy(policy).to("cpu").eval()
    module.encoder.to(memory_format=torch.contiguous_format)
    image = torch.zeros((1, policy.in_channels, *spec.image_size), dtype=torch.uint8)
    args: tuple = (image,)
    names = ["image"]
    if spec.proprio_dim:
        args = (image, torch.zeros((1, spec.proprio_dim), dtype=torch.float32))
        names.append("proprio")
    dynamic = {n: {0: "batch"} for n in names + ["action"]}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # The legacy TorchScript exporter is used on purpose: the dynamo exporter needs onnxscript,
        # which this project does not depend on. Its deprecation notice is silenced for this call only.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(module, args, tmp, input_names=names, output_names=["action"],
                              dynamic_axes=dynamic, opset_version=opset, dynamo=False)
        model = onnx.load(tmp)
        onnx.checker.check_model(model, full_check=True)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class OnnxPolicy:
    """ONNX Runtime policy: ``act(image (C, H, W) uint8, proprio (P,) | None) -> (A,) float32``.

    ``intra_op_threads``: ORT intra-op threads. Default 1: on the 2-core machines this project runs
    on, the policy shares the CPU with the learner and the simulator, and a second spinning worker
    thread measured 2x slower under that contention (one observation is too little work to split).
    With more than one thread, spinning is switched off for the same reason. Graph optimisation is
    fully enabled.
    """

    def __init__(self, path: str | Path, intra_op_threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX policy {self.path} does not exist")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        threads = 1 if intra_op_threads is None else int(intra_op_threads)
        if threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        opts.intra_op_num_threads = threads
        if threads > 1:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
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

    def act(self, image: np.ndarray, proprio: np.ndarray | None = None) -> np.ndarray:
        """Deterministic mean action ``(A,)`` float32 for one stacked observation."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.shape != self.image_shape:
            raise ValueError(f"image must be uint8 of shape {self.image_shape}, got {image.dtype} {image.shape}")
        feeds = {"image": image[None]}
        if self.proprio_dim:
            if proprio is None:
                raise ValueError(f"this policy needs a proprio vector of length {self.proprio_dim}")
            prop = np.asarray(proprio, dtype=np.float32)
            if prop.shape != (self.proprio_dim,) or not np.isfinite(prop).all():
                raise ValueError(f"proprio must be finite with shape ({self.proprio_dim},), got {prop.shape}: {prop}")
            feeds["proprio"] = prop[None]
        return self.session.run(None, feeds)[0][0]

    def act_batch(self, image: np.ndarray, proprio: np.ndarray | None = None) -> np.ndarray:
        """Batched variant: ``(B, C, H, W)`` uint8 (+ ``(B, P)``) -> ``(B, A)``."""
        feeds = {"image": np.ascontiguousarray(image, dtype=np.uint8)}
        if self.proprio_dim:
            feeds["proprio"] = np.ascontiguousarray(proprio, dtype=np.float32)
        return self.session.run(None, feeds)[0]
