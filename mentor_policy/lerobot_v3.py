"""Episode stores (a learner's ``replay/`` or ``demos/``, a demo store) to and from LeRobotDataset v3.0.

The ``lerobot`` package cannot be installed beside this project's torch pin, so this module writes the
format's documented layout itself (pyarrow for Parquet, PyAV for MP4) and reads it back::

    meta/info.json                     codebase_version v3.0, fps, features, path templates, counts
    meta/stats.json                    per feature min / max / mean / std / count (images: per channel, in [0, 1])
    meta/tasks.parquet                 task string (the pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet   per episode: length, tasks, data and video offsets, stats
    data/chunk-000/file-000.parquet    one row per frame
    videos/observation.images.<camera>/chunk-000/file-000.mp4   every episode's frames of one camera, in order

One frame per time step: frame ``t`` holds the observation ``o_t`` (``observation.images.<camera>``,
``observation.state`` = the proprio) and what happened next: ``action`` (the action taken at ``o_t``),
``next.reward``, ``next.success``, ``intervention`` (the operator chose that action), ``weights_version``
(the policy that chose it), and ``next.done`` / ``next.terminated`` / ``next.truncated`` on an episode's
last transition. Our episodes also keep the observation after the last action; it becomes a final
frame with a zero action, zero reward and ``next.done`` true, marked ``is_terminal_observation`` (LeRobot
loaders that want (obs, action) pairs drop frames with that flag). :func:`import_dataset` turns the
frames back into our episode layout: numbers exactly (the per-action flags of row 0, the reset
observation that no action led to, come back as False / -1), images through the video codec (lossy:
H.264, yuv420p, ``crf``).

Limits: one data file and one video file per camera (the export refuses more than ~100 MB of frame data
or 1000 episodes rather than writing a second chunk); a single task string; images must have even sizes
(yuv420p).

    python -m mentor_policy.lerobot_v3 export --episodes runs/x/learner/replay --out datasets/x --task reach \\
        --fps 10 --cameras front,side
    python -m mentor_policy.lerobot_v3 import --dataset datasets/x --out demos/x
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from mentor_policy.fileio import atomic_write_text
from mentor_policy.specs import EnvSpec

CODEBASE_VERSION = "v3.0"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
MAX_EPISODES = 1000  # one chunk
MAX_DATA_MB = 100.0  # one data file


class DatasetError(ValueError):
    """Episodes that cannot be exported, or a directory that is not a dataset this module reads."""


@dataclass
class ExportConfig:
    """How episodes become a LeRobotDataset v3.0."""

    fps: float = 10.0  # frames per second: the control rate the episodes were recorded at [Hz]
    task: str = "reach"  # the task description stored for every episode
    cameras: tuple[str, ...] = ("front",)  # camera names, in the order of the episodes' image channels
    robot_type: str = "franka_fr3"
    crf: int = 18  # H.264 constant rate factor (0 = near lossless, 23 = the codec's default)
    gop: int = 2  # a keyframe every ``gop`` frames: random access as LeRobot's decoders expect

    def __post_init__(self) -> None:
        if not self.fps > 0 or not self.task or not self.cameras or not 0 <= self.crf <= 51 or self.gop < 1:
            raise ValueError("need fps > 0, a task, at least one camera, crf in [0, 51] and gop >= 1")
        self.cameras = tuple(self.cameras)


def episode_files(sources: Sequence[str | os.PathLike]) -> list[Path]:
    """The episode files (``ep_*.npz``) of directories or single files, in order."""
    files: list[Path] = []
    for src in sources:
        src = Path(src)
        if not src.exists():
            raise DatasetError(f"no episode files: {src} does not exist")
        files += sorted(src.glob("ep_*.npz")) if src.is_dir() else [src]
    if not files:
        raise DatasetError(f"no episode files (ep_*.npz) in {[str(s) for s in sources]}")
    return files


def _spec_of(path: Path) -> EnvSpec:
    with np.load(path, allow_pickle=False) as d:
        _, c, h, w = d["image"].shape
        return EnvSpec(frame_channels=int(c), image_size=(int(h), int(w)), proprio_dim=int(d["proprio"].shape[1]),
                       action_dim=int(d["action"].shape[1]))


def _frames_of(ep: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our episode (rows 0..T, row t's action led to o_t) -> T+1 frames (frame t's action is taken at o_t)."""
    n = ep["image"].shape[0]
    shift = lambda a, fill: np.concatenate([a[1:], np.full((1, *a.shape[1:]), fill, a.dtype)])  # noqa: E731
    last = np.arange(n) == n - 2  # the frame of the last transition
    terminated = bool(ep["discount"][-1] == 0.0)
    return {
        "observation.state": ep["proprio"].astype(np.float32),
        "action": shift(ep["action"].astype(np.float32), 0.0),
        "next.reward": shift(ep["reward"].astype(np.float32), 0.0),
        "next.success": shift(ep.get("success", np.zeros(n, bool)).astype(bool), False),
        "intervention": shift(ep["intervention"].astype(bool), False),
        "weights_version": shift(ep.get("weights_version", np.full(n, -1, np.int64)).astype(np.int64), -1),
        "next.done": last | (np.arange(n) == n - 1),
        "next.terminated": last & terminated,
        "next.truncated": last & (not terminated),
        "is_terminal_observation": np.arange(n) == n - 1,
    }


