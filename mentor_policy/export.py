"""Export the deployed policy (uint8 stacked image (+ proprio) -> deterministic mean action) to ONNX.
:mod:`mentor_policy.onnx_policy` runs the file on ONNX Runtime without torch.

Graph inputs: ``image (B, C, H, W) uint8`` and, when the spec has proprioception,
``proprio (B, P) float32``; output ``action (B, A) float32`` in (-1, 1).

The graph is written directly from the policy's weights (not traced), laid out for single-observation
CPU latency while computing the same function as :meth:`ActorPolicy.forward`:

- the preprocessing ``x / 255 - 0.5`` is folded into the first convolution (valid convolution, so
  ``conv(x / 255 - 0.5) = conv'(x)`` with ``W' = W / 255`` and ``b' = b - 0.5 * sum(W)``);
- the trunk's columns are permuted from the encoder's (h, w, c) flatten order to the NCHW order,
  which removes the transpose;
- the MoE layer is ORT's fused ``com.microsoft.MoE`` kernel (softmax gate, top-k, renormalised
  weights, ReLU experts): it reads only the chosen experts' weights in place, where a standard-ONNX
  ``Gather`` would copy them on every call. The file therefore needs ONNX Runtime (this is the
  deployment runtime of the project).

``ExportConfig.precision = "int8"`` (opt-in, never the default) writes the selected Linear layers
(default: the trunk, the largest weight read per call) as ORT ``MatMulNBits`` with symmetric 8-bit
weights in blocks of 32 inputs, computed in int8 (``accuracy_level=4``: activations are quantised per
block on the fly). It is an approximation: its deviation from torch is measured by
``benchmarks/act_latency.py`` and bounded in the unit tests.

CLI: ``python -m mentor_policy.export --checkpoint latest.pt --out policy.onnx [--quantize int8]``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mentor_policy.config import check_conv_strides, conv_out_hw
from mentor_policy.fileio import atomic_write_bytes
from mentor_policy.onnx_policy import OnnxPolicy

ONNX_OPSET = 17
MS_DOMAIN = "com.microsoft"
PRECISIONS = ("fp32", "int8")
QUANTIZABLE_LAYERS = ("trunk", "fc1", "gate", "fc2", "out")


@dataclass
class ExportConfig:
    """How the policy graph is written."""

    precision: str = "fp32"  # "fp32" (exact; default) or "int8" (int8 weights for `quantize_layers`)
    quantize_layers: tuple[str, ...] = ("trunk",)  # Linear layers quantised when precision == "int8"
    block_size: int = 32  # int8: weights share one scale per block of this many inputs (power of 2, >= 16)
    opset: int = ONNX_OPSET  # ONNX default-domain opset of the graph

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"ExportConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        self.quantize_layers = tuple(self.quantize_layers)
        bad = sorted(set(self.quantize_layers) - set(QUANTIZABLE_LAYERS))
        if bad:
            raise ValueError(f"ExportConfig.quantize_layers: unknown layers {bad} (known: {QUANTIZABLE_LAYERS})")
        if self.precision == "int8" and not self.quantize_layers:
            raise ValueError("ExportConfig: precision 'int8' needs at least one layer in quantize_layers")
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ValueError(f"ExportConfig.block_size must be a power of 2 >= 16, got {self.block_size}")
        if not 17 <= int(self.opset) <= 21:
            raise ValueError(f"ExportConfig.opset must be in [17, 21] (LayerNormalization), got {self.opset}")


@dataclass
class GraphSpec:
    """Shapes and constants of the policy that are not weights."""

    image_size: tuple[int, int]  # (H, W) of the policy image, pixels
    proprio_dim: int  # length of the proprio vector (0: no proprio input)
    top_k: int  # experts used per sample (ignored without an MoE)
    layer_norm_eps: float = 1e-5  # epsilon of the trunk's LayerNorm

    def __post_init__(self) -> None:
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"GraphSpec.image_size must be (H, W) > 0, got {self.image_size}")
        if self.proprio_dim < 0 or self.top_k < 1 or not self.layer_norm_eps > 0:
            raise ValueError(f"GraphSpec: need proprio_dim >= 0, top_k >= 1, layer_norm_eps > 0, got {self}")


# --------------------------------------------------------------------------------------------------
# graph construction
# --------------------------------------------------------------------------------------------------
class _Builder:
    """Accumulates nodes and initialisers of an ONNX graph."""

    def __init__(self, int8_layers: Sequence[str] = (), block_size: int = 32) -> None:
        self.int8_layers = set(int8_layers)  # linear-layer names written with int8 weights
        self.block_size = block_size
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], name: str, domain: str = "", **attrs) -> str:
        from onnx import helper
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, domain=domain, **attrs))
        return out

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        """``x @ weight.T + bias``: MatMul + Add (ORT fuses them into one Gemm), or, for a layer in
        ``self.int8_layers``, ORT's ``MatMulNBits`` with 8-bit block-quantised weights."""
        b = self.const(f"{name}.bias", bias.astype(np.float32))
        if name in self.int8_layers:
            q, scales = quantize_blockwise_int8(weight, self.block_size)
            y = self.op("MatMulNBits", [x, self.const(f"{name}.weight_q", q), self.const(f"{name}.scales", scales)],
                        f"{name}/MatMulNBits", domain=MS_DOMAIN, K=int(weight.shape[1]), N=int(weight.shape[0]),
                        bits=8, block_size=int(self.block_size), accuracy_level=4)
        else:
            y = self.op("MatMul", [x, self.const(f"{name}.weight_t", weight.T.astype(np.float32))], f"{name}/MatMul")
        return self.op("Add", [y, b], f"{name}/Add")


