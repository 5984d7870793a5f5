"""Crash-safe per-step journal of the learner: one append-only, CRC-framed file of encoded step records
per episode in progress (numpy only)."""
from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mentor_policy.fileio import atomic_write_bytes, fsync_dir, truncate_file
from mentor_policy.framed_log import FRAME, append_frame, encode_frame, scan_frames
from mentor_policy.replay import ReplayError
from mentor_policy.step_record import RecordFormatError, decode_step_record, encode_step_record, records_to_episode

log = logging.getLogger(__name__)
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # episode keys become file names


_JOURNAL_MAGIC = b"MJRNL\x02\n\x00"  # file header; then mentor_policy.framed_log frames (tag: record index)
_V1_MAGIC = b"MJRNL\x01\n\x00"  # journals written before the shared frame format: read, and migrated on append
_V1_FRAME = struct.Struct("<II")  # v1 frame: payload length, CRC32 of the payload


@dataclass
class JournalConfig:
    """Durability policy of the :class:`EpisodeJournal`."""

    fsync_every: int = 1  # fsync after every N appended records; 1 = every record, 0 = only on close/finish

    def __post_init__(self) -> None:
        if not isinstance(self.fsync_every, int) or self.fsync_every < 0:
            raise ValueError(f"JournalConfig.fsync_every must be an integer >= 0, got {self.fsync_every!r}")


