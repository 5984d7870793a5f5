"""Crash-safe file writes and the YAML-mapping reader shared by every package (no torch).

A file written through :func:`atomic_open` is either the complete new content or the old file:
the data goes to a temporary file in the same directory, is flushed and fsynced, renamed over the
target with ``os.replace`` (atomic on POSIX), and the directory entry is fsynced so the rename
itself survives a power cut. A crash at any point leaves at most a temporary file whose name starts
with the given prefix (readers skip or clean those).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator


def fsync_dir(directory: str | Path) -> None:
    """Make a rename/creation inside ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, prefix: str | None = None, suffix: str = ".tmp",
                fsync: bool = True, verify: Callable[[Path], None] | None = None) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` atomically when the ``with`` block succeeds.

    ``mode`` is ``"wb"`` or ``"w"``; ``prefix`` names the temporary file (default ``.<name>.``);
    ``fsync=False`` skips the fsyncs (still atomic, not durable across a power cut). ``verify(tmp)``
    runs on the complete temporary file before the rename; if it raises, ``path`` keeps its old content.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes only ('wb' or 'w'), got mode {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def truncate_file(path: str | Path, length: int, fsync: bool = True) -> int:
    """Cut ``path`` to its first ``length`` bytes (a torn tail, before appending after it); returns the
    number of bytes removed (0 when the file is already that short or missing)."""
    p = Path(path)
    if not p.exists() or p.stat().st_size <= length:
        return 0
    dropped = p.stat().st_size - int(length)
    with open(p, "r+b") as fh:
        fh.truncate(int(length))
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
    return dropped


def truncate_torn_line(path: str | Path, fsync: bool = True) -> int:
    """Drop an unterminated last line of an append-only text file (a crash mid-write), so that the
    next appended line starts on a line of its own; returns the number of bytes removed."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return 0
    with open(p, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return 0
        data = p.read_bytes()
    return truncate_file(p, data.rfind(b"\n") + 1, fsync=fsync)


def atomic_write_bytes(path: str | Path, data: bytes, fsync: bool = True,
                       verify: Callable[[Path], None] | None = None) -> None:
    """Replace ``path`` by ``data`` atomically (see :func:`atomic_open`, also for ``verify``)."""
    with atomic_open(path, "wb", fsync=fsync, verify=verify) as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str, fsync: bool = True) -> Path:
    """Replace ``path`` by ``text`` atomically; returns the path."""
    with atomic_open(path, "w", fsync=fsync) as fh:
        fh.write(text)
    return Path(path)


def read_yaml_mapping(path: str | Path, what: str = "file", error: type[Exception] = ValueError,
                      allow_empty: bool = True) -> dict[str, Any]:
    """``yaml.safe_load`` a file that must hold a mapping (never executes anything).

    Raises ``error`` (named after ``what``, e.g. "task config") when the file is missing, not valid
    YAML / UTF-8, or holds something other than a mapping; an empty file is ``{}`` if ``allow_empty``.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise error(f"{what} file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{what} {p} is not valid YAML: {exc}") from exc
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        raise error(f"{what} {p} must hold a YAML mapping, got {type(data).__name__}")
    return data


def save_figure(fig: Any, path: str | Path, dpi: int | None = None) -> Path:
    """Write a matplotlib figure as PNG atomically (the caller closes it)."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return path
