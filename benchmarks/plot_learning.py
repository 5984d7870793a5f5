"""Learning curves from a benchmarks/learning.py results CSV: aggregation across seeds and a PNG plot.

CSV columns (one row per evaluation): ``config, task, seed, step, eval_return, success_rate,
wall_time`` where ``step`` counts agent (policy) steps, ``eval_return`` is the mean return of the
evaluation episodes, ``success_rate`` in [0, 1] the fraction of them that succeeded, and
``wall_time`` the seconds since that run started (training + evaluation).

Usage: ``python benchmarks/plot_learning.py RESULTS.csv --out curves.png [--metric success_rate]``
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from mentor_policy.fileio import save_figure  # noqa: E402

CSV_FIELDS = ("config", "task", "seed", "step", "eval_return", "success_rate", "wall_time")
METRICS = ("eval_return", "success_rate")


@dataclass(frozen=True)
class Curve:
    """One config's curve across seeds, on the evaluation steps every seed reached.

    Arrays are ``(n_steps,)``: ``steps`` (agent steps), and per step the ``mean``, ``std``,
    ``low`` (min) and ``high`` (max) of the metric over ``n_seeds`` seeds.
    """

    config: str
    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_seeds: int


def read_results(path: str | Path) -> list[dict]:
    """Read a results CSV; numbers are parsed, bad rows raise ``ValueError`` naming the line."""
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = set(CSV_FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)} (has {reader.fieldnames})")
        return [_parse_row(row, path, i + 2) for i, row in enumerate(reader)]


def _parse_row(row: dict, path: Path, line: int) -> dict:
    try:
        out = {"config": row["config"], "task": row["task"], "seed": int(row["seed"]), "step": int(row["step"])}
        for key in ("eval_return", "success_rate", "wall_time"):
            out[key] = float(row[key])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}:{line}: bad row {row}: {exc}") from exc
    if not all(math.isfinite(out[k]) for k in ("eval_return", "success_rate", "wall_time")):
        raise ValueError(f"{path}:{line}: non-finite value in row {row}")
    return out


def aggregate(rows: Iterable[dict], metric: str = "success_rate", task: Optional[str] = None,
              bin_width: Optional[int] = None) -> list[Curve]:
    """Group rows by config and combine seeds at each evaluation step.

    Only steps that every seed of that config has reached are kept (an unfinished seed shortens the
    curve rather than biasing the mean). Configs keep their first-seen order. Evaluations run after
    the first episode that ends at or past each multiple of the evaluation interval, so with
    variable-length episodes seeds evaluate at slightly different steps: ``bin_width`` (the interval)
    floors each step to a multiple of it (the last evaluation in a bin wins) so that seeds line up.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if bin_width is not None and int(bin_width) < 1:
        raise ValueError(f"bin_width must be >= 1 or None, got {bin_width}")
    by_config: dict[str, dict[int, dict[int, float]]] = {}
    for r in sorted(rows, key=lambda r: r["step"]):
        if task is not None and r["task"] != task:
            continue
        step = r["step"] if bin_width is None else r["step"] // int(bin_width) * int(bin_width)
        by_config.setdefault(r["config"], {}).setdefault(r["seed"], {})[step] = r[metric]
    return [_curve(config, seeds) for config, seeds in by_config.items()]


def _curve(config: str, seeds: dict[int, dict[int, float]]) -> Curve:
    common = sorted(set.intersection(*(set(s) for s in seeds.values())))
    values = np.array([[seeds[s][t] for t in common] for s in sorted(seeds)], dtype=np.float64)
    values = values.reshape(len(seeds), len(common))
    if not common:
        empty = np.zeros(0)
        return Curve(config, np.zeros(0, dtype=np.int64), empty, empty, empty, empty, len(seeds))
    return Curve(config, np.asarray(common, dtype=np.int64), values.mean(0), values.std(0),
                 values.min(0), values.max(0), len(seeds))


def steps_to_threshold(curve: Curve, threshold: float = 0.8) -> Optional[int]:
    """First evaluation step at which the seed-mean of the curve reaches ``threshold``; None if never."""
    hit = np.nonzero(curve.mean >= threshold)[0]
    return int(curve.steps[hit[0]]) if hit.size else None


def plot_curves(curves: list[Curve], out_png: str | Path, metric: str, title: str = "",
                band: str = "minmax") -> Path:
    """Write a PNG: one line per config (seed mean), shaded min..max (``band="minmax"``) or ±1 std."""
    if band not in ("minmax", "std"):
        raise ValueError(f"band must be 'minmax' or 'std', got {band!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for c in curves:
        if c.steps.size == 0:
            continue
        lo, hi = (c.low, c.high) if band == "minmax" else (c.mean - c.std, c.mean + c.std)
        (line,) = ax.plot(c.steps, c.mean, label=f"{c.config} (n={c.n_seeds})")
        ax.fill_between(c.steps, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("agent steps")
    ax.set_ylabel(metric.replace("_", " "))
    if metric == "success_rate":
        ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    saved = save_figure(fig, out_png)
    plt.close(fig)
    return saved


def plot_results(csv_path: str | Path, out_png: str | Path, metric: str = "success_rate",
                 band: str = "minmax", bin_width: Optional[int] = None) -> list[Curve]:
    """Read ``csv_path``, plot ``metric`` per config into ``out_png``; returns the curves."""
    rows = read_results(csv_path)
    tasks = sorted({r["task"] for r in rows})
    curves = aggregate(rows, metric, bin_width=bin_width)
    plot_curves(curves, out_png, metric, title=f"{', '.join(tasks)}: {metric.replace('_', ' ')}", band=band)
    return curves


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", help="results CSV written by benchmarks/learning.py")
    ap.add_argument("--out", help="PNG path (default: next to the CSV, <metric>.png)")
    ap.add_argument("--metric", choices=METRICS, default="success_rate")
    ap.add_argument("--band", choices=("minmax", "std"), default="minmax")
    ap.add_argument("--threshold", type=float, default=0.8, help="report steps to this success rate")
    ap.add_argument("--bin", type=int, default=None,
                    help="align evaluation steps to multiples of this (the eval interval)")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.csv).with_name(f"{args.metric}.png")
    curves = plot_results(args.csv, out, args.metric, args.band, args.bin)
    print(f"wrote {out}")
    for c in aggregate(read_results(args.csv), "success_rate", bin_width=args.bin):
        s = steps_to_threshold(c, args.threshold)
        print(f"{c.config}: steps to {args.threshold:.0%} success = {s if s is not None else 'not reached'}")
    return 0 if curves else 1


if __name__ == "__main__":
    sys.exit(main())
