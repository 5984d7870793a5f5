"""Loss-free transition transport: the actor's on-disk outbox and the learner's ingest ledger.

Actor side (:class:`Outbox`): every encoded transition is appended to an fsynced, append-only
segment file BEFORE it is published, so a ``kill -9`` of the policy node loses nothing. Records
stay pending until the learner acknowledges them (``learner/ack``: highest contiguous seq it has
stored durably); pending records older than ``resend_after_s`` are resent, a bounded number per
control tick. Segments whose records are all acknowledged are deleted (the newest one is kept so
the sequence counter survives restarts).

Learner side (:class:`IngestLedger`): per source, the highest contiguous seq stored. Duplicates
(seq <= acked) are dropped, gaps (seq > acked + 1) are refused and reported (the actor resends).
The ledger is an fsynced append-only log of ``source seq`` lines, compacted atomically.

Segment files are :mod:`mentor_policy.framed_log` logs (the frame's tag is the record's seq); a torn or
corrupt tail (crash mid-write) is detected by length/CRC and ignored with a warning.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from mentor_policy.fileio import atomic_write_bytes, fsync_dir, truncate_torn_line
from mentor_policy.framed_log import append_frame, read_frames

LOG = logging.getLogger(__name__)
_SEGMENT_RE = re.compile(r"^seg_(\d{12})\.bin$")


class TransportError(RuntimeError):
    """Corrupt outbox/ledger files or inconsistent sequence numbers."""


def read_records(path: Path, repair: bool = False) -> list[tuple[int, bytes]]:
    """All intact (seq, payload) records of one segment file; a torn/corrupt tail is ignored, and with
    ``repair`` cut off the file (so that records appended later follow the last intact one)."""
    return read_frames(path, repair=repair)


@dataclass
class _Pending:
    payload: bytes
    segment: int
    last_sent: float  # monotonic seconds; 0 = never sent


class Outbox:
    """Append-only, fsynced store of outgoing transitions with ack-based trimming.

    Args:
        directory: where the ``seg_<first seq>.bin`` files live (created if missing).
        segment_records: records per segment file before a new one is started.
        fsync: fsync every append (disable only in benchmarks that measure its cost).

    Thread-safe for one appending thread (the control loop) and any number of threads that ack,
    read or mark records: an append's write and fsync hold no lock, so an ack arriving meanwhile
    never waits for the disk.
    """

    def __init__(self, directory: str | os.PathLike, segment_records: int = 256, fsync: bool = True) -> None:
        if segment_records < 1:
            raise ValueError(f"segment_records must be >= 1, got {segment_records}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_records = segment_records
        self.fsync = fsync
        self._lock = threading.Lock()  # guards the in-memory state below, never held across disk writes
        self._pending: OrderedDict[int, _Pending] = OrderedDict()  # seq -> record, in seq order (appends only grow)
        self._segments: dict[int, int] = {}  # segment first seq -> records written to it
        self._acked = -1
        self._next_seq = 0
        self._fh = None
        self._current = -1
        self._load()

    # -- state -------------------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        """The seq the next appended record must carry."""
        return self._next_seq

    @property
    def acked(self) -> int:
        """Highest seq the learner acknowledged (-1 = none yet, in this process)."""
        return self._acked

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def pending_seqs(self) -> list[int]:
        """Unacknowledged seqs, ascending."""
        with self._lock:
            return list(self._pending)

    def newest(self) -> tuple[int, bytes] | None:
        """(seq, payload) of the newest unacknowledged record, or None when everything is acknowledged."""
        with self._lock:
            if not self._pending:
                return None
            seq = next(reversed(self._pending))
            return seq, self._pending[seq].payload

    def _load(self) -> None:
        for path in sorted(self.directory.glob("seg_*.bin")):
            m = _SEGMENT_RE.match(path.name)
            if not m:
                continue
            first = int(m.group(1))
            records = read_records(path, repair=True)
            self._segments[first] = len(records)
            for seq, payload in records:
                self._pending[seq] = _Pending(payload, first, 0.0)
                self._next_seq = max(self._next_seq, seq + 1)
            self._next_seq = max(self._next_seq, first)
        if self._pending:
            LOG.info("outbox %s: reloaded %d unacknowledged records (seq %d..%d)", self.directory,
                     len(self._pending), min(self._pending), max(self._pending))

    # -- writing -----------------------------------------------------------------------------
    def append(self, seq: int, payload: bytes) -> None:
        """Durably append the record ``seq`` (must equal :attr:`next_seq`); one appending thread only."""
        if seq != self._next_seq:
            raise TransportError(f"outbox expects seq {self._next_seq}, got {seq}")
        if self._fh is None or self._segments.get(self._current, 0) >= self.segment_records:
            self._open_segment(seq)
        append_frame(self._fh, seq, payload, self.fsync)
        with self._lock:
            self._segments[self._current] += 1
            self._pending[seq] = _Pending(payload, self._current, 0.0)
            self._next_seq = seq + 1

    def _open_segment(self, first_seq: int) -> None:
        if self._fh is not None:
            self._fh.close()
        path = self.directory / f"seg_{first_seq:012d}.bin"
        self._fh = open(path, "ab")
        with self._lock:
            self._current = first_seq
            self._segments.setdefault(first_seq, 0)
        if self.fsync:
            fsync_dir(self.directory)

    # -- sending / acknowledging ---------------------------------------------------------------
    def mark_sent(self, seq: int, now: float | None = None) -> None:
        with self._lock:
            rec = self._pending.get(seq)
            if rec is not None:
                rec.last_sent = time.monotonic() if now is None else now

    def due(self, resend_after_s: float, limit: int, now: float | None = None) -> list[tuple[int, bytes]]:
        """Up to ``limit`` pending (seq, payload), oldest first, not sent within ``resend_after_s``.

        Called every control tick: walks the records in seq order (no sort) and stops at ``limit``.
        """
        now = time.monotonic() if now is None else now
        out = []
        with self._lock:
            for seq, rec in self._pending.items():
                if now - rec.last_sent >= resend_after_s:
                    out.append((seq, rec.payload))
                    if len(out) >= limit:
                        break
        return out

    def ack(self, seq: int) -> int:
        """The learner durably stored everything up to ``seq``: drop it; delete finished segments.

        Returns the number of records released.
        """
        with self._lock:
            released, finished = self._release(seq)
        for first in finished:  # no record of these is pending any more: nothing reads them
            (self.directory / f"seg_{first:012d}.bin").unlink(missing_ok=True)
        return released

    def _release(self, seq: int) -> tuple[int, list[int]]:
        """Drop records up to ``seq`` from memory; (records released, first seqs of finished segments)."""
        if seq <= self._acked:
            return 0, []
        self._acked = seq
        released = 0
        while self._pending and next(iter(self._pending)) <= seq:  # seq order: released records lead
            self._pending.popitem(last=False)
            released += 1
        # segments hold consecutive seqs, so every segment before the oldest pending record's is finished
        oldest_live = self._pending[next(iter(self._pending))].segment if self._pending else None
        newest = max(self._segments, default=-1)  # always kept: it carries the sequence counter
        finished = []
        for first in sorted(self._segments):
            if oldest_live is not None and first >= oldest_live:
                break
            if first not in (self._current, newest) and first <= seq:
                del self._segments[first]
                finished.append(first)
        return released, finished

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class IngestLedger:
    """Learner-side per-source highest contiguous stored seq (durable), with dedupe and gap checks.

    Protocol per received record: ``verdict = check(source, seq)``; if ``"new"``: persist the
    record, then ``commit(source, seq)``. ``"dup"`` records are dropped; ``"gap"`` records are
    refused (the actor resends from ``acked + 1``).
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.acked: dict[str, int] = {}
        self.gaps = 0  # gap events seen (metrics)
        self.duplicates = 0  # duplicate records dropped (metrics)
        self._lines = 0
        if truncate_torn_line(self.path, fsync=fsync):
            LOG.warning("%s: dropped a torn last line (a crash mid-write)", self.path)
        self._load()
        self._fh = open(self.path, "a")

    def _load(self) -> None:
        if not self.path.exists():
            return
        for lineno, line in enumerate(self.path.read_text().splitlines(), 1):
            parts = line.split(" ")
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                LOG.warning("%s line %d is torn/corrupt (%r): ignored", self.path, lineno, line[:60])
                continue
            self.acked[parts[0]] = max(self.acked.get(parts[0], -1), int(parts[1]))
            self._lines += 1

    def check(self, source: str, seq: int) -> str:
        """``"new"`` (seq == acked + 1), ``"dup"`` (seq <= acked) or ``"gap"`` (seq > acked + 1)."""
        if not source or any(c.isspace() for c in source):
            raise TransportError(f"invalid transition source {source!r}")
        last = self.acked.get(source, -1)
        if seq <= last:
            self.duplicates += 1
            return "dup"
        if seq > last + 1:
            self.gaps += 1
            return "gap"
        return "new"

    def commit(self, source: str, seq: int) -> None:
        """Record that ``seq`` of ``source`` is durably stored (call after the journal write)."""
        if seq != self.acked.get(source, -1) + 1:
            raise TransportError(f"commit of {source} seq {seq} out of order (acked {self.acked.get(source, -1)})")
        self._fh.write(f"{source} {seq}\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.acked[source] = seq
        self._lines += 1
        if self._lines > 4 * max(len(self.acked), 1) + 10000:
            self._compact()

    def _compact(self) -> None:
        self._fh.close()
        atomic_write_bytes(self.path, "".join(f"{s} {q}\n" for s, q in sorted(self.acked.items())).encode())
        self._lines = len(self.acked)
        self._fh = open(self.path, "a")

    def close(self) -> None:
        self._fh.close()
