"""ONNX export of the deployed policy, ONNX Runtime parity with torch, the int8 variant and the CLI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from mentor_policy.checkpoint import CheckpointError, save_checkpoint
from mentor_policy.config import load_agent_config
from mentor_policy.export import (
    ExportConfig,
    export_onnx,
    main,
    max_action_error,
    policy_from_state,
    quantize_blockwise_int8,
)
from mentor_policy.onnx_policy import OnnxPolicy
from mentor_policy.policy import ActorPolicy
from mentor_policy.specs import EnvSpec

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny shapes: one intra-op thread avoids OpenMP spin contention on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _policy(spec, names=("tiny",), **over):
    torch.manual_seed(0)
    policy = ActorPolicy(spec, load_agent_config(list(names), {"hidden_dim": 32, **over}), "cpu")
    with torch.no_grad():  # non-trivial biases / routing
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return policy


def _op_types(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("spec,names", [
    (EnvSpec(3, (32, 32), 4, 3), ("tiny",)),  # MoE + proprio
    (EnvSpec(6, (24, 28), 0, 2), ("tiny", "no_moe")),  # 2 cameras, non-square, MLP, no proprio
    (EnvSpec(6, (32, 36), 4, 3), ("tiny", {"encoder_head": "spatial_softmax", "encoder_keypoints": 6})),  # keypoints
    (EnvSpec(6, (40, 44), 4, 3), ("tiny", {"encoder_head": "spatial_softmax", "encoder_keypoints": 6,
                                          "encoder_strides": (2, 2, 1, 1)})),  # the cpu preset's encoder
    (EnvSpec(3, (40, 40), 0, 2), ("tiny", {"encoder_strides": (2, 1, 2, 1)})),  # strided, flattened map
])
def test_onnx_matches_torch(tmp_path, spec, names):
    over = next((n for n in names if isinstance(n, dict)), {})
    policy = _policy(spec, [n for n in names if not isinstance(n, dict)], **over)
    path = export_onnx(policy, tmp_path / "policy.onnx")
    ops = _op_types(path)
    assert ("MoE" in ops) == policy.cfg.use_moe and "Gather" not in ops and "Transpose" not in ops
    ort_policy = OnnxPolicy(path, intra_op_threads=1)
    rng = np.random.default_rng(0)
    c = policy.in_channels
    for _ in range(20):
        img = rng.integers(0, 256, (c, *spec.image_size), dtype=np.uint8)
        prop = rng.standard_normal(spec.proprio_dim).astype(np.float32) if spec.proprio_dim else None
        a_ort = ort_policy.act(img, prop)
        a_torch = policy.act(img, prop)
        assert a_ort.shape == (spec.action_dim,) and a_ort.dtype == np.float32
        np.testing.assert_allclose(a_ort, a_torch, atol=1e-4, rtol=0)
    # batched inference equals the dense training-path actor too
    imgs = rng.integers(0, 256, (5, c, *spec.image_size), dtype=np.uint8)
    props = rng.standard_normal((5, spec.proprio_dim)).astype(np.float32) if spec.proprio_dim else None
    with torch.no_grad():
        policy.eval()
        feats = policy.features(torch.from_numpy(imgs), torch.from_numpy(props) if props is not None else None)
        dense, _ = policy.actor(feats)
    np.testing.assert_allclose(ort_policy.act_batch(imgs, props), dense.numpy(), atol=1e-4, rtol=0)
    assert max_action_error(policy, ort_policy, 64) < 1e-4


def test_int8_export_is_opt_in_and_close(tmp_path):
    """The int8 variant really is quantised and stays close to torch. Its error depends on the
    network (the trunk feeds a LayerNorm, which rescales small trunk outputs and their rounding
    error): at the paper widths (48x48 image to keep the test fast) the default (trunk) variant
    measured ~0.02 max abs action error; fc1 + out of the tiny test net measured ~0.04."""
    assert ExportConfig().precision == "fp32"
    torch.manual_seed(0)
    paper = ActorPolicy(EnvSpec(3, (48, 48), 0, 4), load_agent_config("paper"), "cpu")
    fp32 = export_onnx(paper, tmp_path / "fp32.onnx")
    int8 = export_onnx(paper, tmp_path / "int8.onnx", ExportConfig(precision="int8"))
    assert "MatMulNBits" in _op_types(int8) and "MatMulNBits" not in _op_types(fp32)
    err = max_action_error(paper, OnnxPolicy(int8), 200)
    assert 0.0 < err < 0.05, err
    tiny = _policy(EnvSpec(3, (32, 32), 4, 3))
    small = export_onnx(tiny, tmp_path / "small.onnx", ExportConfig(precision="int8", quantize_layers=("fc1", "out")))
    err = max_action_error(tiny, OnnxPolicy(small), 200)
    assert 0.0 < err < 0.1, err


def test_blockwise_int8_roundtrip():
    """Dequantised weights are within half a quantisation step of the originals (K not a multiple of
    the block size; an all-zero block gets scale 1, not a division by zero)."""
    w = np.random.default_rng(0).standard_normal((5, 70)).astype(np.float32)
    w[:, :32] = 0.0
    q, scales = quantize_blockwise_int8(w, 32)
    assert q.shape == (5, 3, 32) and q.dtype == np.uint8 and scales.shape == (15,)
    deq = ((q.astype(np.float32) - 128) * scales.reshape(5, 3, 1)).reshape(5, -1)[:, :70]
    step = np.repeat(scales.reshape(5, 3), 32, axis=1)[:, :70]
    assert np.all(np.abs(deq - w) <= step / 2 + 1e-7)
    assert np.all(deq[:, :32] == 0.0)


def test_export_config_validation():
    with pytest.raises(ValueError, match="precision"):
        ExportConfig(precision="fp8")
    with pytest.raises(ValueError, match="unknown layers"):
        ExportConfig(precision="int8", quantize_layers=("conv",))
    with pytest.raises(ValueError, match="needs at least one"):
        ExportConfig(precision="int8", quantize_layers=())


def test_export_refuses_non_finite_weights(tmp_path):
    policy = _policy(EnvSpec(3, (32, 32), 0, 2))
    with torch.no_grad():
        policy.actor.out.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        export_onnx(policy, tmp_path / "p.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_onnx_policy_rejects_bad_input(tmp_path):
    spec = EnvSpec(3, (32, 32), 2, 2)
    ort_policy = OnnxPolicy(export_onnx(_policy(spec), tmp_path / "p.onnx"))
    img = np.zeros((9, 32, 32), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        ort_policy.act(img.astype(np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="proprio"):
        ort_policy.act(img, None)
    with pytest.raises(ValueError, match="finite"):
        ort_policy.act(img, np.array([np.nan, 0], np.float32))
    with pytest.raises(ValueError, match="shape"):
        ort_policy.act_batch(img[None], np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="explore needs the torch policy"):
        ort_policy.act(img, np.zeros(2, np.float32), explore=True)
    assert ort_policy.in_channels == 9
    with pytest.raises(FileNotFoundError):
        OnnxPolicy(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load"):
        OnnxPolicy(tmp_path / "bad.onnx")


def test_cli_exports_learner_checkpoint_and_bare_state(tmp_path, capsys):
    spec = EnvSpec(3, (32, 32), 4, 3)
    policy = _policy(spec)  # tiny preset with hidden_dim 32: widths must come from the weights
    state = policy.policy_state()
    save_checkpoint(tmp_path / "latest.pt", {"agent": {}, "policy": state, "env_steps": 7})
    save_checkpoint(tmp_path / "policy.pt", state)
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (9, 32, 32), dtype=np.uint8)
    prop = rng.standard_normal(4).astype(np.float32)
    for src in ("latest.pt", "policy.pt"):
        out = tmp_path / f"{src}.onnx"
        assert main(["--checkpoint", str(tmp_path / src), "--out", str(out), "--agent-config", "tiny",
                     "--image-size", "32", "32"]) == 0
        np.testing.assert_allclose(OnnxPolicy(out).act(img, prop), policy.act(img, prop), atol=1e-4)
    assert "max |torch - onnx|" in capsys.readouterr().out
    with pytest.raises(ValueError, match="image size"):
        policy_from_state(state, "tiny", (48, 48))
    (tmp_path / "corrupt.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="corrupt"):
        main(["--checkpoint", str(tmp_path / "corrupt.pt"), "--out", str(tmp_path / "x.onnx")])
    save_checkpoint(tmp_path / "other.pt", {"agent": {}, "env_steps": 1})
    with pytest.raises(CheckpointError, match="neither"):
        main(["--checkpoint", str(tmp_path / "other.pt"), "--out", str(tmp_path / "x.onnx")])


def test_onnx_runtime_side_imports_no_torch(tmp_path):
    spec = EnvSpec(3, (32, 32), 0, 2)
    path = export_onnx(_policy(spec), tmp_path / "p.onnx")
    code = ("import sys, numpy as np\n"
            "from mentor_policy.onnx_policy import OnnxPolicy\n"
            f"p = OnnxPolicy({str(path)!r})\n"
            "a = p.act(np.zeros((9, 32, 32), np.uint8))\n"
            "assert a.shape == (2,)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
