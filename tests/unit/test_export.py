"""ONNX export of the deployed policy and ONNX Runtime parity with torch."""
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from mentor_policy.config import load_agent_config
from mentor_policy.export import OnnxPolicy, export_onnx
from mentor_policy.policy import ActorPolicy
from mentor_policy.specs import EnvSpec


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


@pytest.mark.parametrize("spec,names", [
    (EnvSpec(3, (32, 32), 4, 3), ("tiny",)),  # MoE + proprio
    (EnvSpec(6, (24, 28), 0, 2), ("tiny", "no_moe")),  # 2 cameras, MLP, no proprio
])
def test_onnx_matches_torch(tmp_path, spec, names):
    policy = _policy(spec, names)
    path = export_onnx(policy, tmp_path / "policy.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    ort_policy = OnnxPolicy(path, intra_op_threads=1)
    rng = np.random.default_rng(0)
    c = policy.in_channels
    for _ in range(20):
        img = rng.integers(0, 256, (c, *spec.image_size), dtype=np.uint8)
        prop = rng.standard_normal(spec.proprio_dim).astype(np.float32) if spec.proprio_dim else None
        a_ort = ort_policy.act(img, prop)
        a_torch = policy.act(img, prop, step=10**6, eval_mode=True)
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
    with pytest.raises(FileNotFoundError):
        OnnxPolicy(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load"):
        OnnxPolicy(tmp_path / "bad.onnx")


def test_onnx_runtime_side_imports_no_torch(tmp_path):
    spec = EnvSpec(3, (32, 32), 0, 2)
    path = export_onnx(_policy(spec), tmp_path / "p.onnx")
    code = ("import sys, numpy as np\n"
            "from mentor_policy.export import OnnxPolicy\n"
            f"p = OnnxPolicy({str(path)!r})\n"
            "a = p.act(np.zeros((9, 32, 32), np.uint8))\n"
            "assert a.shape == (2,)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
