"""The Markdown results table of a learning benchmark, from the summary.json that benchmarks/learning.py writes.

    .venv/bin/python benchmarks/summary_table.py benchmarks/results/peg_cpu/summary.json

Per config: seeds, steps to the success threshold on the seed-mean curve and per seed, final success per seed,
final-success IQM with its 95% stratified bootstrap interval and P(mentor > config) with its interval
(benchmarks/stats.py); then, for a multi-task run, the MoE diagnostics per seed. A reading of which
differences are significant follows: a P(mentor > config) interval that excludes 0.5.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _interval(ci) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def table(summary: dict) -> list[str]:
    """Markdown lines of the per-config table."""
    threshold = summary.get("threshold", 0.8)
    pct = f"{threshold:.0%}"
    lines = [f"| config | seeds | steps to {pct} (seed-mean curve) | per-seed steps to {pct} (median) | "
             f"final success per seed | final success IQM [95% CI] | P(mentor > config) [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    curves, stats = summary["configs"], summary["statistics"]["configs"]
    for name, s in stats.items():
        per_seed = s["steps_to_threshold_per_seed"]
        steps = [per_seed.get(str(i)) for i in range(len(per_seed))] if per_seed else []
        reached = [v for v in per_seed.values() if v is not None]
        median = f" ({statistics.median(reached):.0f})" if reached else ""
        mean_curve = curves[name].get("steps_to_threshold")
        p = (f"{_fmt(s['p_mentor_better'])} {_interval(s['p_mentor_better_ci95'])}"
             if "p_mentor_better" in s else "–")
        lines.append(
            f"| {name} | {s['n_seeds']} | {mean_curve if mean_curve is not None else 'not reached'} | "
            f"{', '.join('–' if v is None else str(v) for v in steps)}{median} | "
            f"{', '.join(_fmt(v) for v in s['final_success_per_seed'])} | "
            f"{_fmt(s['final_success_iqm'])} {_interval(s['final_success_iqm_ci95'])} | {p} |")
    return lines


def significance(summary: dict) -> list[str]:
    """One line per ablation: whether MENTOR's P(improvement) interval excludes 0.5."""
    out = []
    for name, s in summary["statistics"]["configs"].items():
        if "p_mentor_better_ci95" not in s:
            continue
        lo, hi = s["p_mentor_better_ci95"]
        verdict = ("significant: mentor better" if lo > 0.5 else "significant: mentor worse" if hi < 0.5
                   else "not significant (the interval contains 0.5)")
        out.append(f"- mentor vs {name}: P = {_fmt(s['p_mentor_better'])} {_interval((lo, hi))}: {verdict}")
    return out


def diagnostics(summary: dict) -> list[str]:
    out = []
    for name, d in summary.get("multi_task_diagnostics", {}).items():
        cosines = ", ".join(_fmt(v) for v in d["gradient_conflict_per_seed"])
        mean = _fmt(d["gradient_conflict_mean"])
        line = f"- {name}: gradient cosine between tasks per seed [{cosines}] (mean {mean})"
        if "specialisation_per_seed" in d:
            line += (f"; expert specialisation per seed [{', '.join(_fmt(v) for v in d['specialisation_per_seed'])}]"
                     f" (mean {_fmt(d['specialisation_mean'])})")
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("summary", type=Path, help="summary.json of a finished (or partly finished) benchmark")
    a = p.parse_args(argv)
    try:
        summary = json.loads(a.summary.read_text())
        lines = table(summary) + [""] + significance(summary)
        extra = diagnostics(summary)
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot read a benchmark summary from {a.summary}: {exc!r}", file=sys.stderr)
        return 2
    if extra:
        lines += ["", "MoE diagnostics (last training episodes of each run):"] + extra
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
