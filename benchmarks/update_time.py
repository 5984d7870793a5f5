"""Learner update time of MentorAgent at the paper configuration (or any preset).

Usage: .venv/bin/python benchmarks/update_time.py [--config paper] [--batch 256] [--updates 10]
       [--warmup 2] [--threads N] [--cameras 1] [--proprio 0] [--breakdown 3] [--json out.json]
       [--set encoder_precision=bf16 ...]
Prints the median / min / max wall time per update (ms) over ``--updates`` updates after warm-up,
the process CPU time per update (with ``--threads 1`` a load-insensitive measure of the work) and
the machine load average (other processes share the CPU). ``--breakdown N`` then profiles N more
updates and prints the time of each part of the update (``mentor_policy.agent.UPDATE_PARTS``:
augmentation, encoder forward, target pass, critic / actor / value steps, target EMA); the
profiler's own overhead makes these sum to a little more than the timed update.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mentor_policy.agent import UPDATE_PARTS, MentorAgent  # noqa: E402
from mentor_policy.config import load_agent_config  # noqa: E402
from mentor_policy.specs import EnvSpec  # noqa: E402


def make_batch(rng: np.random.Generator, spec: EnvSpec, frame_stack: int, b: int) -> dict:
    c = spec.stacked_channels(frame_stack)
    h, w = spec.image_size
    batch = {"image": rng.integers(0, 256, (b, c, h, w), dtype=np.uint8),
             "next_image": rng.integers(0, 256, (b, c, h, w), dtype=np.uint8),
             "action": rng.uniform(-1, 1, (b, spec.action_dim)).astype(np.float32),
             "reward": rng.standard_normal(b).astype(np.float32),
             "discount": np.full(b, 0.99 ** 3, np.float32)}
    if spec.proprio_dim:
        batch["proprio"] = rng.standard_normal((b, spec.proprio_dim)).astype(np.float32)
        batch["next_proprio"] = rng.standard_normal((b, spec.proprio_dim)).astype(np.float32)
    return batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="paper")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    ap.add_argument("--image", type=int, default=84)
    ap.add_argument("--cameras", type=int, default=1)
    ap.add_argument("--proprio", type=int, default=0)
    ap.add_argument("--action-dim", type=int, default=4)
    ap.add_argument("--updates", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--breakdown", type=int, default=0, metavar="N", help="profile N more updates: time per part")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an AgentConfig override (YAML value), e.g. --set encoder_precision=bf16; repeatable")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    over = {"perturb_mode": "none"}  # measure the update itself; perturbation is rare (every 10k)
    if args.batch:
        over["batch_size"] = args.batch
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set wants KEY=VALUE, got {item!r}")
        over[key.strip()] = yaml.safe_load(value)
    cfg = load_agent_config(args.config, over)
    spec = EnvSpec(3 * args.cameras, (args.image, args.image), args.proprio, args.action_dim)
    agent = MentorAgent(spec, cfg, device=args.device)
    rng = np.random.default_rng(0)
    batches = [make_batch(rng, spec, cfg.frame_stack, cfg.batch_size) for _ in range(2)]
    for i in range(args.warmup):
        agent.update(batches[i % 2], 10_000 + i)
    times, cpu_times = [], []
    for i in range(args.updates):
        if agent.device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        agent.update(batches[i % 2], 20_000 + i)
        if agent.device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu_times.append((time.process_time() - c0) * 1e3)
    load = os.getloadavg()
    res = {"config": args.config, "batch": cfg.batch_size, "image": args.image,
           "channels": spec.stacked_channels(cfg.frame_stack),
           "experts": cfg.num_experts if cfg.use_moe else 0, "top_k": cfg.moe_top_k, "device": str(agent.device),
           "threads": torch.get_num_threads(), "median_ms": statistics.median(times), "min_ms": min(times),
           "max_ms": max(times), "median_cpu_ms": statistics.median(cpu_times), "updates": args.updates,
           "loadavg_1m": load[0], "encoder_precision": cfg.encoder_precision}
    print(f"update time ({res['config']}, batch {res['batch']}, {args.image}x{args.image}x{res['channels']}, "
          f"E={res['experts']} k={res['top_k']}, encoder {cfg.encoder_precision}, {res['device']}, "
          f"{res['threads']} threads): "
          f"median {res['median_ms']:.0f} ms, min {res['min_ms']:.0f} ms, max {res['max_ms']:.0f} ms "
          f"over {args.updates} updates; process CPU time median {res['median_cpu_ms']:.0f} ms/update; "
          f"load average {load[0]:.2f}")
    if args.breakdown > 0:
        res["parts_ms"] = breakdown(agent, batches, args.breakdown)
        total = sum(res["parts_ms"].values())
        print("parts of an update (profiled, ms per update):")
        for name, ms in res["parts_ms"].items():
            print(f"  {name:<20} {ms:8.1f} ms  {100 * ms / total:5.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


def breakdown(agent: MentorAgent, batches: list, updates: int) -> dict:
    """Time of each labelled part of ``agent.update`` [ms per update], from the torch profiler
    (CPU time of the part's record_function range; on CUDA the device time when it is larger)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if agent.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for i in range(updates):
            agent.update(batches[i % 2], 30_000 + i)
        if agent.device.type == "cuda":
            torch.cuda.synchronize()
    totals = {name: 0.0 for name in UPDATE_PARTS}
    for event in prof.key_averages():
        if event.key in totals:
            device_us = getattr(event, "device_time_total", 0.0) or getattr(event, "cuda_time_total", 0.0) or 0.0
            totals[event.key] += max(event.cpu_time_total, device_us) / 1e3 / updates
    return {name: ms for name, ms in totals.items() if ms > 0}


if __name__ == "__main__":
    main()
