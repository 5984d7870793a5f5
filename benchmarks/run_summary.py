"""Summarise a training run of the ROS 2 graph from its TensorBoard log: success and return over env steps.

Reads ``<run_dir>/learner/tb`` (the learner node's scalars): ``episode/success`` and ``episode/return``
(one point per finished training episode, x = env steps ingested) binned every ``--bin-steps`` env
steps, the deterministic evaluation blocks run inside training (``eval/block_success``: success rate
of each block of evaluation episodes, x = env steps when the block ended), and the last values of
the ``train/*`` scalars (critic loss, dormant ratio, sigma, ...). Prints a markdown table, writes it
to ``<out>/summary.md`` with ``<out>/success_rate.png`` (both curves), ``<out>/episodes.csv`` (the
per-episode training points) and ``<out>/eval_blocks.csv``, where ``<out>`` defaults to
``<run_dir>/summary``.

    .venv/bin/python benchmarks/run_summary.py --run-dir runs/reach_sim [--bin-steps 1000]

Training episodes act with exploration noise: their success rate is a lower bound on what the
deterministic policy does (evaluate a checkpoint with ``mentor-run deploy`` for that).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mentor_policy.fileio import atomic_write_text, save_figure  # noqa: E402


@dataclass
class EpisodePoint:
    env_steps: int  # env steps the learner had ingested when the episode ended
    success: float  # 1.0 when the episode succeeded
    ret: float  # undiscounted episode return


def read_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalar series under ``tb_dir`` (every events file, restarts included): tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(tb_dir.rglob("events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"no TensorBoard events under {tb_dir}: is this a training run directory?")
    series: dict[str, list[tuple[int, float]]] = {}
    for path in files:  # one file per learner (re)start, in start order
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            series.setdefault(tag, []).extend((int(e.step), float(e.value)) for e in acc.Scalars(tag))
    return series


def episode_points(series: dict[str, list[tuple[int, float]]]) -> list[EpisodePoint]:
    successes, returns = series.get("episode/success", []), series.get("episode/return", [])
    if len(successes) != len(returns):
        raise ValueError(f"episode/success has {len(successes)} points but episode/return {len(returns)}")
    return [EpisodePoint(s, v, r) for (s, v), (_s2, r) in zip(successes, returns)]


def bin_points(points: list[EpisodePoint], bin_steps: int) -> list[dict]:
    """Per ``bin_steps``-wide bin of env steps: episodes, success rate, mean return (empty bins skipped)."""
    rows = []
    if not points:
        return rows
    last = max(p.env_steps for p in points)
    for lo in range(0, last + 1, bin_steps):
        inside = [p for p in points if lo <= p.env_steps < lo + bin_steps]
        if inside:
            rows.append({"env_steps": f"{lo}-{lo + bin_steps}", "episodes": len(inside),
                         "success_rate": float(np.mean([p.success for p in inside])),
                         "mean_return": float(np.mean([p.ret for p in inside]))})
    return rows


def eval_blocks(series: dict[str, list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """(env steps at the block's end, success rate) of every evaluation block, in order."""
    return sorted(series.get("eval/block_success", []))


def markdown(rows: list[dict], series: dict[str, list[tuple[int, float]]], run_dir: Path) -> str:
    lines = [f"# Training run `{run_dir}`", "",
             "Training episodes (exploration noise on), binned by env steps ingested by the learner; the last "
             "column is the mean success of the deterministic evaluation blocks that ended in the bin:", "",
             "| env steps | episodes | success rate | mean return | eval success (blocks) |", "|---|---|---|---|---|"]
    blocks = eval_blocks(series)
    for r in rows:
        lo, hi = (int(v) for v in r["env_steps"].split("-"))
        inside = [v for step, v in blocks if lo <= step < hi]
        ev = f"{np.mean(inside):.2f} ({len(inside)})" if inside else "-"
        lines.append(f"| {r['env_steps']} | {r['episodes']} | {r['success_rate']:.2f} | "
                     f"{r['mean_return']:.3f} | {ev} |")
    train = {tag: vals[-1] for tag, vals in sorted(series.items()) if tag.startswith("train/") and vals}
    if train:
        lines += ["", "Last learner scalars (tag: update, value):", ""]
        lines += [f"- `{tag}`: update {step}, {value:.4g}" for tag, (step, value) in train.items()]
    return "\n".join(lines) + "\n"


def plot(points: list[EpisodePoint], rows: list[dict], bin_steps: int, path: Path,
         blocks: list[tuple[int, float]] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = np.array([p.env_steps for p in points])
    ax.scatter(steps, [p.success for p in points], s=6, alpha=0.3, label="episode success")
    centres = [int(r["env_steps"].split("-")[0]) + bin_steps / 2 for r in rows]
    ax.plot(centres, [r["success_rate"] for r in rows], "o-", label=f"training success per {bin_steps} steps")
    if blocks:
        ax.plot([b[0] for b in blocks], [b[1] for b in blocks], "s--", color="tab:green", ms=4,
                label="evaluation block success (deterministic)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("success")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(loc="upper left")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", required=True, type=Path, help="run directory of mentor-run train")
    ap.add_argument("--bin-steps", type=int, default=1000, help="width of the env-step bins")
    ap.add_argument("--out", type=Path, default=None, help="output directory (default <run-dir>/summary)")
    a = ap.parse_args(argv)
    if a.bin_steps < 1:
        raise SystemExit(f"--bin-steps must be >= 1, got {a.bin_steps}")
    series = read_scalars(a.run_dir / "learner" / "tb")
    points = episode_points(series)
    if not points:
        raise SystemExit(f"no finished episodes logged in {a.run_dir / 'learner' / 'tb'} yet")
    rows = bin_points(points, a.bin_steps)
    out = a.out or a.run_dir / "summary"
    text = markdown(rows, series, a.run_dir)
    print(text, end="")
    atomic_write_text(out / "summary.md", text)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["env_steps", "success", "return"])
    writer.writerows([p.env_steps, int(p.success), f"{p.ret:.6f}"] for p in points)
    atomic_write_text(out / "episodes.csv", buf.getvalue())
    blocks = eval_blocks(series)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["env_steps", "block_success"])
    writer.writerows([step, f"{v:.4f}"] for step, v in blocks)
    atomic_write_text(out / "eval_blocks.csv", buf.getvalue())
    plot(points, rows, a.bin_steps, out / "success_rate.png", blocks)
    print(f"wrote {out / 'summary.md'}, {out / 'success_rate.png'}, {out / 'episodes.csv'}, {out / 'eval_blocks.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
