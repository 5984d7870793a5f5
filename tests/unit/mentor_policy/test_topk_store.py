"""On-disk top-K snapshot store: ranking, persistence, seeding, crash safety."""
import json

import pytest
import torch

from mentor_policy.checkpoint import CheckpointError
from mentor_policy.topk_store import TopKStore


def _state(v):
    return {"actor": {"w": torch.full((3,), float(v))}}


def _values(store):
    return [float(s["actor"]["w"][0]) for s in store.load_all()]


def test_keeps_best_k_and_replaces_lowest_only_with_higher(tmp_path):
    store = TopKStore(tmp_path / "s", 3)
    for r in (1.0, 5.0, 3.0):
        assert store.offer(r, _state(r))
    assert not store.offer(0.5, _state(0.5))  # lower than the lowest: rejected
    assert not store.offer(1.0, _state(1.0))  # equal to the lowest: rejected
    assert store.offer(4.0, _state(4.0))  # replaces 1.0
    assert store.returns == [5.0, 4.0, 3.0]
    assert _values(store) == [5.0, 4.0, 3.0]
    files = sorted(p.name for p in (tmp_path / "s").glob("snap_*.pt"))
    assert len(files) == 3
    with pytest.raises(ValueError, match="finite"):
        store.offer(float("nan"), _state(0))


def test_survives_restart(tmp_path):
    store = TopKStore(tmp_path, 2)
    store.offer(2.0, _state(2), step=10)
    store.offer(7.0, _state(7), step=20)
    reopened = TopKStore(tmp_path, 2)
    assert reopened.returns == [7.0, 2.0] and _values(reopened) == [7.0, 2.0]
    index = json.loads((tmp_path / "index.json").read_text())
    assert [e["step"] for e in index["entries"]] == [20, 10]


def test_seed_from_other_run(tmp_path):
    old = TopKStore(tmp_path / "old", 3)
    for r in (1.0, 2.0, 3.0):
        old.offer(r, _state(r))
    new = TopKStore(tmp_path / "new", 2)
    new.offer(2.5, _state(2.5))
    assert new.seed_from(tmp_path / "old") == 1  # 3.0 fills the store; 2.0 and 1.0 do not beat 2.5
    assert new.returns == [3.0, 2.5]
    with pytest.raises(ValueError, match="own directory"):
        new.seed_from(tmp_path / "new")


def test_interrupted_write_leaves_store_readable(tmp_path):
    store = TopKStore(tmp_path, 3)
    store.offer(1.0, _state(1))
    store.offer(2.0, _state(2))
    # simulate a crash mid-save: a leftover temp file and a truncated snapshot the index does not name
    (tmp_path / ".snap_dead.pt.x1y2.tmp").write_bytes(b"partial")
    good = next(tmp_path.glob("snap_*.pt")).read_bytes()
    (tmp_path / "snap_truncated.pt").write_bytes(good[: len(good) // 3])
    (tmp_path / ".index.json.abc.tmp").write_text("{\"entr")
    reopened = TopKStore(tmp_path, 3)
    assert reopened.returns == [2.0, 1.0] and _values(reopened) == [2.0, 1.0]
    assert not (tmp_path / "snap_truncated.pt").exists()
    assert not list(tmp_path.glob("*.tmp"))
    assert reopened.offer(3.0, _state(3)) and len(reopened) == 3


def test_corrupt_index_or_missing_snapshot_is_a_clear_error(tmp_path):
    store = TopKStore(tmp_path, 2)
    store.offer(1.0, _state(1))
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="index"):
        TopKStore(tmp_path, 2)
    (tmp_path / "index.json").write_text(json.dumps({"entries": [{"file": "snap_gone.pt", "return": 1.0}]}))
    with pytest.raises(CheckpointError, match="snap_gone.pt"):
        TopKStore(tmp_path, 2)


def test_smaller_k_on_reopen_keeps_best(tmp_path):
    store = TopKStore(tmp_path, 3)
    for r in (1.0, 2.0, 3.0):
        store.offer(r, _state(r))
    small = TopKStore(tmp_path, 2)
    assert small.returns == [3.0, 2.0]
    assert len(list(tmp_path.glob("snap_*.pt"))) == 2
    assert TopKStore(tmp_path, 2).returns == [3.0, 2.0]


def test_in_memory_store():
    store = TopKStore(None, 2)
    state = _state(1)
    store.offer(1.0, state)
    state["actor"]["w"].fill_(9.0)  # the store keeps its own copy
    assert _values(store) == [1.0]
