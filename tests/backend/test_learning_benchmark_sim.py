"""The learning benchmark on the multi-task sim peg insertion (directly stepped MuJoCo backend, real
rendering), at a tiny budget: each run leaves MoE diagnostics per peg shape, the summary combines them."""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("mujoco")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import learning  # noqa: E402
from robot_envs.tasks.peg_insertion import SHAPES  # noqa: E402

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def test_multi_task_peg_runs_report_expert_usage_and_gradient_conflict_per_shape(tmp_path):
    bench = learning.LearningBenchmarkConfig(
        task="peg_insertion", out=tmp_path / "out", configs=("mentor", "no_moe"), seeds=(0,), steps=60,
        eval_every=60, eval_episodes=1, replay_capacity=2000, checkpoint_every=0,
        agent_overrides={"num_seed_frames": 40, "num_expl_steps": 10, "batch_size": 8},
        env_overrides={"episode_length": 20})  # 10 agent steps per episode: 6 training episodes per run
    summary = learning.run_benchmark(bench, log=lambda _msg: None)
    mentor = json.loads((learning.run_dir(bench, "mentor", 0) / "diagnostics.json").read_text())
    mlp = json.loads((learning.run_dir(bench, "no_moe", 0) / "diagnostics.json").read_text())
    for diag in (mentor, mlp):
        gc = diag["gradient_conflict"]
        assert set(gc["tasks"]) <= set(SHAPES) and len(gc["tasks"]) >= 2  # 6 episodes drew at least 2 shapes
        m = np.asarray(gc["matrix"])
        assert m.shape == (len(gc["tasks"]),) * 2 and np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)
        assert np.all(np.abs(m) <= 1.0) and np.isfinite(gc["mean"])
    usage = mentor["expert_usage_by_task"]  # the MoE actor only
    assert "expert_usage_by_task" not in mlp and set(usage) == set(mentor["gradient_conflict"]["tasks"])
    for row in usage.values():
        assert len(row) == 4 and abs(sum(row) - 1.0) < 1e-5 and min(row) >= 0.0  # tiny preset: 4 experts
    diag_summary = summary["multi_task_diagnostics"]
    assert diag_summary["mentor"]["gradient_conflict_per_seed"] == [mentor["gradient_conflict"]["mean"]]
    assert 0.0 <= diag_summary["mentor"]["specialisation_mean"] <= 1.0
    assert "specialisation_mean" not in diag_summary["no_moe"]


def test_usage_specialisation_is_zero_for_equal_rows_and_one_for_disjoint_rows():
    assert learning.usage_specialisation({"a": [0.5, 0.5, 0], "b": [0.5, 0.5, 0]}) == 0.0
    assert learning.usage_specialisation({"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 1]}) == 1.0
    assert learning.usage_specialisation({"a": [1.0, 0.0]}) != learning.usage_specialisation({"a": [1.0, 0.0]})
