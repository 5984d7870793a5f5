"""Conversions between numpy arrays and standard ROS 2 messages (no cv_bridge needed).

Images are RGB uint8 ``(H, W, 3)`` frames; poses are ``(7,)`` float64 ``[x, y, z, qx, qy, qz, qw]``
in metres / unit quaternions; actions are ``(A,)`` float32 normalised to ``[-1, 1]``.
Every decoder validates its input and raises :class:`WireError` with a message that names the
problem, so nodes can log it and drop the message instead of crashing.
"""
from __future__ import annotations

import array
import json

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray, MultiArrayDimension, String, UInt8MultiArray


class WireError(ValueError):
    """A message could not be converted (wrong encoding, size, NaN, corrupt payload)."""


def stamp_from_seconds(t: float) -> Time:
    """ROS time from seconds (float)."""
    sec = int(np.floor(t))
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


def seconds_from_stamp(stamp: Time) -> float:
    """Seconds (float) from a ROS time."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def image_to_msg(image: np.ndarray, stamp: float, frame_id: str) -> Image:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image rgb8; ``stamp`` in seconds."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise WireError(f"image must be (H, W, 3) uint8 RGB, got {getattr(image, 'shape', None)} "
                        f"{getattr(image, 'dtype', type(image).__name__)}")
    msg = Image()
    msg.header.stamp = stamp_from_seconds(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def msg_to_image(msg: Image, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """sensor_msgs/Image (rgb8 or bgr8) -> (H, W, 3) uint8 RGB copy.

    Raises WireError for other encodings, a data length that does not match height*step, or a size
    different from ``expected_hw`` (H, W) when given.
    """
    if msg.encoding not in ("rgb8", "bgr8"):
        raise WireError(f"image encoding {msg.encoding!r} not supported (need rgb8 or bgr8)")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0 or step < 3 * w:
        raise WireError(f"image header invalid: height={h} width={w} step={step}")
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, (bytes, np.ndarray)) else msg.data,
                         dtype=np.uint8)
    if data.size != h * step:
        raise WireError(f"image data has {data.size} bytes, header says {h}x{step}={h * step}")
    if expected_hw is not None and (h, w) != tuple(expected_hw):
        raise WireError(f"image size {h}x{w} differs from the expected {expected_hw[0]}x{expected_hw[1]}")
    img = data.reshape(h, step)[:, : 3 * w].reshape(h, w, 3)
    if msg.encoding == "bgr8":
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def camera_info_msg(width: int, height: int, stamp: float, frame_id: str,
                    k: list[float] | None = None) -> CameraInfo:
    """A CameraInfo with the image size and (if known) the 3x3 intrinsics K (row-major, pixels)."""
    msg = CameraInfo()
    msg.header.stamp = stamp_from_seconds(stamp)
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(width), int(height)
    if k is not None:
        if len(k) != 9:
            raise WireError(f"K must have 9 entries, got {len(k)}")
        msg.k = [float(v) for v in k]
    return msg


def array_to_msg(values: np.ndarray) -> Float32MultiArray:
    """1-D float array -> Float32MultiArray (one dimension labelled 'n')."""
    arr = np.asarray(values, dtype=np.float32).reshape(-1)
    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="n", size=int(arr.size), stride=int(arr.size))]
    msg.data = arr.tolist()
    return msg


def msg_to_action(msg: Float32MultiArray, action_dim: int) -> np.ndarray:
    """Float32MultiArray -> (action_dim,) float32; rejects wrong length and NaN/inf (WireError).

    Values outside [-1, 1] are NOT rejected here: they are clipped by the caller (and logged).
    """
    arr = np.asarray(msg.data, dtype=np.float32).reshape(-1)
    if arr.size != action_dim:
        raise WireError(f"action has {arr.size} values, expected {action_dim}")
    if not np.all(np.isfinite(arr)):
        raise WireError(f"action contains NaN/inf: {arr.tolist()}")
    return arr


def pose_to_msg(pose: np.ndarray, stamp: float, frame_id: str) -> PoseStamped:
    """(7,) [x, y, z, qx, qy, qz, qw] (m, unit quaternion) -> PoseStamped in ``frame_id``."""
    p = np.asarray(pose, dtype=np.float64).reshape(-1)
    if p.size != 7:
        raise WireError(f"pose must have 7 values, got {p.size}")
    msg = PoseStamped()
    msg.header.stamp = stamp_from_seconds(stamp)
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in p[:3])
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in p[3:])
    return msg


def msg_to_pose(msg: PoseStamped) -> np.ndarray:
    """PoseStamped -> (7,) float64 [x, y, z, qx, qy, qz, qw]."""
    p, o = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z, o.x, o.y, o.z, o.w], dtype=np.float64)


def bytes_to_msg(payload: bytes) -> UInt8MultiArray:
    """Raw bytes -> UInt8MultiArray.

    Filled from an ``array.array('B')``: the message's setter checks a numpy array element by
    element (measured: 7.4 s for 43 MB) but takes an array.array as one buffer (0.13 s).
    """
    msg = UInt8MultiArray()
    msg.data = array.array("B", payload)
    return msg


def msg_to_bytes(msg: UInt8MultiArray) -> bytes:
    """UInt8MultiArray -> bytes."""
    data = msg.data
    if isinstance(data, (array.array, np.ndarray)):
        return data.tobytes()
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    return np.asarray(data, dtype=np.uint8).tobytes()


def json_to_msg(obj: dict) -> String:
    """dict -> std_msgs/String carrying compact JSON."""
    return String(data=json.dumps(obj, separators=(",", ":"), sort_keys=True))


def msg_to_json(msg: String, schema: "JsonSchema | None" = None) -> dict:
    """std_msgs/String JSON -> dict (WireError if not a JSON object, or if it does not fit ``schema``)."""
    try:
        obj = json.loads(msg.data)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"not JSON: {exc}: {msg.data[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise WireError(f"expected a JSON object, got {type(obj).__name__}")
    if schema is not None:
        schema.check(obj)
    return obj


# -- JSON message schemas ------------------------------------------------------------------------
#: episode phases published on episode/status
RESETTING, WAITING_FOR_HUMAN, RUNNING, ENDED, DONE = "RESETTING", "WAITING_FOR_HUMAN", "RUNNING", "ENDED", "DONE"
EPISODE_PHASES = (RESETTING, WAITING_FOR_HUMAN, RUNNING, ENDED, DONE)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and bool(np.isfinite(v))


_CHECKS = {"int": (_is_int, "an integer"), "number": (_is_number, "a finite number"),
           "bool": (lambda v: isinstance(v, bool), "true/false"), "str": (lambda v: isinstance(v, str), "a string")}


class JsonSchema:
    """Required fields of a JSON message and their kinds ("int", "number", "bool", "str"); extra
    fields are allowed (newer senders). ``choices`` restricts a field's values, ``minimum`` an int's."""

    def __init__(self, topic: str, fields: dict[str, str], choices: dict | None = None,
                 minimum: dict | None = None, values: str | None = None) -> None:
        self.topic, self.fields, self.values = topic, fields, values
        self.choices, self.minimum = choices or {}, minimum or {}

    def check(self, obj: dict) -> None:
        """Raise WireError naming the first field that is missing or of the wrong kind."""
        for name, kind in self.fields.items():
            if name not in obj:
                raise WireError(f"{self.topic}: missing field {name!r} (got {sorted(obj)[:10]})")
            ok, what = _CHECKS[kind]
            if not ok(obj[name]):
                raise WireError(f"{self.topic}: field {name!r} must be {what}, got {obj[name]!r}")
            if name in self.choices and obj[name] not in self.choices[name]:
                raise WireError(f"{self.topic}: field {name!r} must be one of {list(self.choices[name])}, "
                                f"got {obj[name]!r}")
            if name in self.minimum and obj[name] < self.minimum[name]:
                raise WireError(f"{self.topic}: field {name!r} must be >= {self.minimum[name]}, got {obj[name]!r}")
        if self.values is not None:  # a mapping whose every value has one kind (e.g. learner/ack)
            ok, what = _CHECKS[self.values]
            bad = next((k for k, v in obj.items() if not ok(v)), None)
            if bad is not None:
                raise WireError(f"{self.topic}: value of {bad!r} must be {what}, got {obj[bad]!r}")


EPISODE_STATUS = JsonSchema("episode/status", {"episode_id": "int", "phase": "str", "step": "int",
                                               "return": "number", "success": "bool"},
                            choices={"phase": EPISODE_PHASES}, minimum={"episode_id": 0, "step": 0})
EPISODE_SUMMARY = JsonSchema("episode/summary", {"episode_id": "int", "steps": "int", "return": "number",
                                                 "success": "bool"}, minimum={"episode_id": 0, "steps": 0})
LEARNER_ACK = JsonSchema("learner/ack", {}, values="int")  # transition source -> highest acknowledged seq
