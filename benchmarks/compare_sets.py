"""Compare one config between two benchmark sets of ``benchmarks/learning.py`` (e.g. from scratch and with
demonstrations): per-seed steps to a success threshold, their medians and ratio, final success, and both
success curves in one plot.

    python benchmarks/compare_sets.py --config mentor \\
        --set scratch=benchmarks/results/peg_cpu --set demos=benchmarks/results/peg_demos_cpu \\
        --out benchmarks/results/peg_demos_cpu/comparison

A seed that never reaches the threshold counts as the set's budget (its last evaluation step) and the
median is then a lower bound (reported as such). Only finished runs (rows in ``results.csv``) count.
Writes ``<out>.json`` and ``<out>.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.plot_learning import aggregate, plot_curves, read_results  # noqa: E402
from mentor_policy.fileio import atomic_write_text  # noqa: E402


def first_step_at(rows: list[dict], threshold: float) -> Optional[int]:
    """First evaluation step of one seed's rows with success >= threshold, or None."""
    hit = [r["step"] for r in sorted(rows, key=lambda r: r["step"]) if r["success_rate"] >= threshold]
    return int(hit[0]) if hit else None


def set_summary(rows: list[dict], config: str, threshold: float) -> dict:
    """Per-seed steps to ``threshold`` and final success of ``config`` in one set's rows."""
    seeds: dict[int, list[dict]] = {}
    for r in rows:
        if r["config"] == config:
            seeds.setdefault(r["seed"], []).append(r)
    if not seeds:
        raise ValueError(f"no finished runs of config {config!r}")
    budget = {s: max(r["step"] for r in rs) for s, rs in seeds.items()}
    reach = {s: first_step_at(rs, threshold) for s, rs in sorted(seeds.items())}
    counted = [reach[s] if reach[s] is not None else budget[s] for s in sorted(seeds)]
    final = [max(rs, key=lambda r: r["step"])["success_rate"] for _s, rs in sorted(seeds.items())]
    return {"seeds": sorted(seeds), "steps_to_threshold_per_seed": {str(s): v for s, v in reach.items()},
            "median_steps_to_threshold": float(np.median(counted)),
            "median_is_lower_bound": any(v is None for v in reach.values()),
            "final_success_per_seed": final, "final_success_mean": float(np.mean(final))}


def compare(sets: dict[str, Path], config: str, threshold: float, out: Path, eval_every: Optional[int]) -> dict:
    rows_by_set = {name: read_results(path / "results.csv") for name, path in sets.items()}
    result = {"config": config, "threshold": threshold,
              "sets": {name: {"dir": str(path), **set_summary(rows_by_set[name], config, threshold)}
                       for name, path in sets.items()}}
    (a, sa), (b, sb) = list(result["sets"].items())[:2]
    if sb["median_steps_to_threshold"] > 0:
        result["ratio"] = {"of": f"median steps to {threshold:.0%}: {a} / {b}",
                           "value": sa["median_steps_to_threshold"] / sb["median_steps_to_threshold"]}
    relabelled = [{**r, "config": f"{config} ({name})"} for name, rows in rows_by_set.items() for r in rows
                  if r["config"] == config]
    curves = aggregate(relabelled, "success_rate", bin_width=eval_every)
    plot_curves(curves, out.with_suffix(".png"), "success_rate",
                title=f"{config}: success rate, " + " vs ".join(sets) + " (mean, min..max over seeds)")
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=1))
    return result


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="mentor", help="the config compared (a benchmarks/learning.py config)")
    ap.add_argument("--set", action="append", required=True, metavar="NAME=DIR",
                    help="a benchmark output directory (with results.csv); give two, the first is the baseline")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--eval-every", type=int, default=None, help="bin evaluation steps to this interval (plot)")
    ap.add_argument("--out", required=True, help="output path without suffix (.json and .png are written)")
    args = ap.parse_args(argv)
    sets = {}
    for item in args.set:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path, "results.csv").is_file():
            ap.error(f"--set must be NAME=DIR with DIR/results.csv, got {item!r}")
        sets[name] = Path(path)
    if len(sets) != 2:
        ap.error("give exactly two --set")
    res = compare(sets, args.config, args.threshold, Path(args.out), args.eval_every)
    for name, s in res["sets"].items():
        bound = " (lower bound: a seed never got there)" if s["median_is_lower_bound"] else ""
        print(f"{name:>10}: seeds {s['seeds']}, steps to {args.threshold:.0%} per seed "
              f"{s['steps_to_threshold_per_seed']}, median {s['median_steps_to_threshold']:.0f}{bound}; final "
              f"success {s['final_success_per_seed']} (mean {s['final_success_mean']:.2f})")
    if "ratio" in res:
        print(f"{res['ratio']['of']} = {res['ratio']['value']:.2f}")
    print(f"wrote {Path(args.out).with_suffix('.json')}, {Path(args.out).with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