def quantize_blockwise_int8(weight: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 8-bit quantisation of a Linear weight ``(N out, K in)`` in blocks of ``block_size``
    along K, in ``MatMulNBits`` layout: ``q (N, ceil(K / bs), bs) uint8`` (zero point 128) and
    ``scales (N * ceil(K / bs),) float32``; ``w ~= (q - 128) * scale``."""
    n, k = weight.shape
    blocks = -(-k // block_size)
    w = np.pad(weight.astype(np.float32), ((0, 0), (0, blocks * block_size - k))).reshape(n, blocks, block_size)
    scale = np.abs(w).max(axis=-1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale[..., None]), -127, 127) + 128
    return q.astype(np.uint8), scale.astype(np.float32).reshape(-1)


def _np(state: Mapping, key: str) -> np.ndarray:
    if key not in state:
        raise KeyError(f"policy state has no entry {key!r} (keys: {sorted(state)[:40]})")
    value = state[key]
    array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"policy state entry {key!r} holds non-finite values: refusing to export it")
    return array


def _conv_keys(state: Mapping) -> list[str]:
    keys = sorted({k.rsplit(".", 1)[0] for k in state if k.startswith("encoder.convs.") and k.endswith(".weight")},
                  key=lambda k: int(k.split(".")[2]))
    if not keys:
        raise KeyError("policy state has no encoder.convs.*.weight entries")
    return keys


def _conv_strides(state: Mapping, n_convs: int) -> tuple[int, ...]:
    """The encoder's conv strides, saved with its weights (``encoder.conv_strides``)."""
    if "encoder.conv_strides" not in state:
        raise KeyError("policy state has no encoder.conv_strides entry (a checkpoint of an older version?)")
    value = state["encoder.conv_strides"]
    value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    strides = check_conv_strides(value.reshape(-1).tolist())
    if len(strides) != n_convs:
        raise ValueError(f"encoder.conv_strides has {len(strides)} values for {n_convs} convs")
    return strides


def _encoder(b: _Builder, state: Mapping, image: str, conv_hw: tuple[int, int]) -> tuple[str, int]:
    """Convs with the folded preprocessing; returns the features and C: the (B, C*h*w) NCHW-flattened
    map, or with a keypoint head its (B, 2K) coordinates."""
    x = b.op("Cast", [image], "encoder/Cast", to=1)  # uint8 -> float32 (values 0..255)
    channels = 0
    keys = _conv_keys(state)
    strides = _conv_strides(state, len(keys))
    for i, key in enumerate(keys):
        w, bias = _np(state, f"{key}.weight"), _np(state, f"{key}.bias")
        if i == 0:  # conv(x / 255 - 0.5) == conv(x; W / 255) + (b - 0.5 * sum W): no padding
            bias = bias - 0.5 * w.sum(axis=(1, 2, 3))
            w = w / 255.0
        stride = strides[i]
        x = b.op("Conv", [x, b.const(f"{key}.weight", w), b.const(f"{key}.bias", bias)], f"{key}/Conv",
                 kernel_shape=list(w.shape[2:]), strides=[stride, stride])
        x = b.op("Relu", [x], f"{key}/Relu")
        channels = w.shape[0]
    if "encoder.keypoints.weight" in state:
        return _spatial_softmax(b, state, x, conv_hw), channels
    return b.op("Flatten", [x], "encoder/Flatten", axis=1), channels


def _spatial_softmax(b: _Builder, state: Mapping, x: str, conv_hw: tuple[int, int]) -> str:
    """Keypoint head (mentor_policy.networks.Encoder, ``spatial_softmax``): 1x1 conv, softmax over each
    map's positions at the learned temperature, expected (x, y) coordinates -> ``(B, 2K)``."""
    w, bias = _np(state, "encoder.keypoints.weight"), _np(state, "encoder.keypoints.bias")
    k = w.shape[0]
    x = b.op("Conv", [x, b.const("keypoints.weight", w), b.const("keypoints.bias", bias)], "keypoints/Conv",
             kernel_shape=[1, 1])
    x = b.op("Reshape", [x, b.const("keypoints.shape", np.array([0, k, -1], np.int64))], "keypoints/Reshape")
    x = b.op("Div", [x, b.const("keypoints.temperature", _np(state, "encoder.temperature"))], "keypoints/Div")
    x = b.op("Softmax", [x], "keypoints/Softmax", axis=-1)
    x = b.op("MatMul", [x, b.const("keypoints.grid", _keypoint_grid(conv_hw))], "keypoints/MatMul")  # (B, K, 2)
    return b.op("Flatten", [x], "keypoints/Flatten", axis=1)


def _keypoint_grid(conv_hw: tuple[int, int]) -> np.ndarray:
    """``(h * w, 2)`` normalised (x, y) coordinates of the conv map's positions, as the Encoder builds them."""
    h, w = conv_hw
    ys, xs = np.meshgrid(np.linspace(-1.0, 1.0, h), np.linspace(-1.0, 1.0, w), indexing="ij")
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1).astype(np.float32)


