"""MCAP files of the graph's topics in the layout ``ros2 bag`` writes (no rclpy here).

An :class:`McapBag` holds serialized (CDR) ROS 2 messages as they came off DDS, one channel per topic,
with profile ``ros2``, schema encoding ``ros2msg`` and message encoding ``cdr``: what rosbag2's MCAP
storage plugin writes, so ``ros2 bag info/play`` on a ROS distro, Foxglove and the ``mcap`` /
``mcap-ros2-support`` readers all read it. A schema is the message's ``.msg`` text followed by every
type it uses (``MSG: pkg/Name`` sections), read from the ``share/<pkg>/msg/`` directories of the ROS
installation (``AMENT_PREFIX_PATH``, or this interpreter's prefix for the PyPI wheels).

Messages are written in zstd-compressed chunks (``chunk_size`` bytes before compression);
:meth:`McapBag.close` writes the summary. A recorder killed before that leaves a file without a summary:
:func:`read_complete_chunks` still reads every complete chunk (the one in progress is lost), and
``python -m mentor.bag repair killed.mcap fixed.mcap`` rewrites them into a file with a summary.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import sys
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple, Optional, Sequence

PRIMITIVES = frozenset({"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
                        "uint32", "int64", "uint64", "string", "wstring"})
_SEPARATOR = "=" * 80


class BagError(RuntimeError):
    """A message definition that cannot be found, or a bag that cannot be written."""


def share_dirs() -> list[Path]:
    """Where ROS packages keep their ``share/<pkg>/msg`` files: every AMENT_PREFIX_PATH entry, then this
    interpreter's prefix (the PyPI ROS wheels install there)."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    return [Path(p) / "share" for p in prefixes]


def _msg_file(type_name: str) -> Path:
    pkg, _, name = type_name.replace("/msg/", "/").partition("/")
    for share in share_dirs():
        path = share / pkg / "msg" / f"{name}.msg"
        if path.is_file():
            return path
    raise BagError(f"no definition of {type_name} in {[str(s) for s in share_dirs()]}")


def _field_types(text: str, package: str) -> list[str]:
    """The non-primitive types (``pkg/Name``) of a ``.msg`` text's fields, in order."""
    out = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) < 2:
            continue  # blank or comment (constants have primitive types: skipped below)
        base = re.sub(r"\[.*?\]$", "", parts[0])  # drop array bounds
        base = re.sub(r"<=\d+$", "", base)  # bounded strings
        if base in PRIMITIVES:
            continue
        out.append(base if "/" in base else f"{package}/{base}")
    return out


def message_definition(type_name: str) -> str:
    """The ``ros2msg`` schema of ``type_name`` (``sensor_msgs/msg/Image``): its text and its dependencies'."""
    main = _msg_file(type_name).read_text()
    sections, seen, todo = [], set(), list(_field_types(main, type_name.split("/")[0]))
    while todo:
        dep = todo.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        text = _msg_file(dep).read_text()
        sections.append(f"{_SEPARATOR}\nMSG: {dep}\n{text}")
        todo.extend(_field_types(text, dep.split("/")[0]))
    return "\n".join([main.rstrip("\n"), *sections])


def ros_type_name(msg_class: type) -> str:
    """``sensor_msgs/msg/Image`` for the rclpy message class ``sensor_msgs.msg.Image``."""
    module = msg_class.__module__.split(".")
    return f"{module[0]}/msg/{msg_class.__name__}"


class McapBag:
    """Writes serialized ROS 2 messages to ``path`` (see module docstring); use as a context manager."""

    def __init__(self, path: str | os.PathLike, library: str = "mentor recorder", chunk_size: int = 256 * 1024) -> None:
        from mcap.writer import CompressionType, Writer

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(self.path, "wb")
        self._writer = Writer(self._file, compression=CompressionType.ZSTD, chunk_size=chunk_size)
        self._writer.start(profile="ros2", library=library)
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._sequence: dict[int, int] = {}
        self.messages = 0

    def add_topic(self, topic: str, type_name: str) -> int:
        """Register ``topic`` carrying ``type_name``; returns its channel id (idempotent)."""
        if topic in self._channels:
            return self._channels[topic]
        if type_name not in self._schemas:
            self._schemas[type_name] = self._writer.register_schema(
                name=type_name, encoding="ros2msg", data=message_definition(type_name).encode())
        channel = self._writer.register_channel(topic=topic, message_encoding="cdr",
                                                schema_id=self._schemas[type_name])
        self._channels[topic] = channel
        return channel

    def write(self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None) -> None:
        """One serialized message of a registered topic, received at ``log_time_ns`` (ns since the epoch)."""
        channel = self._channels[topic]
        seq = self._sequence.get(channel, 0)
        self._sequence[channel] = seq + 1
        self._writer.add_message(channel_id=channel, log_time=int(log_time_ns), data=bytes(data),
                                 publish_time=int(publish_time_ns if publish_time_ns is not None else log_time_ns),
                                 sequence=seq)
        self.messages += 1

    def close(self) -> None:
        """Write the summary and close the file (idempotent)."""
        if self._file.closed:
            return
        try:
            self._writer.finish()
        finally:
            self._file.close()

    def __enter__(self) -> "McapBag":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BagMessage(NamedTuple):
    topic: str
    type_name: str  # e.g. sensor_msgs/msg/Image
    log_time_ns: int
    publish_time_ns: int
    data: bytes  # CDR, as on DDS


def read_complete_chunks(path: str | os.PathLike) -> Iterator[BagMessage]:
    """Every message of ``path`` in file order, reading linearly: works on a finished file and on one whose
    writer was killed (then up to the last complete chunk)."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    with open(path, "rb") as fh:
        reader = StreamReader(io.BufferedReader(fh), emit_chunks=False)
        try:
            for rec in reader.records:
                if isinstance(rec, Schema):
                    schemas[rec.id] = rec.name
                elif isinstance(rec, Channel):
                    channels[rec.id] = (rec.topic, schemas.get(rec.schema_id, ""))
                elif isinstance(rec, Message):
                    topic, type_name = channels[rec.channel_id]
                    yield BagMessage(topic, type_name, rec.log_time, rec.publish_time, rec.data)
        except (McapError, EOFError, ValueError):  # the truncated end of a killed recorder's file
            return


def repair(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Rewrite the readable messages of ``src`` (e.g. a killed recorder's file) into ``dst`` with a summary."""
    n = 0
    with McapBag(dst, library="mentor bag repair") as out:
        for m in read_complete_chunks(src):
            out.add_topic(m.topic, m.type_name)
            out.write(m.topic, m.data, m.log_time_ns, m.publish_time_ns)
            n += 1
    return n


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mentor.bag", description="Tools for the recorder's MCAP files.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("repair", help="rewrite a file without a summary (a killed recorder's) into a complete one")
    r.add_argument("src")
    r.add_argument("dst")
    args = ap.parse_args(argv)
    print(f"{repair(args.src, args.dst)} messages -> {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
