"""On-disk top-K set of agent snapshots ranked by training-episode return (task-oriented perturbation).

Layout of ``directory``::

    index.json           {"version": 1, "k": K, "entries": [{"file", "return", "step", "id"}, ...]}
    snap_<id>.pt         one snapshot (dict of module state dicts), written atomically

Crash safety: a snapshot file is written (atomically) before the index names it, and the index is
replaced atomically; a replaced snapshot is deleted only after the new index is durable. On open,
files the index does not name (leftover temp files, a half-written or orphaned snapshot) are removed,
so the store is always readable after a crash. With ``directory=None`` the store lives in memory
(not crash-safe; for tests and short runs).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import uuid
from pathlib import Path
from typing import Any

from mentor_policy.checkpoint import CheckpointError, atomic_write_bytes, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)
INDEX = "index.json"


class TopKStore:
    """Keep the ``k`` snapshots with the highest returns. ``offer(ret, state)`` -> kept or not."""

    def __init__(self, directory: str | Path | None, k: int) -> None:
        if k <= 0:
            raise ValueError(f"TopKStore k must be > 0, got {k}")
        self.k = k
        self.directory = Path(directory) if directory is not None else None
        self._entries: list[dict[str, Any]] = []  # sorted by return, descending
        self._memory: dict[str, Any] = {}
        self._trimmed = False  # the index on disk held more than k entries
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._entries = self._read_index()
            self._remove_strays()

    # ----- queries -----
    def __len__(self) -> int:
        return len(self._entries)

    @property
    def returns(self) -> list[float]:
        """Returns of the kept snapshots, highest first."""
        return [e["return"] for e in self._entries]

    def min_return(self) -> float:
        return self._entries[-1]["return"] if self._entries else -math.inf

    def would_accept(self, episode_return: float) -> bool:
        """True when :meth:`offer` with this return would keep the snapshot (saves building it)."""
        return math.isfinite(episode_return) and (len(self._entries) < self.k or episode_return > self.min_return())

    # ----- updates -----
    def offer(self, episode_return: float, state: Any, step: int | None = None) -> bool:
        """Add ``state`` if the store is not full or ``episode_return`` beats the lowest kept return
        (then that lowest member is replaced). Non-finite returns are rejected with ``ValueError``."""
        episode_return = float(episode_return)
        if not math.isfinite(episode_return):
            raise ValueError(f"TopKStore.offer: episode return must be finite, got {episode_return}")
        if not self.would_accept(episode_return):
            return False
        sid = uuid.uuid4().hex[:12]
        entry = {"id": sid, "file": f"snap_{sid}.pt", "return": episode_return, "step": step}
        self._write_snapshot(entry, state)
        entries = sorted(self._entries + [entry], key=lambda e: -e["return"])
        dropped = entries[self.k:]
        self._entries = entries[: self.k]
        self._write_index()
        for old in dropped:
            self._delete_snapshot(old)
        return True

    def load_all(self, mmap: bool = True) -> list[Any]:
        """All kept snapshots, highest return first (memory-mapped tensors by default)."""
        return [self._read_snapshot(e, mmap) for e in self._entries]

    def seed_from(self, other_dir: str | Path) -> int:
        """Offer every snapshot of another store directory (e.g. an earlier run); returns how many were kept."""
        other = TopKStore(other_dir, max(self.k, 1)) if Path(other_dir).resolve() != self._resolved() else None
        if other is None:
            raise ValueError(f"TopKStore.seed_from: {other_dir} is this store's own directory")
        kept = 0
        for entry in other._entries:
            if self.would_accept(entry["return"]):
                kept += int(self.offer(entry["return"], other._read_snapshot(entry, mmap=False), entry.get("step")))
        return kept

    # ----- internals -----
    def _resolved(self) -> Path | None:
        return self.directory.resolve() if self.directory is not None else None

    def _read_index(self) -> list[dict[str, Any]]:
        assert self.directory is not None
        path = self.directory / INDEX
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = [dict(e) for e in data["entries"]]
            for e in entries:
                e["return"] = float(e["return"])
                if not (self.directory / e["file"]).is_file():
                    raise ValueError(f"snapshot file {e['file']} named by the index is missing")
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"top-K index {path} is unreadable: {type(exc).__name__}: {exc}") from exc
        entries.sort(key=lambda e: -e["return"])
        if len(entries) > self.k:
            log.warning("top-K store %s holds %d snapshots, more than k=%d: keeping the best %d",
                        self.directory, len(entries), self.k, self.k)
            for old in entries[self.k:]:
                (self.directory / old["file"]).unlink(missing_ok=True)
            entries = entries[: self.k]
            self._trimmed = True
        return entries

    def _remove_strays(self) -> None:
        assert self.directory is not None
        named = {e["file"] for e in self._entries} | {INDEX}
        for path in self.directory.iterdir():
            if path.is_file() and path.name not in named and (
                    path.name.startswith("snap_") or path.name.endswith(".tmp")):
                log.warning("top-K store %s: removing %s left by an interrupted write", self.directory, path.name)
                path.unlink()
        if self._trimmed:
            self._write_index()

    def _write_index(self) -> None:
        if self.directory is None:
            return
        data = {"version": 1, "k": self.k, "entries": self._entries}
        atomic_write_bytes(self.directory / INDEX, json.dumps(data, indent=1).encode("utf-8"))

    def _write_snapshot(self, entry: dict[str, Any], state: Any) -> None:
        if self.directory is None:
            self._memory[entry["id"]] = copy.deepcopy(state)
        else:
            save_checkpoint(self.directory / entry["file"], state)

    def _read_snapshot(self, entry: dict[str, Any], mmap: bool) -> Any:
        if self.directory is None:
            return self._memory[entry["id"]]
        return load_checkpoint(self.directory / entry["file"], mmap=mmap)

    def _delete_snapshot(self, entry: dict[str, Any]) -> None:
        if self.directory is None:
            self._memory.pop(entry["id"], None)
        else:
            (self.directory / entry["file"]).unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove every snapshot (the directory itself stays)."""
        old = self._entries
        self._entries = []
        self._write_index()
        for e in old:
            self._delete_snapshot(e)