def _trunk_weight_nchw(weight: np.ndarray, channels: int, conv_hw: tuple[int, int]) -> np.ndarray:
    """Permute the trunk's image columns from the encoder's (h, w, c) flatten order to (c, h, w)."""
    h, w = conv_hw
    n_img = channels * h * w
    if weight.shape[1] != n_img:
        raise ValueError(f"trunk weight has {weight.shape[1]} inputs, expected {n_img} image features "
                         f"({channels}x{h}x{w})")
    return weight.reshape(-1, h, w, channels).transpose(0, 3, 1, 2).reshape(weight.shape[0], n_img)


def _moe(b: _Builder, state: Mapping, x: str, top_k: int) -> str:
    """Gate MLP (logits) + ORT's fused MoE kernel (softmax, top-k, renormalised weights, ReLU experts)."""
    g = b.op("Relu", [b.linear(x, _np(state, "actor.moe.gate_fc1.weight"), _np(state, "actor.moe.gate_fc1.bias"),
                               "gate_fc1")], "gate_fc1/Relu")
    logits = b.linear(g, _np(state, "actor.moe.gate_fc2.weight"), _np(state, "actor.moe.gate_fc2.bias"), "gate_fc2")
    w1, w2 = _np(state, "actor.moe.experts.w1"), _np(state, "actor.moe.experts.w2")  # (E, d, h), (E, h, d)
    if top_k > w1.shape[0]:
        raise ValueError(f"top_k {top_k} exceeds the {w1.shape[0]} experts of the policy")
    # the kernel takes each expert's weight as (out, in), like nn.Linear
    inputs = [x, logits,
              b.const("experts.w1", w1.transpose(0, 2, 1)), b.const("experts.b1", _np(state, "actor.moe.experts.b1")),
              b.const("experts.w2", w2.transpose(0, 2, 1)), b.const("experts.b2", _np(state, "actor.moe.experts.b2"))]
    return b.op("MoE", inputs, "moe", domain=MS_DOMAIN, k=int(top_k), activation_type="relu",
                normalize_routing_weights=1)


