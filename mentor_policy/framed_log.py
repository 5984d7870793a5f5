"""The one append-only, CRC-framed record log format of the project (the policy's transition outbox and
the learner's episode journal both write it).

A frame (little endian): magic ``b"MOB1"``, tag u64 (the outbox: the record's sequence number; the
journal: the record's index in its episode), payload length u32, CRC32 of the payload u32, payload.
A crash mid-write leaves a torn or corrupt tail: :func:`scan_frames` stops at the first frame whose
magic, length or CRC does not check, and :func:`read_frames` reports it and, with ``repair``, cuts it
off the file so that later appends follow the last intact frame.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from mentor_policy.fileio import truncate_file

log = logging.getLogger(__name__)
FRAME_MAGIC = b"MOB1"
FRAME = struct.Struct("<4sQII")  # magic, tag, payload length, CRC32 of the payload
MAX_PAYLOAD = 1 << 30


def encode_frame(tag: int, payload: bytes) -> bytes:
    """One frame holding ``payload`` with ``tag`` (0 <= tag < 2**64)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a frame holds at most {MAX_PAYLOAD} bytes, got {len(payload)}")
    return FRAME.pack(FRAME_MAGIC, int(tag), len(payload), zlib.crc32(payload)) + payload


def scan_frames(data: bytes, start: int = 0) -> tuple[int, list[tuple[int, bytes]]]:
    """``(end of the last intact frame, [(tag, payload), ...])`` of the frames in ``data[start:]``."""
    out, pos = [], start
    while pos + FRAME.size <= len(data):
        magic, tag, length, crc = FRAME.unpack_from(data, pos)
        end = pos + FRAME.size + length
        if magic != FRAME_MAGIC or length > MAX_PAYLOAD or end > len(data):
            break
        payload = data[pos + FRAME.size:end]
        if zlib.crc32(payload) != crc:
            break
        out.append((tag, payload))
        pos = end
    return pos, out


def read_frames(path: str | os.PathLike, start: int = 0, repair: bool = False) -> list[tuple[int, bytes]]:
    """The intact frames of a log file from byte ``start`` (after a file header, if it has one); a torn or
    corrupt tail is logged and, with ``repair``, truncated away."""
    data = Path(path).read_bytes()
    end, frames = scan_frames(data, start)
    if end != len(data):
        log.warning("%s: %s %d bytes of torn/corrupt tail after %d records", path,
                    "truncating" if repair else "ignoring", len(data) - end, len(frames))
        if repair:
            truncate_file(Path(path), end)
    return frames


def append_frame(fh: BinaryIO, tag: int, payload: bytes, fsync: bool) -> None:
    """Append one frame to an open (binary, append mode) log file; flushed, and fsynced when ``fsync``."""
    fh.write(encode_frame(tag, payload))
    fh.flush()
    if fsync:
        os.fsync(fh.fileno())