def _stats(values: np.ndarray) -> dict[str, Any]:
    v = values.reshape(len(values), -1).astype(np.float64)
    return {"min": v.min(0).tolist(), "max": v.max(0).tolist(), "mean": v.mean(0).tolist(), "std": v.std(0).tolist(),
            "count": [int(len(v))]}


def _image_stats(frames: np.ndarray) -> dict[str, Any]:
    """Per-channel stats of (N, H, W, 3) uint8 frames in [0, 1], shaped (3, 1, 1) as LeRobot stores them."""
    x = frames.reshape(-1, 3).astype(np.float64) / 255.0
    as_c11 = lambda a: [[[float(c)]] for c in a]  # noqa: E731
    return {"min": as_c11(x.min(0)), "max": as_c11(x.max(0)), "mean": as_c11(x.mean(0)), "std": as_c11(x.std(0)),
            "count": [int(len(frames))]}


class _VideoWriter:
    """One camera's frames of every episode into one H.264 MP4 (PyAV)."""

    def __init__(self, path: Path, fps: float, height: int, width: int, crf: int, gop: int) -> None:
        from fractions import Fraction

        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options = {"crf": str(crf), "g": str(gop)}
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        import av
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def export_dataset(sources: Sequence[str | os.PathLike], out: str | os.PathLike, cfg: ExportConfig,
                   log=print) -> dict[str, Any]:
    """Write the episodes of ``sources`` as a LeRobotDataset v3.0 under ``out`` (must not exist or be empty);
    returns a report (episodes, frames, seconds, MB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root} exists and is not empty: export into a new directory")
    files = episode_files(sources)
    if len(files) > MAX_EPISODES:
        raise DatasetError(f"{len(files)} episodes: this exporter writes one chunk of at most {MAX_EPISODES}")
    spec = _spec_of(files[0])
    if spec.frame_channels != 3 * len(cfg.cameras):
        raise DatasetError(f"episodes have {spec.frame_channels} image channels, {len(cfg.cameras)} camera name(s) "
                           f"{list(cfg.cameras)} need {3 * len(cfg.cameras)}")
    h, w = spec.image_size
    if h % 2 or w % 2:
        raise DatasetError(f"image size {h}x{w}: yuv420p video needs even sizes")
    keys = [f"observation.images.{c}" for c in cfg.cameras]
    videos = {k: _VideoWriter(root / VIDEO_PATH.format(video_key=k, chunk_index=0, file_index=0), cfg.fps, h, w,
                              cfg.crf, cfg.gop) for k in keys}
    columns: dict[str, list] = {}
    episodes: list[dict[str, Any]] = []
    image_samples: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    total = 0
    from mentor_policy.replay import load_episode_file
    for ei, path in enumerate(files):
        ep = load_episode_file(path, spec)
        frames = _frames_of(ep)
        n = ep["image"].shape[0]
        row = {"episode_index": ei, "tasks": [cfg.task], "length": n, "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": total, "dataset_to_index": total + n,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for ci, key in enumerate(keys):
            rgb = np.transpose(ep["image"][:, 3 * ci:3 * ci + 3], (0, 2, 3, 1))  # (n, H, W, 3)
            start = videos[key].frames / cfg.fps
            for im in rgb:
                videos[key].add(im)
            row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                        f"videos/{key}/from_timestamp": start,
                        f"videos/{key}/to_timestamp": videos[key].frames / cfg.fps})
            image_samples[key].append(rgb[:: max(1, n // 8)])
            for stat, value in _image_stats(rgb).items():
                row[f"stats/{key}/{stat}"] = value
        frames.update({"timestamp": (np.arange(n) / cfg.fps).astype(np.float32), "frame_index": np.arange(n),
                       "episode_index": np.full(n, ei), "index": np.arange(total, total + n),
                       "task_index": np.zeros(n)})
        for name, values in frames.items():
            columns.setdefault(name, []).append(values)
            if name in ("observation.state", "action", "next.reward"):
                for stat, value in _stats(values).items():
                    row[f"stats/{name}/{stat}"] = value
        episodes.append(row)
        total += n
    for v in videos.values():
        v.close()
    data = {name: np.concatenate(parts) for name, parts in columns.items()}
    if sum(a.nbytes for a in data.values()) / 2**20 > MAX_DATA_MB:
        raise DatasetError(f"more than {MAX_DATA_MB} MB of frame data: this exporter writes one data file")
    features = _features(spec, cfg, keys)
    table = pa.table({name: _arrow_column(data[name], features[name]) for name in features if name in data})
    (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / DATA_PATH.format(chunk_index=0, file_index=0))
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episodes), root / EPISODES_PATH.format(chunk_index=0, file_index=0))
    _write_tasks(root / "meta" / "tasks.parquet", [cfg.task])
    stats = {name: _stats(data[name]) for name in ("observation.state", "action", "next.reward")}
    stats.update({k: _image_stats(np.concatenate(image_samples[k])) for k in keys})
    atomic_write_text(root / "meta" / "stats.json", json.dumps(stats, indent=1))
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": cfg.robot_type, "total_episodes": len(files),
            "total_frames": total, "total_tasks": 1, "chunks_size": MAX_EPISODES, "data_files_size_in_mb": MAX_DATA_MB,
            "video_files_size_in_mb": 500, "fps": cfg.fps, "splits": {"train": f"0:{len(files)}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH, "features": features}
    atomic_write_text(root / "meta" / "info.json", json.dumps(info, indent=1))
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20
    report = {"episodes": len(files), "frames": total, "seconds": round(time.perf_counter() - t0, 2),
              "megabytes": round(size, 2), "out": str(root)}
    log(f"exported {report['episodes']} episodes ({report['frames']} frames) in {report['seconds']} s, "
        f"{report['megabytes']} MB -> {root}")
    return report


def _features(spec: EnvSpec, cfg: ExportConfig, keys: list[str]) -> dict[str, dict[str, Any]]:
    h, w = spec.image_size
    one = lambda dtype: {"dtype": dtype, "shape": [1], "names": None}  # noqa: E731
    features: dict[str, dict[str, Any]] = {}
    for key in keys:
        features[key] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                         "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                                  "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": cfg.fps,
                                  "video.channels": 3, "has_audio": False}}
    features["observation.state"] = {"dtype": "float32", "shape": [spec.proprio_dim],
                                     "names": [f"proprio_{i}" for i in range(spec.proprio_dim)]}
    features["action"] = {"dtype": "float32", "shape": [spec.action_dim],
                          "names": [f"action_{i}" for i in range(spec.action_dim)]}
    features.update({"next.reward": one("float32"), "next.success": one("bool"), "next.done": one("bool"),
                     "next.terminated": one("bool"), "next.truncated": one("bool"), "intervention": one("bool"),
                     "weights_version": one("int64"), "is_terminal_observation": one("bool"),
                     "timestamp": one("float32"), "frame_index": one("int64"), "episode_index": one("int64"),
                     "index": one("int64"), "task_index": one("int64")})
    return features


def _arrow_column(values: np.ndarray, feature: dict[str, Any]):
    import pyarrow as pa
    kind = {"float32": pa.float32(), "int64": pa.int64(), "bool": pa.bool_()}[feature["dtype"]]
    if feature["shape"] == [1]:
        return pa.array(values.reshape(-1).astype(feature["dtype"]), type=kind)
    flat = pa.array(values.reshape(-1).astype(feature["dtype"]), type=kind)
    return pa.FixedSizeListArray.from_arrays(flat, int(feature["shape"][0]))


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """tasks.parquet as pandas writes a frame indexed by the task strings (what LeRobot's loader reads)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    pandas_meta = {"index_columns": ["__index_level_0__"], "column_indexes": [], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
         "metadata": None},
        {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object",
         "metadata": None}], "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0"}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "__index_level_0__": pa.array(tasks)})
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()}), path)