def build_policy_graph(state: Mapping, spec: GraphSpec, cfg: ExportConfig | None = None):
    """ONNX ``ModelProto`` of the deterministic actor from a policy state dict (see module docstring)."""
    from onnx import TensorProto, helper

    cfg = cfg or ExportConfig()
    names = {"gate": ["gate_fc1", "gate_fc2"]}
    int8 = [n for layer in cfg.quantize_layers for n in names.get(layer, [layer])] if cfg.precision == "int8" else []
    b = _Builder(int8, cfg.block_size)
    opset = cfg.opset
    convs = _conv_keys(state)
    in_ch = _np(state, f"{convs[0]}.weight").shape[1]
    conv_hw = conv_out_hw(spec.image_size, _conv_strides(state, len(convs)))
    feats, channels = _encoder(b, state, "image", conv_hw)
    inputs = [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", in_ch, *spec.image_size])]
    trunk_w = _np(state, "actor.trunk.0.weight")
    if "encoder.keypoints.weight" not in state:  # the flattened map's columns: (h, w, c) -> (c, h, w)
        trunk_w = _trunk_weight_nchw(trunk_w, channels, conv_hw)
    t = b.linear(feats, trunk_w, _np(state, "actor.trunk.0.bias"), "trunk")
    t = b.op("LayerNormalization", [t, b.const("trunk_ln.weight", _np(state, "actor.trunk.1.weight")),
                                    b.const("trunk_ln.bias", _np(state, "actor.trunk.1.bias"))],
             "trunk_ln", axis=-1, epsilon=float(spec.layer_norm_eps))
    t = b.op("Tanh", [t], "trunk/Tanh")
    if spec.proprio_dim:  # the proprio joins after the trunk (mentor_policy.networks.Trunk)
        inputs.append(helper.make_tensor_value_info("proprio", TensorProto.FLOAT, ["batch", spec.proprio_dim]))
        t = b.op("Concat", [t, "proprio"], "features/Concat", axis=1)
    h = b.op("Relu", [b.linear(t, _np(state, "actor.fc1.weight"), _np(state, "actor.fc1.bias"), "fc1")], "fc1/Relu")
    uses_moe = "actor.moe.experts.w1" in state
    h = _moe(b, state, h, spec.top_k) if uses_moe else b.linear(
        h, _np(state, "actor.fc2.weight"), _np(state, "actor.fc2.bias"), "fc2")
    a = b.linear(b.op("Relu", [h], "head/Relu"), _np(state, "actor.out.weight"), _np(state, "actor.out.bias"), "out")
    b.nodes.append(helper.make_node("Tanh", [a], ["action"], name="action/Tanh"))
    action_dim = _np(state, "actor.out.weight").shape[0]
    outputs = [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", action_dim])]
    graph = helper.make_graph(b.nodes, "mentor_actor", inputs, outputs, b.inits)
    contrib = uses_moe or bool(int8)
    opsets = [helper.make_opsetid("", int(opset))] + ([helper.make_opsetid(MS_DOMAIN, 1)] if contrib else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="mentor_policy.export")
    model.ir_version = min(model.ir_version, 9)  # readable by older ONNX Runtime releases too
    return model


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _check(model) -> None:
    """``onnx.checker`` on the graph; full (shape-inference) check unless it uses ORT contrib ops,
    which the ONNX checker does not know."""
    import onnx
    contrib = any(o.domain == MS_DOMAIN for o in model.opset_import)
    onnx.checker.check_model(model, full_check=not contrib)


def _atomic_save(model, path: Path) -> None:
    """Serialise an ONNX model and replace ``path`` atomically (see mentor_policy.fileio)."""
    atomic_write_bytes(path, model.SerializeToString())


def export_state(state: Mapping, spec: GraphSpec, path: str | Path, cfg: ExportConfig | None = None) -> Path:
    """Write the actor of a policy state dict (:meth:`ActorPolicy.policy_state`) to ``path`` atomically."""
    cfg = cfg or ExportConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_policy_graph(state, spec, cfg)
    _check(model)
    _atomic_save(model, path)
    return path


def export_onnx(policy, path: str | Path, cfg: ExportConfig | None = None) -> Path:
    """Write ``policy`` (an :class:`~mentor_policy.policy.ActorPolicy`) to ``path`` atomically and
    validate it with ``onnx.checker``. Returns the path. Default: exact fp32 graph."""
    spec = GraphSpec(image_size=tuple(policy.spec.image_size), proprio_dim=int(policy.spec.proprio_dim),
                     top_k=int(policy.cfg.moe_top_k), layer_norm_eps=float(policy.actor.trunk[1].eps))
    return export_state(policy.policy_state(), spec, path, cfg)


# --------------------------------------------------------------------------------------------------
# CLI: learner checkpoint (or bare policy state) -> .onnx
# --------------------------------------------------------------------------------------------------
def policy_from_state(state: Mapping, agent_config: str | Sequence[str] = "paper",
                      image_size: tuple[int, int] = (84, 84), overrides: Mapping | None = None):
    """Build an :class:`ActorPolicy` (CPU) that fits ``state`` and load it (shape-checked).

    The network widths (encoder channels, feature/hidden/expert/gate dims, number of experts, MoE or
    MLP), the stacked channels, the action and proprio sizes are read from the weights; what the
    weights cannot tell (``image_size`` (H, W) px, ``moe_top_k``, ``frame_stack``) comes from the
    agent config / arguments. Raises ``ValueError`` when they do not fit together.
    """
    from mentor_policy.config import load_agent_config
    from mentor_policy.policy import ActorPolicy
    from mentor_policy.specs import EnvSpec

    conv0 = _np(state, "encoder.convs.0.weight")
    arch = {"encoder_channels": conv0.shape[0], "feature_dim": _np(state, "actor.trunk.0.weight").shape[0],
            "hidden_dim": _np(state, "actor.fc1.weight").shape[0], "use_moe": "actor.moe.experts.w1" in state}
    keypoints = "encoder.keypoints.weight" in state
    arch["encoder_head"] = "spatial_softmax" if keypoints else "flatten"
    if keypoints:
        arch["encoder_keypoints"] = _np(state, "encoder.keypoints.weight").shape[0]
    if arch["use_moe"]:
        w1 = _np(state, "actor.moe.experts.w1")
        arch.update(num_experts=w1.shape[0], expert_hidden_dim=w1.shape[2],
                    gate_hidden_dim=_np(state, "actor.moe.gate_fc1.weight").shape[0])
    names = [agent_config] if isinstance(agent_config, (str, Path)) else list(agent_config)
    base = load_agent_config(names, dict(overrides or {}))
    if arch["use_moe"] and base.moe_top_k > arch["num_experts"]:
        raise ValueError(f"moe_top_k {base.moe_top_k} exceeds the checkpoint's {arch['num_experts']} experts: "
                         f"pass --top-k")
    arch["encoder_strides"] = _conv_strides(state, len(_conv_keys(state)))
    cfg = load_agent_config(names, {**dict(overrides or {}), **arch})
    in_ch = conv0.shape[1]
    if in_ch % (3 * cfg.frame_stack):
        raise ValueError(f"the encoder takes {in_ch} channels, not a multiple of 3 * frame_stack ({cfg.frame_stack})")
    h, w = conv_out_hw(tuple(image_size), cfg.encoder_strides)
    proprio = _np(state, "actor.fc1.weight").shape[1] - arch["feature_dim"]
    image_features = 2 * arch["encoder_keypoints"] if keypoints else conv0.shape[0] * h * w
    if proprio < 0 or h <= 0 or w <= 0 or _np(state, "actor.trunk.0.weight").shape[1] != image_features:
        raise ValueError(f"image size {tuple(image_size)} does not fit the trunk's "
                         f"{_np(state, 'actor.trunk.0.weight').shape[1]} inputs: pass the training --image-size")
    spec = EnvSpec(in_ch // cfg.frame_stack, tuple(image_size), proprio, _np(state, "actor.out.weight").shape[0])
    policy = ActorPolicy(spec, cfg, device="cpu")
    policy.load_policy_state(state)
    return policy


def load_policy_state(path: str | Path) -> Mapping:
    """The policy state of a learner checkpoint (``{"policy": ..., ...}``) or of a bare policy-state file."""
    from mentor_policy.checkpoint import read_policy
    return read_policy(path)[0]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m mentor_policy.export",
                                 description="Export a MENTOR policy (learner checkpoint or policy state) to ONNX.")
    ap.add_argument("--checkpoint", required=True, help="learner latest.pt or a bare policy-state file")
    ap.add_argument("--out", required=True, help="output .onnx path (written atomically)")
    ap.add_argument("--agent-config", nargs="+", default=["paper"], help="agent presets/YAML (top-k, frame stack)")
    ap.add_argument("--image-size", nargs=2, type=int, default=[84, 84], metavar=("H", "W"),
                    help="policy image size in pixels used in training")
    ap.add_argument("--top-k", type=int, default=None, help="override moe_top_k of the agent config")
    ap.add_argument("--quantize", choices=["int8"], default=None,
                    help="reduced-precision weights (opt-in; changes the actions slightly)")
    ap.add_argument("--quantize-layers", nargs="+", default=list(ExportConfig.quantize_layers),
                    choices=list(QUANTIZABLE_LAYERS))
    ap.add_argument("--verify", type=int, default=8, help="random observations compared with torch (0: skip)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    overrides = {"moe_top_k": args.top_k} if args.top_k else {}
    policy = policy_from_state(load_policy_state(args.checkpoint), args.agent_config, tuple(args.image_size), overrides)
    cfg = ExportConfig(precision=args.quantize or "fp32", quantize_layers=tuple(args.quantize_layers))
    path = export_onnx(policy, args.out, cfg)
    if args.verify > 0:
        err = max_action_error(policy, OnnxPolicy(path), args.verify)
        print(f"max |torch - onnx| action error over {args.verify} random observations: {err:.3e}")
    print(f"wrote {path} ({cfg.precision}, {policy.in_channels}x{policy.spec.image_size[0]}x"
          f"{policy.spec.image_size[1]} image, proprio {policy.spec.proprio_dim}, action {policy.spec.action_dim})")
    return 0


def max_action_error(policy, onnx_policy: OnnxPolicy, n: int, seed: int = 0, batch: int = 50) -> float:
    """Max abs difference between the torch policy's and the ONNX policy's deterministic actions over
    ``n`` random uint8 images (and standard-normal proprio)."""
    import torch
    rng = np.random.default_rng(seed)
    spec, worst = policy.spec, 0.0
    for start in range(0, n, batch):
        m = min(batch, n - start)
        img = rng.integers(0, 256, (m, policy.in_channels, *spec.image_size), dtype=np.uint8)
        prop = rng.standard_normal((m, spec.proprio_dim)).astype(np.float32) if spec.proprio_dim else None
        with torch.inference_mode():
            policy.eval()
            ref = policy(torch.from_numpy(img), torch.from_numpy(prop) if prop is not None else None).numpy()
        worst = max(worst, float(np.abs(onnx_policy.act_batch(img, prop) - ref).max()))
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
