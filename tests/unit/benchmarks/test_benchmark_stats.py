"""IQM, stratified bootstrap intervals and probability of improvement (benchmarks/stats.py)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from benchmarks.stats import iqm, probability_of_improvement, probability_of_improvement_ci, stratified_bootstrap_ci  # noqa: E402


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0]) == pytest.approx(np.mean([2.0, 3.0, 4.0, 5.0]))
    assert iqm([0.2, 0.4, 0.9]) == pytest.approx(0.5)  # 3 runs: 25% of 3 rounds to 0 trimmed
    with pytest.raises(ValueError):
        iqm([np.nan, 1.0])


def test_bootstrap_interval_covers_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.3, 0.9, size=(10, 2))
    lo, hi = stratified_bootstrap_ci(scores, reps=500, seed=1)
    assert lo <= iqm(scores) <= hi and hi - lo > 0
    assert (lo, hi) == stratified_bootstrap_ci(scores, reps=500, seed=1)
    assert stratified_bootstrap_ci(np.full((4, 1), 0.7), reps=50) == pytest.approx((0.7, 0.7))


def test_probability_of_improvement_counts_pairs_and_ties():
    assert probability_of_improvement([1.0, 1.0], [0.0, 0.0]) == 1.0
    assert probability_of_improvement([0.5, 0.5], [0.5, 0.5]) == 0.5
    assert probability_of_improvement([0.2, 0.8], [0.5, 0.5]) == 0.5
    assert probability_of_improvement([[1.0, 0.0]], [[0.0, 1.0]]) == 0.5  # averaged over tasks
    lo, hi = probability_of_improvement_ci([0.9, 0.8, 1.0], [0.1, 0.2, 0.3], reps=200)
    assert lo == hi == 1.0
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement(np.zeros((2, 2)), np.zeros((2, 1)))