class EpisodeJournal:
    """Append-only, CRC-framed log of encoded step records (:mod:`mentor_policy.framed_log`, the format of
    the policy's outbox), one file per episode.

    Survives ``kill -9``: a torn last record is detected (short frame or CRC mismatch), dropped with
    a warning and truncated away by ``read(key, repair=True)``. Life cycle of an episode::

        journal.append(key, record, meta)      # every control tick
        ep = journal.finish(key)               # episode arrays (see records_to_episode)
        replay.add_episode(ep)                 # durable .npz
        journal.discard(key)                   # only now is the journal file removed

    ``episode_key`` must match ``[A-Za-z0-9][A-Za-z0-9_.-]*`` (it becomes a file name).
    """

    SUFFIX = ".journal"

    def __init__(self, directory: str | os.PathLike, cfg: JournalConfig | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg if cfg is not None else JournalConfig()
        self._files: dict[str, Any] = {}
        self._unsynced: dict[str, int] = {}
        self._counts: dict[str, int] = {}  # records in each open file (the next frame's tag)

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ValueError(f"invalid episode key {key!r}: use letters, digits, '_', '.', '-' (max 128)")
        return self.directory / f"{key}{self.SUFFIX}"

    def append(self, episode_key: str, record: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        """Encode and append one step record (fsynced per ``cfg.fsync_every``)."""
        self.append_encoded(episode_key, encode_step_record(record, meta))

    def append_encoded(self, episode_key: str, payload: bytes) -> None:
        """Append one record as received, already encoded by :func:`encode_step_record` (the learner stores
        the bytes the policy sent: one encode per step, one decode when the episode is finalised)."""
        f = self._files.get(episode_key)
        if f is None:
            f = self._open_for_append(episode_key)
        append_frame(f, self._counts[episode_key], payload, fsync=False)
        self._counts[episode_key] += 1
        self._unsynced[episode_key] += 1
        if self.cfg.fsync_every and self._unsynced[episode_key] >= self.cfg.fsync_every:
            self._sync(episode_key)

    def _open_for_append(self, key: str) -> Any:
        path = self._path(key)
        if not path.exists() or path.stat().st_size < len(_JOURNAL_MAGIC):
            with open(path, "wb") as fh:  # new, or torn while its header was written
                fh.write(_JOURNAL_MAGIC)
                fh.flush()
                os.fsync(fh.fileno())
            fsync_dir(self.directory)
            count = 0
        else:
            count = len(self.read(key, repair=True))  # a v1 file is migrated by the repair
        f = open(path, "ab")
        self._files[key], self._unsynced[key], self._counts[key] = f, 0, count
        return f

    def _sync(self, key: str) -> None:
        f = self._files.get(key)
        if f is not None:
            f.flush()
            os.fsync(f.fileno())
            self._unsynced[key] = 0

    def keys(self) -> list[str]:
        """Episode keys that have a journal file, sorted."""
        return sorted(p.name[: -len(self.SUFFIX)] for p in self.directory.glob(f"*{self.SUFFIX}"))

    def read(self, episode_key: str, repair: bool = False) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """All intact ``(record, meta)`` pairs of one episode journal, in order.

        A torn or corrupt tail is dropped with a warning; with ``repair`` the file is truncated to
        its last intact record so that appends can continue.
        """
        path = self._path(episode_key)
        self._sync(episode_key)
        data = path.read_bytes()
        if data.startswith(_V1_MAGIC):
            return self._read_v1(episode_key, path, data, repair)
        if data[: len(_JOURNAL_MAGIC)] != _JOURNAL_MAGIC:
            if len(data) < len(_JOURNAL_MAGIC) and _JOURNAL_MAGIC.startswith(data):
                return []  # torn while writing the file header
            raise ReplayError(f"{path} is not an episode journal (bad magic)")
        good, out = self._decode(path, data, scan_frames(data, len(_JOURNAL_MAGIC))[1], len(_JOURNAL_MAGIC),
                                 FRAME.size)
        if good < len(data):
            log.warning("journal %s: dropping %d byte(s) of torn/corrupt tail", path, len(data) - good)
            if repair:
                self._close_file(episode_key)
                truncate_file(path, good)
        return out

    @staticmethod
    def _decode(path: Path, data: bytes, frames: list[tuple[int, bytes]], start: int, frame_size: int
                ) -> tuple[int, list[tuple[dict, dict]]]:
        """Decode intact frames in order; an undecodable record ends the intact part (like a torn tail).
        Returns (end of the last good record in ``data``, [(record, meta), ...])."""
        pos, out = start, []
        for _tag, payload in frames:
            try:
                out.append(decode_step_record(payload))
            except RecordFormatError as exc:
                log.warning("journal %s: undecodable record %d: %s", path, len(out), exc)
                break
            pos += frame_size + len(payload)
        return pos, out

    def _read_v1(self, key: str, path: Path, data: bytes, repair: bool) -> list[tuple[dict, dict]]:
        """A journal of the earlier frame format: its intact records; ``repair`` rewrites it in the current
        format (the same record bytes, atomically), so that appends continue in one format."""
        pos, payloads = len(_V1_MAGIC), []
        while pos + _V1_FRAME.size <= len(data):
            length, crc = _V1_FRAME.unpack_from(data, pos)
            end = pos + _V1_FRAME.size + length
            payload = data[pos + _V1_FRAME.size:end]
            if end > len(data) or zlib.crc32(payload) != crc:
                break
            payloads.append((len(payloads), payload))
            pos = end
        _good, out = self._decode(path, data, payloads, len(_V1_MAGIC), _V1_FRAME.size)
        if repair:
            self._close_file(key)
            frames = b"".join(encode_frame(i, payload) for i, payload in payloads[:len(out)])
            atomic_write_bytes(path, _JOURNAL_MAGIC + frames)
            log.info("journal %s: migrated %d record(s) from the earlier frame format", path, len(out))
        return out

    def finish(self, episode_key: str) -> dict[str, np.ndarray]:
        """fsync, close and convert one episode's records (see :func:`records_to_episode`).

        The journal file stays until :meth:`discard` is called after the replay made it durable.
        """
        pairs = self.read(episode_key, repair=True)
        self._close_file(episode_key)
        episode = records_to_episode([r for r, _ in pairs])
        # the weights version each step's action came from (-1: not recorded, e.g. a teleop-only recorder)
        episode["weights_version"] = np.array([int((m or {}).get("weights_version", -1)) for _, m in pairs], np.int64)
        return episode

    def discard(self, episode_key: str) -> None:
        """Delete an episode's journal (call only once the episode is durable elsewhere)."""
        self._close_file(episode_key)
        path = self._path(episode_key)
        path.unlink(missing_ok=True)
        fsync_dir(self.directory)

    def _close_file(self, key: str) -> None:
        f = self._files.pop(key, None)
        self._unsynced.pop(key, None)
        self._counts.pop(key, None)
        if f is not None:
            f.flush()
            os.fsync(f.fileno())
            f.close()

    def close(self) -> None:
        """fsync and close every open journal file."""
        for key in list(self._files):
            self._close_file(key)

    def __enter__(self) -> "EpisodeJournal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
