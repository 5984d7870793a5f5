"""Single-observation act latency: torch ActorPolicy vs the exported ONNX policy on ONNX Runtime.

Usage: .venv/bin/python benchmarks/act_latency.py [--config paper] [--calls 1000] [--ort-threads 1]
       [--torch-threads N] [--json out.json]
Prints median and p99 wall latency (ms) over ``--calls`` calls after warm-up, the CPU time per call
(less sensitive to other processes on a shared machine) and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mentor_policy.config import load_agent_config  # noqa: E402
from mentor_policy.export import OnnxPolicy, export_onnx  # noqa: E402
from mentor_policy.policy import ActorPolicy  # noqa: E402
from mentor_policy.specs import EnvSpec  # noqa: E402


def measure(fn, calls: int, warmup: int = 50) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    wall = np.empty(calls)
    cpu0 = time.process_time()
    for i in range(calls):
        t0 = time.perf_counter()
        fn()
        wall[i] = time.perf_counter() - t0
    cpu = (time.process_time() - cpu0) / calls
    return {"median_ms": float(np.median(wall) * 1e3), "p99_ms": float(np.percentile(wall, 99) * 1e3),
            "cpu_ms_per_call": cpu * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="paper")
    ap.add_argument("--image", type=int, default=84)
    ap.add_argument("--cameras", type=int, default=1)
    ap.add_argument("--proprio", type=int, default=0)
    ap.add_argument("--action-dim", type=int, default=4)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--ort-threads", type=int, default=None, help="ORT intra-op threads (default: OnnxPolicy's)")
    ap.add_argument("--torch-threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    cfg = load_agent_config(args.config)
    spec = EnvSpec(3 * args.cameras, (args.image, args.image), args.proprio, args.action_dim)
    policy = ActorPolicy(spec, cfg, device="cpu")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (policy.in_channels, args.image, args.image), dtype=np.uint8)
    proprio = rng.standard_normal(args.proprio).astype(np.float32) if args.proprio else None
    results = {"config": args.config, "image": args.image, "channels": policy.in_channels,
               "torch_threads": torch.get_num_threads()}
    results["torch"] = measure(lambda: policy.act(image, proprio, step=10**7, eval_mode=True), args.calls)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(policy, Path(tmp) / "policy.onnx")
        ort_policy = OnnxPolicy(path, intra_op_threads=args.ort_threads)
        diff = np.abs(ort_policy.act(image, proprio) - policy.act(image, proprio, 10**7, True)).max()
        results["ort"] = measure(lambda: ort_policy.act(image, proprio), args.calls)
        results["ort_threads"] = ort_policy.session.get_session_options().intra_op_num_threads
    results["max_abs_diff_torch_vs_ort"] = float(diff)
    results["loadavg_1m"] = os.getloadavg()[0]
    for name in ("torch", "ort"):
        r = results[name]
        print(f"{name:5s} act latency ({args.config}, {args.image}x{args.image}x{policy.in_channels}): "
              f"median {r['median_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, CPU {r['cpu_ms_per_call']:.2f} ms/call "
              f"over {args.calls} calls")
    print(f"torch threads {results['torch_threads']}, ORT intra-op threads {results['ort_threads']}, "
          f"max |torch - ORT| = {diff:.2e}, load average {results['loadavg_1m']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
