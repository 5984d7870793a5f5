"""The benchmark tools on tiny inputs: the learning-curve benchmark (toy task) and the run summariser."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from benchmarks import learning, run_summary  # noqa: E402


def _bench(tmp_path: Path, **kw) -> learning.LearningBenchmarkConfig:
    settings = dict(task="toy", out=tmp_path / "out", configs=("mentor", "drqv2"), seeds=(0,), steps=60,
                    eval_every=30, eval_episodes=1, replay_capacity=1000,
                    agent_overrides={"num_seed_frames": 20, "num_expl_steps": 10, "batch_size": 8})
    settings.update(kw)
    return learning.LearningBenchmarkConfig(**settings)


def test_learning_benchmark_writes_curves_and_resumes(tmp_path):
    bench = _bench(tmp_path)
    summary = learning.run_benchmark(bench, log=lambda _msg: None)
    assert set(summary["configs"]) == {"mentor", "drqv2"}
    with open(bench.out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted({(r["config"], int(r["step"])) for r in rows}) == [
        ("drqv2", 0), ("drqv2", 30), ("drqv2", 60), ("mentor", 0), ("mentor", 30), ("mentor", 60)]
    assert all(0.0 <= float(r["success_rate"]) <= 1.0 for r in rows)
    for name in ("success_rate.png", "eval_return.png", "summary.json", "benchmark.json"):
        assert (bench.out / name).stat().st_size > 0
    done = json.loads((bench.out / "runs" / "mentor_seed0" / "done.json").read_text())
    assert done["num_updates"] > 0 and done["steps"] >= 60
    logged: list[str] = []
    learning.run_benchmark(bench, log=logged.append)  # finished runs are reused, not retrained
    assert sum("finished earlier" in line for line in logged) == 2
    # another budget in the same directory would mix two benchmarks: refused, nothing run; a narrower
    # selection of configs and seeds is the same set
    with pytest.raises(SystemExit, match=r"other settings \(steps: 60 -> 90"):
        learning.run_benchmark(_bench(tmp_path, steps=90), log=lambda _msg: None)
    assert learning.run_benchmark(_bench(tmp_path, configs=("mentor",)), log=lambda _msg: None)["configs"]


class _KilledAt:
    """Wraps an env: its ``step`` raises (a stand-in for kill -9) once ``limit`` steps were taken."""

    def __init__(self, env, limit: int) -> None:
        self.env, self.spec, self.limit, self.taken = env, env.spec, limit, 0

    def reset(self):
        return self.env.reset()

    def step(self, action):
        self.taken += 1
        if self.taken > self.limit:
            raise RuntimeError("injected kill")
        return self.env.step(action)

    def close(self) -> None:
        self.env.close() if hasattr(self.env, "close") else None


def test_a_killed_run_resumes_from_its_mid_run_checkpoint(tmp_path, monkeypatch):
    # toy episodes: 30 env steps = 15 agent steps (action repeat 2); killed at agent step 50 + a few
    bench = _bench(tmp_path, configs=("mentor",), steps=120, checkpoint_every=30)
    real_make_env = learning.make_env
    monkeypatch.setattr(learning, "make_env", lambda task, seed, *a, **kw: (
        _KilledAt(real_make_env(task, seed, *a, **kw), 2 * 50) if seed == 0 else real_make_env(task, seed, *a, **kw)))
    with pytest.raises(RuntimeError, match="injected kill"):
        learning.run_one(bench, "mentor", 0, log=lambda _msg: None)
    rdir = learning.run_dir(bench, "mentor", 0)
    saved = learning.load_resume(rdir)
    assert saved is not None and saved["part"] == 0 and saved["progress"]["steps"] == 30
    assert [e[0] for e in saved["progress"]["evals"]] == [30] and len(saved["eval_times"]) == 2
    stored = len(list((rdir / "replay").glob("ep_*.npz")))
    assert stored > saved["replay_episodes"]  # episodes finished after the checkpoint: rolled back on resume
    monkeypatch.setattr(learning, "make_env", real_make_env)
    logged: list[str] = []
    rows = learning.run_one(bench, "mentor", 0, log=logged.append)
    assert any(f"resuming at step {saved['progress']['steps']}" in line for line in logged), logged
    assert [r["step"] for r in rows][0] == 0 and rows[-1]["step"] >= 120
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    assert all(0 <= r["success_rate"] <= 1 for r in rows)
    done = json.loads((rdir / "done.json").read_text())
    assert done["parts"] == 2 and done["steps"] >= 120 and done["num_updates"] > saved["progress"]["num_updates"]
    assert not (rdir / learning.RESUME_FILE).exists() and not (rdir / "replay").exists()


def test_a_corrupt_mid_run_checkpoint_restarts_the_run(tmp_path):
    bench = _bench(tmp_path, configs=("mentor",))
    rdir = learning.run_dir(bench, "mentor", 0)
    rdir.mkdir(parents=True)
    (rdir / learning.RESUME_FILE).write_bytes(b"not a checkpoint")
    logged: list[str] = []
    rows = learning.run_one(bench, "mentor", 0, log=logged.append)
    assert any("starts again from zero" in line for line in logged), logged
    assert json.loads((rdir / "done.json").read_text())["parts"] == 1 and rows[-1]["step"] >= 60


def test_learning_benchmark_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown configs"):
        _bench(tmp_path, configs=("mentor", "sac"))
    with pytest.raises(ValueError, match="multiple of eval_every"):
        _bench(tmp_path, steps=50)
    with pytest.raises(ValueError, match="checkpoint_every"):
        _bench(tmp_path, checkpoint_every=-1)
    with pytest.raises(ValueError, match="sim robot tasks"):
        learning.make_env("toy", 0, {}, runtime={"camera_timeout_s": 10.0})
    assert learning.parse_overrides(["lr=1e-4", "use_moe=false"]) == {"lr": 1e-4, "use_moe": False}
    with pytest.raises(ValueError, match="key=value"):
        learning.parse_overrides(["lr"])


def test_run_summary_bins_the_tensorboard_episodes(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "run"
    for start, successes in ((0, [0, 0, 1]), (300, [1, 1])):  # two learner lifetimes = two events files
        writer = SummaryWriter(str(run / "learner" / "tb"), filename_suffix=f".{start}")
        for i, success in enumerate(successes):
            step = start + 100 * i
            writer.add_scalar("episode/success", float(success), step)
            writer.add_scalar("episode/return", 2.0 * success, step)
        writer.add_scalar("train/dormant_ratio", 0.25, 7)
        writer.close()
    out = tmp_path / "summary"
    assert run_summary.main(["--run-dir", str(run), "--bin-steps", "200", "--out", str(out)]) == 0
    text = (out / "summary.md").read_text()
    assert "| 0-200 | 2 | 0.00 | 0.000 |" in text
    assert "| 200-400 | 2 | 1.00 | 2.000 |" in text  # steps 200 (success) and 300 (success)
    assert "| 400-600 | 1 | 1.00 | 2.000 |" in text
    assert "`train/dormant_ratio`: update 7, 0.25" in text
    assert (out / "success_rate.png").stat().st_size > 0
    assert len((out / "episodes.csv").read_text().splitlines()) == 1 + 5


def test_run_summary_explains_a_missing_log(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard events"):
        run_summary.main(["--run-dir", str(tmp_path)])


def test_summary_table_reports_each_config_and_which_differences_are_significant(tmp_path, capsys):
    from benchmarks.summary_table import main as summary_table
    stats = {"mentor": {"n_seeds": 2, "final_success_per_seed": [1.0, 0.5], "final_success_iqm": 0.75,
                        "final_success_iqm_ci95": [0.5, 1.0], "steps_to_threshold_per_seed": {"0": 400, "1": None}},
             "drqv2": {"n_seeds": 2, "final_success_per_seed": [0.0, 0.0], "final_success_iqm": 0.0,
                       "final_success_iqm_ci95": [0.0, 0.0], "steps_to_threshold_per_seed": {"0": None, "1": None},
                       "p_mentor_better": 0.9, "p_mentor_better_ci95": [0.6, 1.0]}}
    summary = {"threshold": 0.8, "configs": {"mentor": {"steps_to_threshold": 400}, "drqv2": {}},
               "statistics": {"configs": stats}}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    assert summary_table([str(path)]) == 0
    out = capsys.readouterr().out
    assert "| mentor | 2 | 400 | 400, – (400) | 1.00, 0.50 | 0.75 [0.50, 1.00] | – |" in out
    assert "| drqv2 | 2 | not reached | –, – | 0.00, 0.00 | 0.00 [0.00, 0.00] | 0.90 [0.60, 1.00] |" in out
    assert "mentor vs drqv2: P = 0.90 [0.60, 1.00]: significant: mentor better" in out
    path.write_text("{not json")
    assert summary_table([str(path)]) == 2 and "cannot read a benchmark summary" in capsys.readouterr().err
