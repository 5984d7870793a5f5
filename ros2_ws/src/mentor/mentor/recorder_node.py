"""recorder_node: the graph's topics into an MCAP file (``ros2 bag``'s storage format), as they are on DDS.

Subscribes, serialized (no decoding), to every camera's ``image_raw`` and ``camera_info``, the actions
(``policy/action``, ``teleop/action``), the robot state (``robot/current_pose``, ``robot/joint_states``,
``robot/wrench``), the episode events (``episode/status``, ``episode/reward``, ``episode/summary``), the
policy's timing and weights version, and writes each message as received into
``<bag_dir>/<node>_<UTC time>.mcap`` (:class:`mentor.bag.McapBag`: ros2 profile, CDR messages,
``ros2msg`` schemas). Log time = receive time; publish time = the message's header stamp where it has one.
The file gets its summary when the node stops (Ctrl-C, the graph ending); see :mod:`mentor.bag` for a kill.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float32MultiArray, Float64MultiArray, Int64, String

from . import qos
from .bag import McapBag, ros_type_name
from .common import run_node
from .params import declare_config

#: (relative topic, message class, QoS) of everything but the cameras
TOPICS = (
    ("policy/action", Float32MultiArray, qos.COMMAND), ("teleop/action", Float32MultiArray, qos.COMMAND),
    ("robot/current_pose", PoseStamped, qos.STATE), ("robot/joint_states", JointState, qos.STATE),
    ("robot/wrench", WrenchStamped, qos.STATE), ("robot/status", DiagnosticArray, qos.STATE),
    ("episode/status", String, qos.LATCHED), ("episode/reward", Float32MultiArray, qos.STATE),
    ("episode/summary", String, qos.STATE), ("policy/timing", Float64MultiArray, qos.STATE),
    ("policy/weights_version", Int64, qos.LATCHED),
)
_STAMPED = (Image, CameraInfo, PoseStamped, JointState, WrenchStamped, DiagnosticArray)  # header first


def header_stamp_ns(data: bytes) -> int:
    """The header stamp [ns] of a serialized message whose first field is a std_msgs/Header: CDR puts a
    4-byte encapsulation header (byte 1: 1 = little endian) before ``stamp.sec`` (int32) and ``.nanosec``
    (uint32). Read from the bytes: an image is not decoded (copied) just for its stamp. 0 when too short."""
    if len(data) < 12:
        return 0
    sec, nanosec = struct.unpack("<iI" if data[1] & 1 else ">iI", data[4:12])
    return sec * 1_000_000_000 + nanosec


@dataclass
class RecorderNodeConfig:
    bag_dir: str = field(default="runs/default/bags", metadata={"help": "directory of the MCAP files"})
    cameras: list[str] = field(default_factory=lambda: ["front"], metadata={"help": "cameras whose frames are "
                                                                                     "recorded"})
    images: bool = field(default=True, metadata={"help": "record camera frames (false: everything else only)"})

    def __post_init__(self) -> None:
        if not self.bag_dir:
            raise ValueError("bag_dir must name a directory")


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.cfg = declare_config(self, RecorderNodeConfig)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        ns = self.get_namespace().strip("/").replace("/", "_")
        self.bag = McapBag(Path(self.cfg.bag_dir) / f"{ns + '_' if ns else ''}graph_{stamp}.mcap")
        topics = list(TOPICS)
        for cam in self.cfg.cameras:
            topics.append((f"{cam}/color/camera_info", CameraInfo, qos.SENSOR))
            if self.cfg.images:
                topics.append((f"{cam}/color/image_raw", Image, qos.SENSOR))
        for topic, msg_class, profile in topics:
            name = self.resolve_topic_name(topic)
            self.bag.add_topic(name, ros_type_name(msg_class))
            self.create_subscription(msg_class, topic, lambda data, n=name, c=msg_class: self._write(n, c, data),
                                     profile, raw=True)
        self.get_logger().info(f"recording {len(topics)} topics into {self.bag.path}")

    def _write(self, topic: str, msg_class: type, data: bytes) -> None:
        now = time.time_ns()
        stamp = header_stamp_ns(data) if msg_class in _STAMPED else 0
        self.bag.write(topic, data, now, stamp or now)

    def shutdown(self) -> None:
        self.bag.close()
        print(f"recorder: {self.bag.messages} messages in {self.bag.path}", flush=True)


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