def _decode_video(path: Path) -> np.ndarray:
    import av
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def import_dataset(root: str | os.PathLike) -> Iterator[dict[str, np.ndarray]]:
    """The episodes of a dataset written by :func:`export_dataset`, in our episode layout (see module doc)."""
    import pyarrow.parquet as pq

    root = Path(root)
    try:
        info = json.loads((root / "meta" / "info.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{root} is not a LeRobot dataset (meta/info.json: {exc})") from exc
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(f"{root}: codebase_version {info.get('codebase_version')!r}, this reader reads "
                           f"{CODEBASE_VERSION}")
    fps = float(info["fps"])
    keys = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    data = pq.read_table(root / DATA_PATH.format(chunk_index=0, file_index=0)).to_pydict()
    episodes = pq.read_table(root / EPISODES_PATH.format(chunk_index=0, file_index=0)).to_pylist()
    videos = {k: _decode_video(root / VIDEO_PATH.format(video_key=k, chunk_index=0, file_index=0)) for k in keys}
    col = lambda name, a, b, dtype: np.asarray(data[name][a:b], dtype=dtype)  # noqa: E731
    for row in episodes:
        a, b = int(row["dataset_from_index"]), int(row["dataset_to_index"])
        n = b - a
        images = []
        for k in keys:
            first = int(round(float(row[f"videos/{k}/from_timestamp"]) * fps))
            images.append(np.transpose(videos[k][first:first + n], (0, 3, 1, 2)))
        unshift = lambda x, fill: np.concatenate([np.full((1, *x.shape[1:]), fill, x.dtype), x[:-1]])  # noqa: E731
        terminated = bool(np.any(col("next.terminated", a, b, bool)))
        discount = np.ones(n, np.float32)
        discount[-1] = 0.0 if terminated else 1.0
        yield {"image": np.concatenate(images, axis=1), "proprio": col("observation.state", a, b, np.float32),
               "action": unshift(col("action", a, b, np.float32), 0.0),
               "reward": unshift(col("next.reward", a, b, np.float32), 0.0), "discount": discount,
               "intervention": unshift(col("intervention", a, b, bool), False),
               "success": unshift(col("next.success", a, b, bool), False),
               "weights_version": unshift(col("weights_version", a, b, np.int64), -1)}


def import_into(root: str | os.PathLike, out: str | os.PathLike, log=print) -> int:
    """Store a dataset's episodes as an episode store ``out`` (a demo store: the learner's ``demo_dirs``)."""
    from mentor_policy.replay import ReplayBuffer, ReplayConfig

    eps = list(import_dataset(root))
    if not eps:
        raise DatasetError(f"{root} holds no episodes")
    _, c, h, w = eps[0]["image"].shape
    spec = EnvSpec(frame_channels=c, image_size=(h, w), proprio_dim=eps[0]["proprio"].shape[1],
                   action_dim=eps[0]["action"].shape[1])
    store = ReplayBuffer(out, ReplayConfig(capacity=sum(len(e["reward"]) for e in eps) + 1, delete_evicted=False),
                         spec)
    for i, ep in enumerate(eps):
        store.add_episode(ep, key=f"lerobot-{i}")
    log(f"imported {len(eps)} episodes ({store.num_transitions} transitions) -> {out}")
    return len(eps)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mentor_policy.lerobot_v3", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="episode stores -> a LeRobotDataset v3.0 directory")
    e.add_argument("--episodes", nargs="+", required=True, help="episode directories (replay/, demos/) or files")
    e.add_argument("--out", required=True, help="new dataset directory")
    e.add_argument("--task", required=True, help="task description stored with every episode")
    e.add_argument("--fps", type=float, default=10.0, help="the control rate of the episodes [Hz]")
    e.add_argument("--cameras", default="front", help="comma-separated camera names, in the images' channel order")
    e.add_argument("--crf", type=int, default=18, help="H.264 quality (0 = near lossless, 23 = the codec's default)")
    i = sub.add_parser("import", help="a dataset written by export -> an episode store (a demo store)")
    i.add_argument("--dataset", required=True)
    i.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        if args.command == "export":
            cfg = ExportConfig(fps=args.fps, task=args.task, cameras=tuple(c for c in args.cameras.split(",") if c),
                               crf=args.crf)
            export_dataset(args.episodes, args.out, cfg)
        else:
            import_into(args.dataset, args.out)
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
