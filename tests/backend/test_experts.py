"""Scripted experts on the directly stepped MuJoCo backend (real physics and rendering): each solves its task,
and the recorder writes demonstrations the learner's demo buffer loads."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("mujoco")

from robot_envs.env import EnvConfig, make  # noqa: E402
from robot_envs.experts import new_expert, record_demos  # noqa: E402

pytestmark = pytest.mark.sim


def _expert_succeeds(task: str, episodes: int, **overrides) -> list[bool]:
    out = []
    with make(task, backend="mujoco", env_config=EnvConfig(seed=3), **overrides) as env:
        for _ in range(episodes):
            env.reset()
            expert, success, done = new_expert(task), False, False
            while not done:
                _obs, _r, terminated, truncated, info = env.step(expert(env))
                success, done = success or info["success"], terminated or truncated
            out.append(success)
    return out


def test_reach_and_multi_task_peg_experts_succeed():
    assert all(_expert_succeeds("reach", 2))
    assert all(_expert_succeeds("peg_insertion", 3))  # one shape drawn per episode


@pytest.mark.slow
def test_push_expert_succeeds():
    assert any(_expert_succeeds("push", 2, episode_length=100))


def test_recorded_demonstrations_are_marked_and_seed_a_demo_buffer(tmp_path):
    from mentor_policy.replay import ReplayBuffer, ReplayConfig, load_episode_file, seed_episodes
    res = record_demos("reach", 2, str(tmp_path / "demos"), seed=1, log=lambda _m: None)
    assert res["episodes"] == 2 and res["successes"] == 2 and res["transitions"] == 100
    files = sorted((tmp_path / "demos").glob("ep_*.npz"))
    with make("reach", backend="mujoco") as env:
        spec = env.spec
    ep = load_episode_file(files[0], spec)
    assert len(files) == 2 and ep["intervention"][1:].all() and ep["reward"].max() > 0
    buffer = ReplayBuffer(tmp_path / "learner_demos", ReplayConfig(capacity=1000, fsync=False), spec)
    assert seed_episodes(buffer, tmp_path / "demos", spec, "demo") == 2 and buffer.num_transitions == 100
    assert np.isfinite(buffer.sample(4)["reward"]).all()
    with pytest.raises(ValueError, match="no scripted expert"):
        new_expert("golf_real")


def test_the_learning_benchmark_trains_with_a_demo_buffer(tmp_path):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import learning
    record_demos("reach", 1, str(tmp_path / "demos"), seed=2, log=lambda _m: None, episode_length=20)
    bench = learning.LearningBenchmarkConfig(
        task="reach", out=tmp_path / "out", configs=("mentor",), seeds=(0,), steps=40, eval_every=40,
        eval_episodes=1, replay_capacity=2000, checkpoint_every=20, demo_dir=str(tmp_path / "demos"),
        agent_overrides={"num_seed_frames": 20, "num_expl_steps": 10, "batch_size": 8},
        env_overrides={"episode_length": 20})
    rows = learning.run_one(bench, "mentor", 0, log=lambda _m: None)
    assert rows[-1]["step"] >= 40 and (learning.run_dir(bench, "mentor", 0) / "done.json").is_file()
    assert not (learning.run_dir(bench, "mentor", 0) / "demos").exists()  # removed with the replay at the end
    with pytest.raises(ValueError, match="demo_dir"):
        learning.LearningBenchmarkConfig(task="reach", out=tmp_path / "x", demo_dir=str(tmp_path / "missing"))
