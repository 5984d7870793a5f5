"""The end of a training run in words and one picture (pure Python; matplotlib when installed).

Reads what the nodes wrote: ``<run_dir>/episodes.csv`` (the episode node: one row per episode, the
policy's step count, return and success; with several robots ``<run_dir>/r<i>/episodes.csv``, merged in
time) and ``<run_dir>/learner/eval.csv`` (the learner: one row per
evaluation episode inside training, with its block and weights version). Writes
``<run_dir>/learning_curve.png`` (rolling success of the episodes and each evaluation block's success) and
returns a paragraph: how long, how well the last episodes and the best evaluation block did, where the
files are, and the deploy command to run next.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if all(v not in (None, "") for k, v in r.items() if k != "human_label")]


def episode_rows(run: Path) -> tuple[list[dict], list[Path]]:
    """Every robot's episodes in the order they ended, and the files they came from."""
    files = [f for f in [run / "episodes.csv", *sorted(run.glob("r*/episodes.csv"))] if f.is_file()]
    rows = [r for f in files for r in _rows(f)]
    return sorted(rows, key=lambda r: float(r["wall_time"])), files


def _has_matplotlib() -> bool:
    import importlib.util
    return importlib.util.find_spec("matplotlib") is not None


def eval_blocks(eval_rows: list[dict]) -> list[tuple[int, float, int]]:
    """``(env_steps at the block's end, success rate, weights version)`` per evaluation block, in order."""
    blocks: dict[int, list[dict]] = {}
    for r in eval_rows:
        blocks.setdefault(int(r["block"]), []).append(r)
    return [(max(int(r["env_steps"]) for r in rs), sum(int(r["success"]) for r in rs) / len(rs),
             int(rs[-1]["weights_version"])) for _b, rs in sorted(blocks.items())]


def write_learning_curve(episodes: list[dict], blocks: list[tuple[int, float, int]], path: Path,
                         window: int = 20) -> Optional[Path]:
    """The PNG, or None when matplotlib is not installed or there is nothing to draw."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not episodes and not blocks:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if episodes:
        steps = [sum(int(e["steps"]) for e in episodes[:i + 1]) for i in range(len(episodes))]
        success = [int(e["success"]) for e in episodes]
        rolling = [sum(success[max(0, i - window + 1):i + 1]) / len(success[max(0, i - window + 1):i + 1])
                   for i in range(len(success))]
        ax.plot(steps, rolling, label=f"training episodes (rolling {window})")
    if blocks:
        ax.plot([b[0] for b in blocks], [b[1] for b in blocks], "o-", label="evaluation blocks (deterministic)")
    ax.set(xlabel="env steps", ylabel="success rate", ylim=(-0.05, 1.05))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_report(run_dir: str | Path, task: str, use_sim: bool = True, window: int = 20) -> str:
    """Write the learning curve and return the paragraph (see the module docstring)."""
    run = Path(run_dir)
    episodes, episode_files = episode_rows(run)
    blocks = eval_blocks(_rows(run / "learner" / "eval.csv"))
    png = write_learning_curve(episodes, blocks, run / "learning_curve.png", window)
    steps = sum(int(e["steps"]) for e in episodes)
    last = episodes[-window:]
    text = [f"Trained {task}: {len(episodes)} episodes, {steps} env steps."]
    if last:
        rate = sum(int(e["success"]) for e in last) / len(last)
        text.append(f"Success in the last {len(last)} episodes: {rate:.2f}.")
    if blocks:
        best = max(blocks, key=lambda b: b[1])
        text.append(f"Evaluation blocks: {len(blocks)}, the last {blocks[-1][1]:.2f}, the best {best[1]:.2f} "
                    f"(weights v{best[2]} at {best[0]} env steps, saved as learner/checkpoints/best.pt).")
    listed = ", ".join(str(f) for f in episode_files) or str(run / "episodes.csv")
    text.append(f"Files: {run / 'learner'} (checkpoints, replay, TensorBoard in tb/), {listed}"
                + (f", {png}" if png else " (no learning-curve PNG: " + ("matplotlib is not installed"
                   if not _has_matplotlib() else "no episodes or evaluations here") + ")") + ".")
    where = "--use-sim" if use_sim else "--real --robot-ip <FCI address>"
    ckpt = run / "learner" / "checkpoints" / ("best.pt" if (run / "learner" / "checkpoints" / "best.pt").exists()
                                               else "latest.pt")
    text.append(f"Next: mentor-run deploy {where} --task {task} --run-dir {run}_eval --checkpoint {ckpt} "
                "--episodes 50 --seed 7")
    return " ".join(text)
