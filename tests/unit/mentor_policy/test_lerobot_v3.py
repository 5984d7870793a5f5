"""LeRobotDataset v3.0 export of episode stores, checked against the format's documented layout, and the
import back into an episode store (numbers exactly, images through H.264)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pytest.importorskip("av")
import pyarrow.parquet as pq  # noqa: E402

from mentor_policy.lerobot_v3 import (  # noqa: E402
    DatasetError,
    ExportConfig,
    export_dataset,
    import_dataset,
    import_into,
)
from mentor_policy.replay import ReplayBuffer, ReplayConfig, load_episode_file  # noqa: E402
from mentor_policy.specs import EnvSpec  # noqa: E402

SPEC = EnvSpec(frame_channels=6, image_size=(32, 48), proprio_dim=4, action_dim=3)
EPISODE_COLUMNS = {"episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                   "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index"}
VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


def _episode(rng, n: int, terminated: bool) -> dict:
    t = np.arange(n)
    image = np.zeros((n, 6, 32, 48), np.uint8)  # smooth content (a moving bright square): what a codec keeps
    for i in range(n):
        image[i, :, 8:20, 4 + i % 20:16 + i % 20] = 200
        image[i, 3:] //= 2
    action = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    action[0] = 0
    reward = rng.uniform(0, 1, n).astype(np.float32)
    reward[0] = 0
    discount = np.ones(n, np.float32)
    discount[-1] = 0.0 if terminated else 1.0
    return {"image": image, "proprio": rng.uniform(-1, 1, (n, 4)).astype(np.float32), "action": action,
            "reward": reward, "discount": discount, "intervention": (t % 3 == 1), "success": t >= n - 2,
            "weights_version": t // 4}


@pytest.fixture()
def store(tmp_path):
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(tmp_path / "replay", ReplayConfig(capacity=1000, fsync=False), SPEC)
    for i, (n, term) in enumerate(((9, False), (12, True), (7, False))):
        buf.add_episode(_episode(rng, n, term), key=f"robot-ep{i}")
    return tmp_path / "replay"


def test_export_writes_the_documented_v3_layout(store, tmp_path):
    out = tmp_path / "ds"
    report = export_dataset([store], out, ExportConfig(fps=10, task="reach the target", cameras=("front", "side")),
                            log=lambda _m: None)
    assert report["episodes"] == 3 and report["frames"] == 9 + 12 + 7 and report["megabytes"] > 0
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["total_frames"] == 28
    assert info["total_episodes"] == 3 and info["splits"] == {"train": "0:3"}
    for key in ("observation.images.front", "observation.images.side"):
        assert info["features"][key]["dtype"] == "video" and info["features"][key]["shape"] == [32, 48, 3]
        assert (out / info["video_path"].format(video_key=key, chunk_index=0, file_index=0)).is_file()
    assert info["features"]["observation.state"]["shape"] == [4] and info["features"]["action"]["shape"] == [3]
    data = pq.read_table(out / info["data_path"].format(chunk_index=0, file_index=0))
    assert data.num_rows == 28
    # the columns of every non-video feature, with the declared types
    assert {k for k, f in info["features"].items() if f["dtype"] != "video"} == set(data.column_names)
    assert data.schema.field("action").type == pa.list_(pa.float32(), 3)
    assert data.schema.field("index").type == pa.int64() and data.schema.field("next.done").type == pa.bool_()
    rows = data.to_pydict()
    assert rows["index"] == list(range(28)) and rows["episode_index"][:9] == [0] * 9
    assert rows["frame_index"][9:12] == [0, 1, 2] and rows["timestamp"][10] == pytest.approx(0.1)
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert EPISODE_COLUMNS <= set(episodes[0])
    assert all(f"videos/observation.images.front/{c}" in episodes[0] for c in VIDEO_COLUMNS)
    assert [(e["dataset_from_index"], e["dataset_to_index"], e["length"]) for e in episodes] == [
        (0, 9, 9), (9, 21, 12), (21, 28, 7)]
    assert episodes[1]["videos/observation.images.side/from_timestamp"] == pytest.approx(0.9)
    assert episodes[0]["tasks"] == ["reach the target"]
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert tasks.column("__index_level_0__").to_pylist() == ["reach the target"]  # the pandas index: task strings
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert len(stats["action"]["mean"]) == 3 and stats["action"]["count"] == [28]
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    # the step semantics: frame t's action is the one taken at o_t; the last transition is done/terminated
    src = [load_episode_file(p, SPEC) for p in sorted(store.glob("ep_*.npz"))]
    np.testing.assert_array_equal(np.array(rows["action"][9:20]), src[1]["action"][1:])
    assert rows["next.terminated"][19] and not rows["next.truncated"][19] and rows["next.done"][19]
    assert rows["next.truncated"][7] and rows["is_terminal_observation"][8] and rows["next.done"][8]
    assert rows["weights_version"][9:14] == [0, 0, 0, 1, 1]  # the version of each frame's action


def test_import_restores_the_episodes(store, tmp_path):
    out = tmp_path / "ds"
    export_dataset([store], out, ExportConfig(fps=10, task="reach", cameras=("front", "side")), log=lambda _m: None)
    back = list(import_dataset(out))
    src = [load_episode_file(p, SPEC) for p in sorted(store.glob("ep_*.npz"))]
    assert len(back) == len(src) == 3
    for a, b in zip(src, back):
        for key in ("proprio", "action", "reward", "discount"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        for key, fill in (("intervention", False), ("success", False), ("weights_version", -1)):
            # per-action flags: row 0 is the reset observation, which no action led to
            np.testing.assert_array_equal(a[key][1:], b[key][1:], err_msg=key)
            assert b[key][0] == fill
        assert a["image"].shape == b["image"].shape
        assert np.abs(a["image"].astype(int) - b["image"].astype(int)).mean() < 6.0  # H.264, crf 18
    assert import_into(out, tmp_path / "demos", log=lambda _m: None) == 3
    again = ReplayBuffer(tmp_path / "demos", ReplayConfig(capacity=1000, fsync=False), SPEC)
    assert again.num_transitions == 8 + 11 + 6


def test_bad_exports_are_refused_with_the_reason(store, tmp_path):
    with pytest.raises(DatasetError, match="6 image channels, 1 camera"):
        export_dataset([store], tmp_path / "a", ExportConfig(cameras=("front",)), log=lambda _m: None)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("")
    with pytest.raises(DatasetError, match="not empty"):
        export_dataset([store], tmp_path / "b", ExportConfig(cameras=("front", "side")), log=lambda _m: None)
    with pytest.raises(DatasetError, match="no episode files: .* does not exist"):
        export_dataset([tmp_path / "nothing"], tmp_path / "c", ExportConfig(), log=lambda _m: None)
    with pytest.raises(DatasetError, match="not a LeRobot dataset"):
        list(import_dataset(tmp_path / "nothing"))
