"""Peak memory, sampling speed and reload time of the disk-backed replay buffer.

Fills a ReplayBuffer in a temporary directory with synthetic episodes (random uint8 frames), samples
batches, and reports the process's peak RSS (VmHWM) against the raw frame bytes. Then a fresh
subprocess reloads the same directory (a learner restart) and reports its reload time, peak RSS and
sampling speed. The temporary directory is deleted afterwards.

Target: peak RSS <= raw frame bytes + 1 GiB.

    .venv/bin/python benchmarks/replay_memory.py                       # 100k transitions, 84x84 RGB
    .venv/bin/python benchmarks/replay_memory.py --transitions 5000    # quick check
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mentor_policy.replay import ReplayBuffer, ReplayConfig  # noqa: E402
from mentor_policy.specs import EnvSpec  # noqa: E402

GIB = 1 << 30


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (VmHWM from /proc/self/status), bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found in /proc/self/status (Linux only)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transitions", type=int, default=100_000, help="replay capacity in transitions")
    p.add_argument("--episode-length", type=int, default=500, help="transitions per synthetic episode")
    p.add_argument("--image-size", type=int, default=84, help="frame height = width, pixels")
    p.add_argument("--frame-stack", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--batches", type=int, default=200, help="batches sampled for the timing")
    p.add_argument("--overfill", type=float, default=0.1,
                   help="extra fraction of episodes added beyond capacity (exercises eviction and ring wrap)")
    p.add_argument("--dir", type=Path, default=None, help="parent of the temporary replay directory")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    p.add_argument("--reload-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.transitions < args.episode_length or args.episode_length < 1:
        p.error("need transitions >= episode-length >= 1")
    return args


def make_spec_cfg(args: argparse.Namespace) -> tuple[EnvSpec, ReplayConfig]:
    spec = EnvSpec(frame_channels=3, image_size=(args.image_size, args.image_size), proprio_dim=8, action_dim=4)
    cfg = ReplayConfig(capacity=args.transitions, frame_stack=args.frame_stack, batch_size=args.batch_size)
    return spec, cfg


def synthetic_episode(rng: np.random.Generator, spec: EnvSpec, length: int) -> dict[str, np.ndarray]:
    n = length + 1
    h, w = spec.image_size
    action = rng.uniform(-1, 1, (n, spec.action_dim)).astype(np.float32)
    action[0] = 0
    reward = rng.random(n, dtype=np.float32)
    reward[0] = 0
    return {
        "image": rng.integers(0, 256, (n, spec.frame_channels, h, w), dtype=np.uint8),
        "proprio": rng.standard_normal((n, spec.proprio_dim), dtype=np.float32),
        "action": action,
        "reward": reward,
        "discount": np.ones(n, np.float32),
        "intervention": np.zeros(n, bool),
    }


def time_sampling(replay: ReplayBuffer, batches: int) -> float:
    """Mean seconds per sample() call over ``batches`` calls (after one warm-up call)."""
    replay.sample()
    t0 = time.perf_counter()
    for _ in range(batches):
        batch = replay.sample()
    dt = (time.perf_counter() - t0) / batches
    assert batch["image"].shape[0] == replay.cfg.batch_size
    return dt


def reload_phase(args: argparse.Namespace) -> dict[str, float]:
    """Runs in a fresh process: reload the directory, sample, report."""
    spec, cfg = make_spec_cfg(args)
    t0 = time.perf_counter()
    replay = ReplayBuffer(args.reload_only, cfg, spec)
    reload_s = time.perf_counter() - t0
    sample_s = time_sampling(replay, args.batches)
    return {"reload_s": reload_s, "reload_transitions": replay.num_transitions,
            "reload_sample_ms": sample_s * 1e3, "reload_peak_rss": peak_rss_bytes()}


def fill_phase(args: argparse.Namespace, directory: Path) -> dict[str, float]:
    spec, cfg = make_spec_cfg(args)
    rng = np.random.default_rng(0)
    replay = ReplayBuffer(directory, cfg, spec)
    n_episodes = int(np.ceil(args.transitions * (1 + args.overfill) / args.episode_length))
    t0 = time.perf_counter()
    for _ in range(n_episodes):
        replay.add_episode(synthetic_episode(rng, spec, args.episode_length))
    fill_s = time.perf_counter() - t0
    h, w = spec.image_size
    raw = replay.num_transitions * spec.frame_channels * h * w
    sample_s = time_sampling(replay, args.batches)
    disk = sum(p.stat().st_size for p in directory.glob("ep_*.npz"))
    return {"episodes_added": n_episodes, "transitions_held": replay.num_transitions,
            "episodes_held": replay.num_episodes, "raw_frame_bytes": raw, "disk_bytes": disk,
            "fill_s": fill_s, "sample_ms": sample_s * 1e3, "peak_rss": peak_rss_bytes()}


def report(res: dict[str, float], args: argparse.Namespace) -> bool:
    raw = res["raw_frame_bytes"]
    limit = raw + GIB
    ok = res["peak_rss"] <= limit and res["reload_peak_rss"] <= limit
    print(f"replay: {res['transitions_held']} transitions in {res['episodes_held']} episodes "
          f"({res['episodes_added']} added, {args.image_size}x{args.image_size} RGB, frame_stack {args.frame_stack})")
    print(f"raw frame bytes      : {raw / GIB:.3f} GiB   (files on disk {res['disk_bytes'] / GIB:.3f} GiB)")
    print(f"fill (write+fsync)   : {res['fill_s']:.1f} s")
    print(f"sample batch {args.batch_size:4d}    : {res['sample_ms']:.1f} ms/batch")
    print(f"peak RSS (fill+sample): {res['peak_rss'] / GIB:.3f} GiB  = raw + {(res['peak_rss'] - raw) / GIB:.3f} GiB")
    print(f"reload (new process) : {res['reload_s']:.1f} s for {res['reload_transitions']} transitions, "
          f"then {res['reload_sample_ms']:.1f} ms/batch")
    print(f"peak RSS (reload)    : {res['reload_peak_rss'] / GIB:.3f} GiB = "
          f"raw + {(res['reload_peak_rss'] - raw) / GIB:.3f} GiB")
    print(f"target peak RSS <= raw + 1 GiB = {limit / GIB:.3f} GiB: {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.reload_only is not None:
        print(json.dumps(reload_phase(args)))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="replay_bench_", dir=args.dir))
    try:
        res = fill_phase(args, tmp / "replay")
        child_args = [a for a in (argv if argv is not None else sys.argv[1:])]
        out = subprocess.run([sys.executable, __file__, *child_args, "--reload-only", str(tmp / "replay")],
                             check=True, capture_output=True, text=True)
        res.update(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=False)
    ok = report(res, args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**vars(args), **res, "pass": ok}, default=str, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
