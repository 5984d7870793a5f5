"""Episode replay buffer (numpy only). The step-record codec is :mod:`mentor_policy.step_record`, the
crash-safe per-step journal :mod:`mentor_policy.journal`.

Episode layout (dm_env style, every array has T+1 rows for an episode of T transitions):

- ``image``        (T+1, C, H, W) uint8  single frames (C = ``spec.frame_channels``), stacked at sample time
- ``proprio``      (T+1, P) float32
- ``action``       (T+1, A) float32      row 0 is zeros; row t holds the action that *led to* step t
- ``reward``       (T+1,) float32        row 0 is zero; row t is the reward received on arriving at step t
- ``discount``     (T+1,) float32        1, or 0 at a true terminal (a time-limit truncation keeps 1)
- ``intervention`` (T+1,) bool           True where a human overrode the policy's action

Storage: one uncompressed ``.npz`` per finished episode, written atomically (temp file in the same
directory, flush, fsync, ``os.replace``, directory fsync). In memory all frames live once in one
preallocated uint8 ring (``np.zeros``, so pages are only committed when written); stacks and n-step
returns are built by vectorised fancy indexing at sample time.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mentor_policy.fileio import atomic_open
from mentor_policy.frames import stack_indices
from mentor_policy.specs import EnvSpec

log = logging.getLogger(__name__)

EPISODE_KEYS = ("image", "proprio", "action", "reward", "discount", "intervention")
#: per-step arrays an episode file may also hold (T+1,): each step's success flag and the policy weights version
#: that chose its action (kept for datasets and exports; sampling does not use them)
OPTIONAL_KEYS = {"success": bool, "weights_version": np.int64}
# ep_<index>_<transitions>[.<key>].npz; the key (e.g. the learner's journal key) makes adding idempotent
_EPISODE_RE = re.compile(r"^ep_(\d{9})_(\d+)(?:\.([A-Za-z0-9][A-Za-z0-9_.-]{0,127}))?\.npz$")
_TMP_PREFIX = ".tmp-"
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ReplayError(ValueError):
    """Raised for malformed episodes, corrupt episode files and impossible buffer requests."""


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
@dataclass
class ReplayConfig:
    """Replay buffer settings (validated on construction)."""

    capacity: int = 1_000_000  # maximum number of transitions kept (oldest whole episodes are evicted)
    frame_stack: int = 3  # time steps stacked into one policy image at sample time
    nstep: int = 3  # n of the n-step return
    discount: float = 0.99  # gamma used for the n-step reward sum and the bootstrap discount gamma^n
    batch_size: int = 256  # default batch size of sample() when none is given
    seed: int = 0  # seed of the sampling RNG
    frame_slots: int = 0  # ring size in frames; 0 = auto (capacity + capacity // 50 + 2048)
    fsync: bool = True  # fsync episode files and the directory before they count as durable
    delete_evicted: bool = True  # delete the files of evicted episodes (False: keep them on disk, unloaded)

    def __post_init__(self) -> None:
        for name in ("capacity", "frame_stack", "nstep", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ReplayConfig.{name} must be an integer >= 1, got {value!r}")
        if not (0.0 < float(self.discount) <= 1.0):
            raise ValueError(f"ReplayConfig.discount must be in (0, 1], got {self.discount!r}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"ReplayConfig.seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.frame_slots, (int, np.integer)) or self.frame_slots < 0:
            raise ValueError(f"ReplayConfig.frame_slots must be >= 0 (0 = auto), got {self.frame_slots!r}")
        if self.frame_slots and self.frame_slots < self.capacity + 2:
            raise ValueError(
                f"ReplayConfig.frame_slots={self.frame_slots} cannot hold capacity={self.capacity} transitions "
                "(needs at least capacity + 2 frames; use 0 for auto)"
            )

    @classmethod
    def from_agent_config(cls, agent_cfg: Any, **overrides: Any) -> "ReplayConfig":
        """Take frame_stack, nstep, discount, batch_size (and seed) from an AgentConfig; overrides win."""
        keys = ("frame_stack", "nstep", "discount", "batch_size", "seed")
        values = {k: getattr(agent_cfg, k) for k in keys if hasattr(agent_cfg, k)}
        values.update(overrides)
        return cls(**values)

    @property
    def ring_slots(self) -> int:
        """Number of frame slots of the in-memory ring."""
        return int(self.frame_slots or (self.capacity + self.capacity // 50 + 2048))


# --------------------------------------------------------------------------------------------
# Episode validation and atomic file I/O
# --------------------------------------------------------------------------------------------
def _expected_shapes(spec: EnvSpec, n: int) -> dict[str, tuple[int, ...]]:
    h, w = spec.image_size
    return {
        "image": (n, spec.frame_channels, h, w),
        "proprio": (n, spec.proprio_dim),
        "action": (n, spec.action_dim),
        "reward": (n,),
        "discount": (n,),
        "intervention": (n,),
    }


def validate_episode(episode: dict[str, Any], spec: EnvSpec) -> dict[str, np.ndarray]:
    """Check an episode dict against ``spec`` and return it with canonical dtypes.

    Raises :class:`ReplayError` naming the offending key for missing keys, wrong shapes/dtypes,
    non-finite values or discounts outside [0, 1]. ``intervention`` may be omitted (all False).
    """
    if not isinstance(episode, dict):
        raise ReplayError(f"an episode must be a dict of arrays, got {type(episode).__name__}")
    missing = [k for k in EPISODE_KEYS if k != "intervention" and k not in episode]
    if missing:
        raise ReplayError(f"episode is missing keys {missing}; expected {list(EPISODE_KEYS)}")
    image = np.asarray(episode["image"])
    if image.ndim != 4:
        raise ReplayError(f"episode image must be (T+1, C, H, W), got shape {image.shape}")
    n = image.shape[0]
    if n < 2:
        raise ReplayError(f"an episode needs at least 2 time steps (1 transition), got {n}")
    out: dict[str, np.ndarray] = {}
    shapes = _expected_shapes(spec, n)
    for key in EPISODE_KEYS:
        if key == "intervention" and key not in episode:
            out[key] = np.zeros(n, dtype=bool)
            continue
        arr = np.asarray(episode[key])
        if arr.shape != shapes[key]:
            raise ReplayError(f"episode[{key!r}] has shape {arr.shape}, expected {shapes[key]} for spec {spec}")
        if key == "image":
            if arr.dtype != np.uint8:
                raise ReplayError(f"episode['image'] must be uint8, got {arr.dtype}")
            out[key] = np.ascontiguousarray(arr)
        elif key == "intervention":
            out[key] = arr.astype(bool, copy=False)
        else:
            if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
                raise ReplayError(f"episode[{key!r}] must be real numbers, got dtype {arr.dtype}")
            arr = arr.astype(np.float32, copy=False)
            if not np.all(np.isfinite(arr)):
                bad = np.argwhere(~np.isfinite(arr))[0].tolist()
                raise ReplayError(f"episode[{key!r}] contains a non-finite value at index {bad}")
            out[key] = arr
    if np.any((out["discount"] < 0) | (out["discount"] > 1)):
        raise ReplayError("episode['discount'] values must lie in [0, 1]")
    for key, dtype in OPTIONAL_KEYS.items():
        if key in episode:
            arr = np.asarray(episode[key])
            if arr.shape != (n,):
                raise ReplayError(f"episode[{key!r}] has shape {arr.shape}, expected {(n,)}")
            out[key] = arr.astype(dtype, copy=False)
    return out


def _atomic_save_npz(path: Path, arrays: dict[str, np.ndarray], fsync: bool) -> None:
    """Write one episode file atomically (a crash leaves at most a ``_TMP_PREFIX`` file, cleaned on load)."""
    with atomic_open(path, "wb", prefix=_TMP_PREFIX, suffix=".npz", fsync=fsync) as f:
        np.savez(f, **arrays)


def load_episode_file(path: str | os.PathLike, spec: EnvSpec) -> dict[str, np.ndarray]:
    """Load and validate one episode ``.npz`` (no pickle). Raises :class:`ReplayError` if corrupt."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            episode = {k: data[k] for k in data.files if k in EPISODE_KEYS or k in OPTIONAL_KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ReplayError(f"cannot read episode file {path}: {type(exc).__name__}: {exc}") from exc
    try:
        return validate_episode(episode, spec)
    except ReplayError as exc:
        raise ReplayError(f"episode file {path} is invalid: {exc}") from exc


