"""Single-observation act latency: torch ActorPolicy vs the exported ONNX policy on ONNX Runtime.

Usage: .venv/bin/python benchmarks/act_latency.py [--config paper] [--calls 1000] [--ort-threads 1]
       [--torch-threads N] [--precision fp32 int8] [--quantize-layers trunk ...] [--error-samples 1000]
       [--skip-torch] [--json out.json]
For torch and for each ONNX precision: median and p99 wall latency (ms) over ``--calls`` calls after
warm-up, the CPU time per call (less sensitive to other processes on a shared machine), the max abs
action difference from torch over ``--error-samples`` random observations, and the load average
before and after the timing (the machine is shared: compare figures taken at similar load).
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
from mentor_policy.export import QUANTIZABLE_LAYERS, ExportConfig, export_onnx, max_action_error  # noqa: E402
from mentor_policy.onnx_policy import OnnxPolicy, OnnxPolicyConfig  # noqa: E402
from mentor_policy.policy import ActorPolicy  # noqa: E402
from mentor_policy.specs import EnvSpec  # noqa: E402


def measure(fn, calls: int, warmup: int = 50) -> dict[str, float]:
    """Wall median / p99 (ms) and CPU ms per call of ``fn()``; load average around the run."""
    for _ in range(warmup):
        fn()
    load0 = os.getloadavg()[0]
    wall = np.empty(calls)
    cpu0 = time.process_time()
    for i in range(calls):
        t0 = time.perf_counter()
        fn()
        wall[i] = time.perf_counter() - t0
    cpu = (time.process_time() - cpu0) / calls
    return {"median_ms": float(np.median(wall) * 1e3), "p99_ms": float(np.percentile(wall, 99) * 1e3),
            "min_ms": float(wall.min() * 1e3), "cpu_ms_per_call": cpu * 1e3,
            "loadavg_1m_before": load0, "loadavg_1m_after": os.getloadavg()[0]}


def _line(name: str, r: dict, calls: int) -> str:
    err = f", max |torch - onnx| {r['max_abs_err']:.2e}" if "max_abs_err" in r else ""
    return (f"{name:11s} median {r['median_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms, min {r['min_ms']:.3f} ms, "
            f"CPU {r['cpu_ms_per_call']:.3f} ms/call over {calls} calls{err} "
            f"(load {r['loadavg_1m_before']:.2f} -> {r['loadavg_1m_after']:.2f})")


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="paper")
    ap.add_argument("--image", type=int, default=84)
    ap.add_argument("--cameras", type=int, default=1)
    ap.add_argument("--proprio", type=int, default=0)
    ap.add_argument("--action-dim", type=int, default=4)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--ort-threads", type=int, default=None, help="ORT intra-op threads (default: OnnxPolicy's)")
    ap.add_argument("--ort-spin", action="store_true",
                    help="let ORT's worker threads spin between calls (lower latency on a dedicated CPU, burns a core)")
    ap.add_argument("--torch-threads", type=int, default=None)
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "int8"])
    ap.add_argument("--quantize-layers", nargs="+", default=list(ExportConfig.quantize_layers),
                    choices=list(QUANTIZABLE_LAYERS))
    ap.add_argument("--error-samples", type=int, default=1000, help="random observations for the action error")
    ap.add_argument("--skip-torch", action="store_true", help="do not time torch (still used for the error)")
    ap.add_argument("--json", default=None)
    return ap.parse_args()


def main() -> None:
    args = _parse()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    cfg = load_agent_config(args.config)
    spec = EnvSpec(3 * args.cameras, (args.image, args.image), args.proprio, args.action_dim)
    torch.manual_seed(0)
    policy = ActorPolicy(spec, cfg, device="cpu").eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (policy.in_channels, args.image, args.image), dtype=np.uint8)
    proprio = rng.standard_normal(args.proprio).astype(np.float32) if args.proprio else None
    results: dict = {"config": args.config, "image": args.image, "channels": policy.in_channels,
                     "torch_threads": torch.get_num_threads(), "calls": args.calls}
    if not args.skip_torch:
        results["torch"] = measure(lambda: policy.act(image, proprio), args.calls)
        print(_line("torch", results["torch"], args.calls))
    with tempfile.TemporaryDirectory() as tmp:
        for precision in args.precision:
            ecfg = ExportConfig(precision=precision, quantize_layers=tuple(args.quantize_layers))
            path = export_onnx(policy, Path(tmp) / f"policy_{precision}.onnx", ecfg)
            ort_cfg = OnnxPolicyConfig(intra_op_threads=args.ort_threads or 1, extra_session_config=(
                {"session.intra_op.allow_spinning": "1"} if args.ort_spin else {}))
            ort_policy = OnnxPolicy(path, cfg=ort_cfg)
            r = measure(lambda: ort_policy.act(image, proprio), args.calls)
            r["max_abs_err"] = max_action_error(policy, ort_policy, args.error_samples)
            r["error_samples"] = args.error_samples
            r["file_mb"] = path.stat().st_size / 1e6
            r["ort_threads"] = ort_policy.session.get_session_options().intra_op_num_threads
            if precision == "int8":
                r["quantize_layers"] = list(ecfg.quantize_layers)
            results[f"ort_{precision}"] = r
            print(_line(f"ort {precision}", r, args.calls) + f" [{args.error_samples} error samples, "
                  f"{r['file_mb']:.1f} MB, {r['ort_threads']} ORT thread(s)]")
    print(f"config {args.config}, {args.image}x{args.image}x{policy.in_channels}, torch threads "
          f"{results['torch_threads']}, load average now {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
