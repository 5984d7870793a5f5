"""Time and size of the LeRobotDataset v3.0 export (and import) of an episode store.

    mentor-run record --task reach --run-dir runs/reach20 --episodes 20 --expert
    python benchmarks/dataset_export.py --episodes runs/reach20/learner/replay --cameras front,side --task reach

Prints: episodes, frames, export seconds, dataset MB (and the episode store's MB), import seconds and the
mean absolute image error of the round trip (0-255 scale).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mentor_policy.lerobot_v3 import ExportConfig, episode_files, export_dataset, import_dataset  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", required=True, help="an episode store (replay/ or demos/)")
    ap.add_argument("--cameras", default="front")
    ap.add_argument("--task", default="reach")
    ap.add_argument("--fps", type=float, default=10.0)
    args = ap.parse_args(argv)
    files = episode_files([args.episodes])
    store_mb = sum(f.stat().st_size for f in files) / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        cfg = ExportConfig(fps=args.fps, task=args.task, cameras=tuple(args.cameras.split(",")))
        report = export_dataset([args.episodes], out, cfg, log=lambda _m: None)
        t0 = time.perf_counter()
        back = list(import_dataset(out))
        import_s = time.perf_counter() - t0
        err = np.mean([np.abs(np.load(f)["image"].astype(np.int16) - b["image"].astype(np.int16)).mean()
                       for f, b in zip(files, back)])
    print(f"{report['episodes']} episodes, {report['frames']} frames: export {report['seconds']:.2f} s, "
          f"{report['megabytes']:.2f} MB (episode store {store_mb:.2f} MB); import {import_s:.2f} s; "
          f"round-trip image error {err:.2f} / 255")
    return 0


if __name__ == "__main__":
    sys.exit(main())
