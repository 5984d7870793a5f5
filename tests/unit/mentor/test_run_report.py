"""mentor.run_report: the end-of-run paragraph and learning curve from the files the nodes write."""
from mentor.run_report import eval_blocks, run_report


def _write(tmp_path, episodes, evals, best=True):
    (tmp_path / "learner" / "checkpoints").mkdir(parents=True)
    if best:
        (tmp_path / "learner" / "checkpoints" / "best.pt").write_bytes(b"x")
    rows = "".join(f"{i},50,{r},{s},{1 - s},,0\n" for i, (r, s) in enumerate(episodes))
    (tmp_path / "episodes.csv").write_text("episode_id,steps,return,success,truncated,human_label,wall_time\n" + rows)
    rows = "".join(f"{st},robot,{i},{v},{b},{s},1.0\n" for i, (st, v, b, s) in enumerate(evals))
    (tmp_path / "learner" / "eval.csv").write_text("env_steps,source,episode_id,weights_version,block,success,return\n"
                                                   + rows)


def test_the_report_states_progress_the_best_block_and_the_next_command(tmp_path):
    _write(tmp_path, [(1.0, 0)] * 10 + [(40.0, 1)] * 10, [(500, 3, 0, 0), (550, 3, 0, 1), (1000, 7, 1, 1),
                                                          (1050, 7, 1, 1)])
    assert eval_blocks([{"env_steps": "5", "block": "0", "success": "1", "weights_version": "2"}]) == [(5, 1.0, 2)]
    text = run_report(tmp_path, "reach", window=10)
    assert "20 episodes, 1000 env steps" in text and "last 10 episodes: 1.00" in text
    assert "the last 1.00, the best 1.00 (weights v7 at 1050 env steps" in text
    assert "best.pt --episodes 50" in text and "--use-sim" in text
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000


def test_without_evaluations_the_report_points_at_latest(tmp_path):
    _write(tmp_path, [(1.0, 0)] * 3, [], best=False)
    text = run_report(tmp_path, "peg_insertion_real", use_sim=False)
    assert "Evaluation blocks" not in text and "latest.pt" in text and "--real --robot-ip" in text
