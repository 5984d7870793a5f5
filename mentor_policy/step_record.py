"""Step records: one control tick in dm_env layout, and their compact wire/disk encoding (numpy only).

A step record is ``{"image": (C, H, W) uint8, "proprio": (P,) f32, "action": (A,) f32, "reward": float,
"discount": float, "is_first": bool, "is_last": bool, "intervention": bool, "success": bool}`` (``success``
optional, default False). The policy encodes each record once (:func:`encode_step_record`); it travels
as these bytes on the transition topic and lies in the learner's journal as the same bytes; the learner
reads only the header to route it (:func:`read_step_header`) and decodes the records once, when the
episode is finalised (:func:`decode_step_record`, :func:`records_to_episode`).
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np

from mentor_policy.replay import ReplayError


class RecordFormatError(ValueError):
    """Raised by :func:`decode_step_record` / :func:`encode_step_record` for malformed input."""


# Layout: MAGIC (3 bytes "MSR") | version (1 byte) | header_len (uint32 LE) | header JSON (utf-8)
#         | raw array bytes in header order | CRC32 of everything before it (uint32 LE).
_MAGIC = b"MSR"
_VERSION = 1
_PREFIX = struct.Struct("<3sBI")
_CRC = struct.Struct("<I")
_MAX_HEADER = 1 << 16
_ARRAY_FIELDS = {"image": (np.uint8, 3), "proprio": (np.float32, 1), "action": (np.float32, 1)}
_SCALAR_FIELDS = {"reward": float, "discount": float, "is_first": bool, "is_last": bool, "intervention": bool}
# optional scalars (default when absent: records written before they existed still decode)
_OPTIONAL_SCALARS = {"success": (bool, False)}  # success: the task's success flag for this step's observation


def _check_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
    if not isinstance(record, dict):
        raise RecordFormatError(f"a step record must be a dict, got {type(record).__name__}")
    missing = [k for k in (*_ARRAY_FIELDS, *_SCALAR_FIELDS) if k not in record]
    if missing:
        raise RecordFormatError(f"step record is missing fields {missing}")
    arrays = {}
    for name, (dtype, ndim) in _ARRAY_FIELDS.items():
        arr = np.asarray(record[name])
        if arr.ndim != ndim:
            raise RecordFormatError(f"step record {name!r} must have {ndim} dims, got shape {arr.shape}")
        if name == "image" and arr.dtype != np.uint8:
            raise RecordFormatError(f"step record 'image' must be uint8 (C, H, W), got {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=dtype)
        if name != "image" and not np.all(np.isfinite(arr)):
            raise RecordFormatError(f"step record {name!r} contains a non-finite value: {arr}")
        arrays[name] = arr
    for name in ("reward", "discount"):
        if not np.isfinite(float(record[name])):
            raise RecordFormatError(f"step record {name!r} is not finite: {record[name]!r}")
    return arrays


def encode_step_record(record: dict[str, Any], meta: dict[str, Any] | None = None) -> bytes:
    """Encode one step record (see docs/design.md) plus JSON-able ``meta`` into compact bytes.

    No pickle: a small JSON header (scalars, meta, array dtypes/shapes), the raw array bytes and a
    CRC32. Raises :class:`RecordFormatError` for missing fields, wrong dims, non-finite values or
    non-JSON meta.
    """
    arrays = _check_record(record)
    header = {
        "scalars": {**{k: cast(record[k]) for k, cast in _SCALAR_FIELDS.items()},
                    **{k: cast(record.get(k, default)) for k, (cast, default) in _OPTIONAL_SCALARS.items()}},
        "arrays": [[k, a.dtype.str, list(a.shape)] for k, a in arrays.items()],
        "meta": {} if meta is None else meta,
    }
    if not isinstance(header["meta"], dict):
        raise RecordFormatError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        hbytes = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise RecordFormatError(f"meta is not JSON-serialisable without NaN/inf: {exc}") from exc
    if len(hbytes) > _MAX_HEADER:
        raise RecordFormatError(f"record header is {len(hbytes)} bytes, limit {_MAX_HEADER}")
    body = b"".join([_PREFIX.pack(_MAGIC, _VERSION, len(hbytes)), hbytes, *(a.tobytes() for a in arrays.values())])
    return body + _CRC.pack(zlib.crc32(body))


def _parse_header(data: memoryview) -> tuple[dict[str, Any], int]:
    magic, version, hlen = _PREFIX.unpack_from(data, 0)
    if magic != _MAGIC:
        raise RecordFormatError(f"not a step record: bad magic {bytes(magic)!r}")
    if version != _VERSION:
        raise RecordFormatError(f"unsupported step record version {version} (this code reads {_VERSION})")
    end = _PREFIX.size + hlen
    if hlen > _MAX_HEADER or end > len(data) - _CRC.size:
        raise RecordFormatError(f"header length {hlen} does not fit in a {len(data)}-byte record")
    try:
        header = json.loads(bytes(data[_PREFIX.size:end]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordFormatError(f"step record header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict) or not {"scalars", "arrays", "meta"} <= header.keys():
        raise RecordFormatError("step record header lacks 'scalars', 'arrays' or 'meta'")
    return header, end


def _parse_arrays(data: memoryview, header: dict[str, Any], offset: int, copy: bool = True
                  ) -> dict[str, np.ndarray]:
    """The record's arrays (``copy=False``: only validate their specs and byte lengths; returns {})."""
    specs = header["arrays"]
    well_formed = isinstance(specs, list) and all(
        isinstance(s, list) and len(s) == 3 and isinstance(s[0], str) for s in specs
    )
    if not well_formed or sorted(s[0] for s in specs) != sorted(_ARRAY_FIELDS):
        raise RecordFormatError(f"step record must carry arrays {sorted(_ARRAY_FIELDS)}, header lists {specs!r}")
    out = {}
    for name, dtype_str, shape in specs:
        dtype = np.dtype(_ARRAY_FIELDS[name][0])
        if dtype_str != dtype.str or not isinstance(shape, list) or len(shape) != _ARRAY_FIELDS[name][1]:
            raise RecordFormatError(f"array {name!r} has dtype {dtype_str!r} / shape {shape!r}, expected {dtype.str}")
        if not all(isinstance(d, int) and 0 <= d <= 1 << 16 for d in shape):
            raise RecordFormatError(f"array {name!r} has an invalid shape {shape!r}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + nbytes > len(data) - _CRC.size:
            raise RecordFormatError(f"array {name!r} needs {nbytes} bytes but the record is truncated")
        if copy:
            out[name] = np.frombuffer(data[offset:offset + nbytes], dtype=dtype).reshape(shape).copy()
        offset += nbytes
    if offset != len(data) - _CRC.size:
        raise RecordFormatError(f"step record has {len(data) - _CRC.size - offset} unexpected trailing bytes")
    return out


def _parse_scalars(header: dict[str, Any]) -> dict[str, Any]:
    scalars = header["scalars"]
    known = set(_SCALAR_FIELDS) | set(_OPTIONAL_SCALARS)
    if not isinstance(scalars, dict) or not set(_SCALAR_FIELDS) <= set(scalars) <= known:
        raise RecordFormatError(f"step record scalars must be {sorted(_SCALAR_FIELDS)} (+ optional "
                                f"{sorted(_OPTIONAL_SCALARS)}), got {scalars!r}")
    out: dict[str, Any] = {}
    fields = {**_SCALAR_FIELDS, **{k: cast for k, (cast, _d) in _OPTIONAL_SCALARS.items()}}
    for name, cast in fields.items():
        value = scalars.get(name, _OPTIONAL_SCALARS.get(name, (None, None))[1])
        if not isinstance(value, (int, float)) or (cast is bool and not isinstance(value, bool)):
            raise RecordFormatError(f"step record scalar {name!r} has an invalid value {value!r}")
        out[name] = cast(value)
    if not isinstance(header["meta"], dict):
        raise RecordFormatError("step record meta must be a JSON object")
    return out


def _verified_view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(bytes(data) if not isinstance(data, (bytes, bytearray)) else data)
    if len(view) < _PREFIX.size + _CRC.size:
        raise RecordFormatError(f"step record too short: {len(view)} bytes")
    (crc,) = _CRC.unpack_from(view, len(view) - _CRC.size)
    if zlib.crc32(view[: len(view) - _CRC.size]) != crc:
        # Check the magic first so that garbage gets the more useful message.
        if bytes(view[:3]) != _MAGIC:
            raise RecordFormatError(f"not a step record: bad magic {bytes(view[:3])!r}")
        raise RecordFormatError("step record CRC mismatch (corrupt or truncated)")
    return view


def read_step_header(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(scalars, meta)`` of an encoded step record, without materialising its arrays: what a receiver
    needs to route, deduplicate and acknowledge a record it stores verbatim. The whole record is
    checked as :func:`decode_step_record` checks it (CRC, header, array specs and byte lengths)."""
    view = _verified_view(data)
    header, offset = _parse_header(view)
    _parse_arrays(view, header, offset, copy=False)
    return _parse_scalars(header), header["meta"]


def decode_step_record(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode bytes from :func:`encode_step_record` into ``(record, meta)``.

    Raises :class:`RecordFormatError` for anything malformed: short input, wrong magic/version,
    CRC mismatch, bad header, wrong array dtypes/shapes, truncated or surplus bytes.
    """
    view = _verified_view(data)
    header, offset = _parse_header(view)
    record: dict[str, Any] = _parse_arrays(view, header, offset)
    record.update(_parse_scalars(header))
    return record, header["meta"]


def records_to_episode(records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Convert consecutive step records (first one ``is_first``) into the episode layout.

    Row 0's action and reward are set to zero (dm_env: nothing led to the first step); ``success``
    holds each record's success flag (False for records written before records carried it). An episode
    whose last record is not ``is_last`` (e.g. recovered after a crash) is kept as truncated: its
    stored discounts are used as recorded. Raises :class:`ReplayError` for fewer than 2 records,
    a missing ``is_first``, an ``is_first``/``is_last`` in the middle, or inconsistent shapes.
    """
    if len(records) < 2:
        raise ReplayError(f"an episode needs at least 2 step records, got {len(records)}")
    if not records[0]["is_first"]:
        raise ReplayError("the first step record of an episode must have is_first=True")
    for i, r in enumerate(records[1:], start=1):
        if r["is_first"]:
            raise ReplayError(f"step record {i} has is_first=True inside an episode")
        if r["is_last"] and i != len(records) - 1:
            raise ReplayError(f"step record {i} has is_last=True but {len(records) - 1 - i} records follow")
    try:
        ep = {
            "image": np.stack([np.asarray(r["image"], dtype=np.uint8) for r in records]),
            "proprio": np.stack([np.asarray(r["proprio"], dtype=np.float32) for r in records]),
            "action": np.stack([np.asarray(r["action"], dtype=np.float32) for r in records]),
            "reward": np.array([r["reward"] for r in records], dtype=np.float32),
            "discount": np.array([r["discount"] for r in records], dtype=np.float32),
            "intervention": np.array([bool(r["intervention"]) for r in records], dtype=bool),
            # per-step success flags (not stored in the replay: the learner reads an episode's outcome from them)
            "success": np.array([bool(r.get("success", False)) for r in records], dtype=bool),
        }
    except ValueError as exc:
        raise ReplayError(f"step records have inconsistent shapes: {exc}") from exc
    ep["action"][0] = 0.0
    ep["reward"][0] = 0.0
    return ep


# --------------------------------------------------------------------------------------------
# Making step records and counting an episode: the one rule for the plain loop and the policy node
# --------------------------------------------------------------------------------------------
def make_step_record(image: np.ndarray, proprio: np.ndarray, action: np.ndarray, reward: float, *, first: bool,
                     last: bool, terminal: bool, intervention: bool = False, success: bool = False) -> dict[str, Any]:
    """The step record of one observation: ``image``/``proprio`` observed after ``action`` (zeros at the
    first step) earned ``reward`` (0 at the first step: nothing led to it); discount 0 only at a terminal."""
    return {"image": image, "proprio": proprio, "action": action, "reward": 0.0 if first else float(reward),
            "discount": 0.0 if terminal else 1.0, "is_first": bool(first), "is_last": bool(last),
            "intervention": bool(intervention), "success": bool(success) and not first}


class EpisodeTally:
    """An episode's outcome, counted one way everywhere: the return sums the rewards of the step records
    after the first, the episode succeeds when any of those steps succeeded, steps counts the actions."""

    def __init__(self) -> None:
        self.steps, self.episode_return, self.success = 0, 0.0, False

    def add(self, record: dict[str, Any]) -> None:
        """Count one step record (the first record of an episode adds nothing)."""
        if record["is_first"]:
            return
        self.steps += 1
        self.episode_return += float(record["reward"])
        self.success = self.success or bool(record.get("success", False))