def discard_episodes_from(directory: str | os.PathLike, first_index: int) -> list[Path]:
    """Delete the episode files numbered ``first_index`` and above (roll a replay directory back to a
    checkpoint that was taken after ``first_index`` episodes); returns the deleted paths, oldest first.
    Call it before a :class:`ReplayBuffer` opens the directory."""
    if first_index < 0:
        raise ValueError(f"first_index must be >= 0, got {first_index}")
    directory, deleted = Path(directory), []
    if not directory.is_dir():
        return deleted
    for p in sorted(directory.iterdir()):
        m = _EPISODE_RE.match(p.name)
        if m and int(m.group(1)) >= first_index:
            p.unlink()
            deleted.append(p)
    return deleted


# --------------------------------------------------------------------------------------------
# Replay buffer
# --------------------------------------------------------------------------------------------
@dataclass
class _EpisodeSlot:
    index: int  # episode number (file name order)
    start: int  # first ring slot of the episode's T+1 frames
    length: int  # number of transitions T
    path: Path  # its file on disk


class ReplayBuffer:
    """Disk-backed episode replay with vectorised frame stacking and n-step returns.

    ``directory`` holds one ``ep_<index>_<T>[.<key>].npz`` per episode. On construction the existing
    episode files are reloaded in index order (newest that fit ``capacity``); leftover temp files
    (``.tmp-*``) from an interrupted write are deleted with a warning, and unreadable/invalid episode
    files are renamed to ``*.corrupt`` (kept for inspection) with a warning. Thread-safe: one lock
    guards ``add_episode`` and ``sample``.
    """

    def __init__(self, directory: str | os.PathLike, cfg: ReplayConfig, spec: EnvSpec) -> None:
        if not isinstance(cfg, ReplayConfig):
            raise TypeError(f"cfg must be a ReplayConfig, got {type(cfg).__name__}")
        if not isinstance(spec, EnvSpec):
            raise TypeError(f"spec must be an EnvSpec, got {type(spec).__name__}")
        self.cfg = cfg
        self.spec = spec
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rng = np.random.default_rng(cfg.seed)
        self._lock = threading.Lock()
        self._alloc_ring()
        self._episodes: deque[_EpisodeSlot] = deque()
        self._num_transitions = 0
        self._write_pos = 0
        self._next_index = 0
        self._keys: dict[str, Path] = {}  # episode key -> its file (episodes added with a key)
        self._cum: np.ndarray | None = None  # cached cumulative transition counts for sampling
        self._reload()

    # ---- public properties ---------------------------------------------------------------
    @property
    def num_transitions(self) -> int:
        """Transitions currently available for sampling."""
        return self._num_transitions

    @property
    def num_episodes(self) -> int:
        """Episodes currently held in memory."""
        return len(self._episodes)

    def __len__(self) -> int:
        return self._num_transitions

    @property
    def episodes_added(self) -> int:
        """Episodes ever added to this directory (the next file index; durable: it is read back from
        the newest file's name, which eviction never deletes)."""
        return self._next_index

    def has_episode(self, key: str) -> bool:
        """True when an episode was added with ``key`` (its file is in the directory)."""
        with self._lock:
            return key in self._keys

    def episode_paths(self) -> list[Path]:
        """Files of the loaded episodes, oldest first."""
        with self._lock:
            return [e.path for e in self._episodes]

    # ---- storage -------------------------------------------------------------------------
    def _alloc_ring(self) -> None:
        s, spec = self.cfg.ring_slots, self.spec
        h, w = spec.image_size
        # np.zeros maps zero pages lazily: memory is committed only as frames are written.
        self._frames = np.zeros((s, spec.frame_channels, h, w), dtype=np.uint8)
        self._proprio = np.zeros((s, spec.proprio_dim), dtype=np.float32)
        self._action = np.zeros((s, spec.action_dim), dtype=np.float32)
        self._reward = np.zeros(s, dtype=np.float32)
        self._discount = np.zeros(s, dtype=np.float32)
        self._intervention = np.zeros(s, dtype=bool)

    def add_episode(self, episode: dict[str, Any], key: str | None = None) -> Path:
        """Validate, persist (atomically, durably) and insert one finished episode.

        Returns the episode file's path. Oldest episodes are evicted (and their files deleted when
        ``cfg.delete_evicted``) only after the new file is durable. With ``key`` (letters, digits,
        ``_.-``) the key is part of the file name and adding is idempotent: an episode whose key is
        already stored is not added again (its file's path is returned), e.g. when a crash came
        between storing an episode and retiring its journal entry.
        """
        if key is not None and not _KEY_RE.match(str(key)):
            raise ValueError(f"invalid episode key {key!r}: use letters, digits, '_', '.', '-' (max 128)")
        with self._lock:
            if key is not None and key in self._keys:
                log.info("episode %s is already in the replay (%s): not added again", key, self._keys[key].name)
                return self._keys[key]
        ep = validate_episode(episode, self.spec)
        length = ep["image"].shape[0] - 1
        self._check_fits(length)
        with self._lock:
            index = self._next_index
            self._next_index += 1
        path = self.directory / (f"ep_{index:09d}_{length}" + (f".{key}" if key is not None else "") + ".npz")
        _atomic_save_npz(path, ep, self.cfg.fsync)
        with self._lock:
            if key is not None:
                self._keys[key] = path
            evicted = self._insert(ep, index, path)
        self._delete_files(evicted)
        return path

    def _check_fits(self, length: int) -> None:
        if length > self.cfg.capacity:
            raise ReplayError(f"episode of {length} transitions exceeds the replay capacity {self.cfg.capacity}")
        if length + 1 > self.cfg.ring_slots:
            raise ReplayError(f"episode of {length + 1} frames exceeds the ring size {self.cfg.ring_slots}")

    def _insert(self, ep: dict[str, np.ndarray], index: int, path: Path) -> list[_EpisodeSlot]:
        """Place an episode in the ring (caller holds the lock); returns evicted episodes."""
        n = ep["image"].shape[0]
        length = n - 1
        start = self._write_pos if self._write_pos + n <= self.cfg.ring_slots else 0
        evicted = []
        while self._episodes and (
            self._num_transitions + length > self.cfg.capacity or self._overlaps(self._episodes[0], start, n)
        ):
            old = self._episodes.popleft()
            self._num_transitions -= old.length
            evicted.append(old)
        sl = slice(start, start + n)
        self._frames[sl] = ep["image"]
        self._proprio[sl] = ep["proprio"]
        self._action[sl] = ep["action"]
        self._reward[sl] = ep["reward"]
        self._discount[sl] = ep["discount"]
        self._intervention[sl] = ep["intervention"]
        self._episodes.append(_EpisodeSlot(index, start, length, path))
        self._num_transitions += length
        self._write_pos = start + n
        self._cum = None
        return evicted

    @staticmethod
    def _overlaps(slot: _EpisodeSlot, start: int, n: int) -> bool:
        return slot.start < start + n and start < slot.start + slot.length + 1

    def _delete_files(self, evicted: list[_EpisodeSlot]) -> None:
        if not self.cfg.delete_evicted:
            return
        for old in evicted:
            try:
                old.path.unlink()
            except FileNotFoundError:
                log.warning("evicted episode file %s was already gone", old.path)

    # ---- reload --------------------------------------------------------------------------
    def _scan_directory(self) -> list[tuple[int, int, Path]]:
        found = []
        for p in sorted(self.directory.iterdir()):
            if p.name.startswith(_TMP_PREFIX):
                log.warning("deleting leftover temp file %s from an interrupted write", p)
                p.unlink()
                continue
            m = _EPISODE_RE.match(p.name)
            if m:
                found.append((int(m.group(1)), int(m.group(2)), p))
                if m.group(3):
                    self._keys[m.group(3)] = p
            elif p.name.endswith(".corrupt"):
                m = re.match(r"^ep_(\d{9})_", p.name)
                if m:  # never reuse the index of a file kept for inspection
                    self._next_index = max(self._next_index, int(m.group(1)) + 1)
        found.sort()
        if found:
            self._next_index = max(self._next_index, found[-1][0] + 1)
        return found

    def _reload(self) -> None:
        found = self._scan_directory()
        # Keep the newest episodes that fit the capacity; older ones are evicted as usual.
        keep, total = [], 0
        for index, length, path in reversed(found):
            if total + length > self.cfg.capacity:
                break
            keep.append((index, length, path))
            total += length
        keep.reverse()
        dropped = [_EpisodeSlot(i, 0, n, p) for i, n, p in found[: len(found) - len(keep)]]
        if dropped:
            log.info("replay reload: %d old episode(s) exceed capacity %d and are evicted",
                     len(dropped), self.cfg.capacity)
        loaded_evicted = []
        for index, _, path in keep:
            try:
                ep = load_episode_file(path, self.spec)
            except ReplayError as exc:
                bad = path.with_name(path.name + ".corrupt")
                log.warning("skipping %s; renamed to %s for inspection", exc, bad.name)
                os.replace(path, bad)
                continue
            loaded_evicted += self._insert(ep, index, path)
        self._delete_files(dropped + loaded_evicted)

    # ---- sampling ------------------------------------------------------------------------
    def sample(self, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Sample transitions uniformly over all stored transitions.

        Returns the agent batch: ``image``/``next_image`` (B, frame_stack*C, H, W) uint8 (oldest step
        first; the first frame repeats at an episode start), ``proprio``/``next_proprio`` (B, P) f32,
        ``action`` (B, A) f32, ``reward`` (B,) f32 = sum_k gamma^k r_{t+1+k} over n' = min(n, T-t)
        steps, ``discount`` (B,) f32 = gamma^n' times the product of the stored discounts (0 after a
        terminal; a truncated episode keeps bootstrapping from its last frame).
        """
        b = self.cfg.batch_size if batch_size is None else int(batch_size)
        if b < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        with self._lock:
            if self._num_transitions == 0:
                raise ReplayError("cannot sample from an empty replay buffer")
            starts, lengths, t = self._draw(b)
            return self._gather(starts, lengths, t)

    def _draw(self, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._cum is None:
            self._ep_starts = np.fromiter((e.start for e in self._episodes), dtype=np.int64, count=len(self._episodes))
            self._ep_lengths = np.fromiter((e.length for e in self._episodes), dtype=np.int64,
                                           count=len(self._episodes))
            self._cum = np.cumsum(self._ep_lengths)
        g = self._rng.integers(0, self._num_transitions, size=b)
        e = np.searchsorted(self._cum, g, side="right")
        t = g - (self._cum[e] - self._ep_lengths[e])
        return self._ep_starts[e], self._ep_lengths[e], t

    def _stack(self, starts: np.ndarray, steps: np.ndarray) -> np.ndarray:
        fs = self.cfg.frame_stack
        idx = starts[:, None] + stack_indices(steps, fs)
        frames = self._frames[idx]  # (B, fs, C, H, W), one fancy-indexing copy
        b, _, c, h, w = frames.shape
        return frames.reshape(b, fs * c, h, w)

    def _gather(self, starts: np.ndarray, lengths: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        gamma = np.float32(self.cfg.discount)
        n_eff = np.minimum(self.cfg.nstep, lengths - t)
        reward = np.zeros(len(t), dtype=np.float32)
        disc = np.ones(len(t), dtype=np.float32)
        for k in range(self.cfg.nstep):
            live = k < n_eff
            slot = starts + np.minimum(t + 1 + k, lengths)
            reward += np.where(live, disc * self._reward[slot], np.float32(0))
            disc = np.where(live, disc * self._discount[slot] * gamma, disc)
        nxt = t + n_eff
        return {
            "image": self._stack(starts, t),
            "proprio": self._proprio[starts + t],
            "action": self._action[starts + t + 1],
            "reward": reward,
            "discount": disc.astype(np.float32),
            "next_image": self._stack(starts, nxt),
            "next_proprio": self._proprio[starts + nxt],
        }


def seed_episodes(buffer: ReplayBuffer, directory: str | Path, spec: EnvSpec, kind: str) -> int:
    """Add every episode file (``ep_*.npz``) of ``directory`` (a demo store or an earlier run's replay) to
    ``buffer``; returns how many were new. Each is keyed by its source directory and file, so seeding again
    (a restart) adds nothing. A missing directory is an error; a corrupt file is skipped with the reason."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{kind} directory {directory} does not exist")
    tag = hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:10]
    added = 0
    for path in sorted(directory.glob("ep_*.npz")):
        key = f"{kind}-{tag}-{path.name.split('_')[1]}"
        if buffer.has_episode(key):
            continue
        try:
            episode = load_episode_file(path, spec)
        except ReplayError as exc:  # another spec, or a damaged file: the rest still seeds
            log.warning("not seeding %s: %s", path, exc)
            continue
        buffer.add_episode(episode, key=key)
        added += 1
    return added
