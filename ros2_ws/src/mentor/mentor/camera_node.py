"""camera_node: one RealSense camera (robot_envs.RealSenseCamera) -> ``<camera>/color/image_raw``.

Publishes sensor_msgs/Image rgb8 (the camera's processed output size) and ``<camera>/color/camera_info``
at the camera's frame rate, stamped with the camera's hardware time. Fails at start with the
library's clear error when no device / the wrong serial is attached.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from . import qos, wire
from .common import run_node
from .params import declare_config


@dataclass
class CameraNodeConfig:
    camera_name: str = field(default="front", metadata={"help": "camera name: topic prefix and frame id"})
    serial: str = field(default="", metadata={"help": "RealSense serial ('' = the only connected device)"})
    read_timeout_s: float = field(default=1.0, metadata={"help": "a read slower than this is an error [s]"})

    def __post_init__(self) -> None:
        if not self.camera_name or self.read_timeout_s <= 0:
            raise ValueError("camera_name must be set and read_timeout_s > 0")


class CameraNode(Node):
    def __init__(self) -> None:
        super().__init__("camera")
        self.cfg = declare_config(self, CameraNodeConfig)
        from robot_envs.realsense import RealSenseCamera, RealSenseCameraConfig
        # stream size / rate / crop / output size: RealSenseCameraConfig fields as realsense.* parameters
        rs_cfg = declare_config(self, RealSenseCameraConfig, prefix="realsense.",
                                overrides={"name": self.cfg.camera_name, "serial": self.cfg.serial or None})
        self.camera = RealSenseCamera(rs_cfg)
        self.camera.open()
        name = self.cfg.camera_name
        self.frame_id = f"{name}_color_optical_frame"
        self.pub_img = self.create_publisher(Image, f"{name}/color/image_raw", qos.SENSOR)
        self.pub_info = self.create_publisher(CameraInfo, f"{name}/color/camera_info", qos.SENSOR)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        self.exit_requested, self.exit_code = False, 0

    def _loop(self) -> None:
        try:
            while not self.stop.is_set():
                frame = self.camera.read(self.cfg.read_timeout_s)
                self.pub_img.publish(wire.image_to_msg(frame.image, frame.stamp, self.frame_id))
                h, w = frame.image.shape[:2]
                self.pub_info.publish(wire.camera_info_msg(w, h, frame.stamp, self.frame_id))
        except Exception as exc:  # noqa: BLE001 - fatal: the node exits non-zero, the runner stops the graph
            self.get_logger().fatal(f"camera {self.cfg.camera_name} failed: {exc}")
            self.exit_code, self.exit_requested = 2, True

    def shutdown(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2.0)
        self.camera.close()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
