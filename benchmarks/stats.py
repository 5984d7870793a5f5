"""Aggregate statistics for few-seed RL comparisons (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"): interquartile mean, stratified bootstrap confidence intervals and the
probability of improvement. Written with numpy + scipy (``rliable`` is not in our pins).

Scores are arrays of shape ``(runs, tasks)``: one value per seed (row) and task (column); a single-task
benchmark passes ``(runs, 1)``. Bootstrap resampling draws runs with replacement within each task
(stratified), ``reps`` times, with a seeded generator: the same input gives the same interval.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats as sps


def _as_scores(scores) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"scores must be (runs, tasks) with at least one run, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores must be finite")
    return x


def iqm(scores) -> float:
    """Interquartile mean over all runs and tasks: the mean of the middle 50% (25% trimmed each side)."""
    return float(sps.trim_mean(_as_scores(scores).reshape(-1), proportiontocut=0.25))


def stratified_bootstrap_ci(scores, statistic: Callable[[np.ndarray], float] = iqm, reps: int = 2000,
                            confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic`` under resampling runs with replacement within each task."""
    x = _as_scores(scores)
    if not 0 < confidence < 1 or reps < 1:
        raise ValueError(f"need 0 < confidence < 1 and reps >= 1, got {confidence}, {reps}")
    rng = np.random.default_rng(seed)
    n, tasks = x.shape
    values = np.empty(reps)
    for r in range(reps):
        idx = rng.integers(0, n, size=(n, tasks))
        values[r] = statistic(np.take_along_axis(x, idx, axis=0))
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1.0 - alpha))


def probability_of_improvement(x_scores, y_scores) -> float:
    """P(X > Y): per task, the chance that a random run of X scores above a random run of Y (ties count
    1/2, the Mann-Whitney U statistic over n_x * n_y), averaged over tasks."""
    x, y = _as_scores(x_scores), _as_scores(y_scores)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"X and Y must cover the same tasks, got {x.shape[1]} and {y.shape[1]}")
    per_task = []
    for t in range(x.shape[1]):
        diff = x[:, t][:, None] - y[:, t][None, :]
        per_task.append(np.mean((diff > 0) + 0.5 * (diff == 0)))
    return float(np.mean(per_task))


def probability_of_improvement_ci(x_scores, y_scores, reps: int = 2000, confidence: float = 0.95,
                                  seed: int = 0) -> tuple[float, float]:
    """Stratified bootstrap interval of :func:`probability_of_improvement` (X and Y resampled independently)."""
    x, y = _as_scores(x_scores), _as_scores(y_scores)
    rng = np.random.default_rng(seed)
    values = np.empty(reps)
    for r in range(reps):
        xi = np.take_along_axis(x, rng.integers(0, x.shape[0], size=x.shape), axis=0)
        yi = np.take_along_axis(y, rng.integers(0, y.shape[0], size=y.shape), axis=0)
        values[r] = probability_of_improvement(xi, yi)
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1.0 - alpha))
