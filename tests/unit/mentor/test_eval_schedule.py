"""mentor.evaluation: the evaluation schedule, the policy's weight hold, block bookkeeping, the version cache."""
from __future__ import annotations

import pytest

from mentor.evaluation import (
    EpisodeOutcome,
    EvalBlocks,
    EvalCsv,
    EvalSchedule,
    VersionCache,
    WeightsHold,
    beats_best,
    episode_success,
)


def test_schedule_alternates_training_episodes_and_blocks():
    s = EvalSchedule(every=3, episodes=2)
    assert [s.is_eval(e) for e in range(10)] == [False] * 3 + [True] * 2 + [False] * 3 + [True] * 2
    assert [s.block(e) for e in range(10)] == [-1, -1, -1, 0, 0, -1, -1, -1, 1, 1]
    assert [e for e in range(10) if s.is_block_end(e)] == [4, 9]
    assert s.block(-1) == -1 and not s.is_eval(-1)


def test_schedule_off_and_validation():
    off = EvalSchedule(every=0, episodes=5)
    assert not any(off.is_eval(e) for e in range(50)) and off.block(7) == -1 and not off.is_block_end(4)
    with pytest.raises(ValueError, match="eval_every_episodes"):
        EvalSchedule(every=-1)
    with pytest.raises(ValueError, match="eval_episodes"):
        EvalSchedule(every=2, episodes=0)


def test_schedule_depends_on_the_episode_id_only():
    """A restarted policy node (new object) places episode 13 in the same block as before."""
    assert EvalSchedule(10, 5).block(13) == EvalSchedule(10, 5).block(13) == 0
    assert EvalSchedule(10, 5).block(27) == 1 and not EvalSchedule(10, 5).is_eval(15)


def test_weights_hold_covers_the_block_and_the_resets_inside_it():
    hold = WeightsHold(EvalSchedule(every=2, episodes=2))
    hold.on_open(0)
    assert not hold.holding
    hold.on_close(0)
    hold.on_open(2)  # block 0 starts
    assert hold.holding
    hold.on_close(2)
    assert hold.holding  # the reset between two eval episodes
    hold.on_open(3)
    hold.on_close(3)  # block end
    assert not hold.holding
    hold.on_open(6)
    hold.on_close(6)
    hold.on_open(8)  # the episode node skipped 7: a training episode starts, weights may swap again
    assert not hold.holding


def test_episode_success_prefers_the_meta():
    assert episode_success({"success": True}, 1.0) is True  # no termination: success at an earlier step
    assert episode_success({"success": False}, 0.0) is False
    assert episode_success(None, 0.0) is True and episode_success({}, 1.0) is False  # old records
    # truncated by the learner (no is_last meta): the records' own success flags decide, row 0 excluded
    assert episode_success({}, 1.0, [False, False, True, False]) is True
    assert episode_success({}, 1.0, [True, False, False]) is False


def _ep(eid, block, success, version=3, truncated=False, source="robot", n=2, ret=1.0):
    return EpisodeOutcome(source, eid, ret, success, 10, truncated, 100 + eid, True, block, n, version)


def test_blocks_complete_with_all_episodes_and_check_the_version():
    blocks = EvalBlocks()
    assert blocks.add(_ep(2, 0, True)) is None
    result = blocks.add(_ep(3, 0, False, ret=3.0))
    assert result.valid and result.success_rate == 0.5 and result.mean_return == 2.0 and result.weights_version == 3
    assert result.env_steps == 103
    assert blocks.add(_ep(6, 1, True, version=4)) is None
    mixed = blocks.add(_ep(7, 1, True, version=5))
    assert not mixed.valid and "versions [4, 5]" in mixed.reason
    blocks.add(_ep(10, 2, True))
    truncated = blocks.add(_ep(11, 2, True, truncated=True))
    assert not truncated.valid and "truncated" in truncated.reason
    training = EpisodeOutcome("robot", 12, 0.0, False, 10, False, 200)
    assert blocks.add(training) is None and not blocks.open


def test_an_overtaken_block_is_abandoned_per_source():
    blocks = EvalBlocks()
    blocks.add(_ep(2, 0, True))
    blocks.add(_ep(2, 0, True, source="r2"))
    assert blocks.add(_ep(6, 1, True)) is None  # robot skipped episode 3
    assert [(b.source, b.block, len(b.episodes)) for b in blocks.abandoned] == [("robot", 0, 1)]
    assert ("r2", 0) in blocks.open


def test_version_cache_evicts_the_oldest_unpinned():
    cache = VersionCache(keep=2)
    for v in (1, 2):
        cache.put(v, f"s{v}")
    assert cache.pin(1, ("robot", 0)) and not cache.pin(9, ("robot", 5))
    for v in (3, 4, 5):
        cache.put(v, f"s{v}")
    assert cache.versions() == [1, 4, 5] and cache.get(1) == "s1" and cache.get(2) is None
    cache.unpin(("robot", 0))
    cache.put(6, "s6")
    assert cache.versions() == [5, 6]
    with pytest.raises(ValueError):
        VersionCache(0)


def test_eval_csv_appends_rows_under_one_header(tmp_path):
    csv = EvalCsv(tmp_path / "eval.csv")
    csv.append(_ep(2, 0, True))
    csv.append(_ep(3, 0, False))
    lines = (tmp_path / "eval.csv").read_text().splitlines()
    assert lines[0] == "env_steps,source,episode_id,weights_version,block,success,return"
    assert lines[1:] == ["102,robot,2,3,0,1,1.000000", "103,robot,3,3,0,0,1.000000"]


def test_ties_go_to_the_newer_block():
    assert beats_best(0.4, None) and beats_best(0.6, 0.6) and not beats_best(0.4, 0.6)
