"""mentor.episode_recorder (pure Python): step records, episode ends, success, truncation, restarts."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mentor.episode_recorder import EpisodeRecorder, deploy_summary, write_deploy_summary
from mentor.evaluation import EvalSchedule


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[dict, dict]] = []
        self.closed: list[tuple[dict, bool]] = []


def _recorder(sink: Sink, terminate: bool = False, length: int = 3, schedule=EvalSchedule(0, 1), **kw):
    task = SimpleNamespace(episode_length=length, terminate_on_success=terminate)
    return EpisodeRecorder(task, 2, schedule, False, lambda r, m: sink.records.append((r, m)),
                           lambda s, end: sink.closed.append((s, end)), **kw)


def _run(rec: EpisodeRecorder, eid: int, rewards: list[tuple[float, bool]]) -> None:
    """Tick until the episode ends; ``rewards[t]`` is what the episode node reports for observation t."""
    assert rec.follow("RUNNING", eid)
    for t, (r, s) in enumerate(rewards):
        image = np.full((3, 2, 2), t, np.uint8)
        if not rec.step(image, np.zeros(4, np.float32), image.transpose(1, 2, 0), r, s):
            return
        rec.commit(np.full(2, 0.1 * t, np.float32), intervention=t == 1)
    raise AssertionError("the episode did not end")


def test_a_horizon_episode_records_every_step_and_counts_success_at_any_step():
    sink = Sink()
    rec = _recorder(sink)
    _run(rec, 0, [(5.0, True), (1.0, False), (2.0, True), (0.5, False)])  # length 3: records t = 0..3
    records = [r for r, _m in sink.records]
    metas = [m for _r, m in sink.records]
    assert [m["t"] for m in metas] == [0, 1, 2, 3] and [r["is_last"] for r in records] == [False] * 3 + [True]
    assert records[0]["reward"] == 0.0 and records[0]["is_first"]  # the first observation earns nothing
    np.testing.assert_allclose(records[2]["action"], [0.1, 0.1])  # the action that led to observation 2
    assert [r["intervention"] for r in records] == [False, False, True, False]
    assert all(r["discount"] == 1.0 for r in records)  # success does not terminate: a fixed horizon
    assert metas[-1]["success"] is True and metas[-1]["truncated"] is False
    assert [r["success"] for r in records] == [False, False, True, False]  # the first observation never counts
    assert metas[-1]["episode_return"] == 3.5 and metas[-1]["episode_steps"] == 3  # what the learner reports
    summary, request_end = sink.closed[0]
    assert summary == {"episode_id": 0, "steps": 3, "return": 3.5, "success": True, "truncated": False,
                       "eval": False} and request_end


def test_success_on_the_first_observation_is_no_success():
    sink = Sink()
    rec = _recorder(sink)
    _run(rec, 0, [(1.0, True), (0.0, False), (0.0, False), (0.0, False)])
    assert sink.closed[0][0]["success"] is False and sink.closed[0][0]["return"] == 0.0


def test_a_terminating_success_ends_the_episode_with_discount_zero():
    sink = Sink()
    rec = _recorder(sink, terminate=True, length=10)
    _run(rec, 0, [(0.0, False), (0.0, False), (10.0, True)])
    last, meta = sink.records[-1]
    assert last["is_last"] and last["discount"] == 0.0 and meta["t"] == 2 and meta["success"]


def test_the_episode_node_moving_on_truncates_and_closes_the_learners_copy():
    sink = Sink()
    rec = _recorder(sink, length=10)
    assert rec.follow("RUNNING", 0)
    for t in range(2):
        image = np.zeros((3, 2, 2), np.uint8)
        assert rec.step(image, np.zeros(4, np.float32), image, 0.5, False)
        rec.commit(np.zeros(2, np.float32), False)
    assert not rec.follow("RESETTING", 1)  # the episode node restarted and is on to episode 1
    last, meta = sink.records[-1]
    assert last["is_last"] and not last["is_first"] and last["reward"] == 0.0 and meta["truncated"]
    assert sink.closed[0][0]["truncated"] and sink.closed[0][1] is False  # no episode/end request
    assert not rec.follow("RUNNING", 0)  # an episode it closed is never reopened


def test_a_restarted_node_truncates_the_episode_it_was_in_and_asks_for_a_new_one():
    sink = Sink()
    old = {"image": np.zeros((3, 2, 2), np.uint8), "proprio": np.zeros(4, np.float32), "action": np.zeros(2),
           "reward": 0.3, "discount": 1.0, "is_first": False, "is_last": False, "intervention": False}
    rec = _recorder(sink, length=10, resume=(7, 4, old))
    assert not rec.follow("RUNNING", 7)
    record, meta = sink.records[0]
    assert record["is_last"] and meta == {"episode_id": 7, "t": 5, "eval": False, "eval_block": -1,
                                          "success": False, "truncated": True, "episode_return": 0.0,
                                          "episode_steps": 5, "eval_episodes": 0}
    assert sink.closed[0][1] is True  # it asks the episode node for the next episode
    assert not rec.follow("RUNNING", 7) and rec.follow("RUNNING", 8)


def test_evaluation_episodes_are_marked_and_deploy_summaries_skip_truncated_ones(tmp_path):
    sink = Sink()
    rec = _recorder(sink, schedule=EvalSchedule(1, 2))
    _run(rec, 0, [(0.0, False)] * 4)
    _run(rec, 1, [(0.0, False), (1.0, True), (0.0, False), (0.0, False)])
    metas = [m for _r, m in sink.records]
    assert {m["eval"] for m in metas if m["episode_id"] == 1} == {True} and metas[-1]["eval_episodes"] == 2
    assert metas[-1]["eval_block"] == 0 and sink.closed[1][0]["eval"]
    done = rec.done + [{"episode_id": 2, "steps": 1, "return": 9.0, "success": True, "truncated": True, "eval": True}]
    summary = write_deploy_summary(tmp_path / "out" / "summary.json", done, "best.pt")
    assert summary == deploy_summary(done, "best.pt")
    assert summary["episodes"] == 3 and summary["success_rate"] == 0.5 and summary["mean_return"] == 0.5
    assert (tmp_path / "out" / "summary.json").is_file()


def test_misuse_is_an_error_not_a_silent_record():
    rec = _recorder(Sink())
    with pytest.raises(RuntimeError, match="without an open episode"):
        rec.step(np.zeros((3, 2, 2), np.uint8), np.zeros(4), np.zeros((2, 2, 3)), 0.0, False)
    with pytest.raises(RuntimeError, match="commit"):
        rec.commit(np.zeros(2), False)
