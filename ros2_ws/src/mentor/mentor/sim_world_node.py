"""sim_world_node: hosts a robot_envs SimWorld (franky-sim FR3 + MuJoCo task scene) in-process.

Serves the libfranka protocol on ``hostname`` (robot_node connects to it as to a real arm),
publishes each rendered camera on ``<camera>/color/image_raw`` (sensor_msgs/Image rgb8) and
``<camera>/color/camera_info``, every scene object's pose on ``sim/objects/<name>/pose``
(PoseStamped, world frame = robot base frame) and offers ``sim/reset_scene`` (std_srvs/Trigger:
the task randomises the object poses).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from . import qos, wire  # noqa: E402
from .common import load_task, run_node, set_thread_realtime  # noqa: E402
from .params import declare_config  # noqa: E402


@dataclass
class SimWorldNodeConfig:
    task: str = field(default="reach", metadata={"help": "task whose scene is built (robot_envs.tasks)"})
    task_config: str = field(default="", metadata={"help": "YAML file overriding the task config"})
    use_sim: bool = field(default=True, metadata={"help": "always true for this node (shared graph parameter)"})
    hostname: str = field(default="auto", metadata={"help": "loopback address franky-sim serves on ('auto' = a "
                                                    "free 127.x.y.z, announced on sim/hostname)"})
    cameras: list[str] = field(default_factory=lambda: ["front"], metadata={"help": "simulated camera names"})
    camera_hz: float = field(default=10.0, metadata={"help": "render + publish rate of every camera [Hz]"})
    pose_hz: float = field(default=20.0, metadata={"help": "publish rate of object poses [Hz]"})
    frame_id: str = field(default="base", metadata={"help": "frame of object poses"})
    seed: int = field(default=0, metadata={"help": "seed of scene randomisation"})
    camera_realtime_priority: int = field(default=0, metadata={"help": (
        "SCHED_FIFO priority (1-99) of the thread that renders and publishes the cameras, so that, like a hardware "
        "camera, its frame clock is not disturbed by the learner (the physics thread keeps normal scheduling); "
        "0 = normal. Needs root, CAP_SYS_NICE or an rtprio limit")})

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError("cameras must name at least one camera")
        if self.camera_hz <= 0 or self.pose_hz <= 0:
            raise ValueError(f"camera_hz and pose_hz must be > 0, got {self.camera_hz}, {self.pose_hz}")
        if not 0 <= self.camera_realtime_priority <= 99:
            raise ValueError(f"camera_realtime_priority must be in 0..99, got {self.camera_realtime_priority}")


class SimWorldNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_world")
        self.cfg = declare_config(self, SimWorldNodeConfig)
        self.task = load_task(self.cfg.task, self.cfg.task_config)
        self.rng = np.random.default_rng(self.cfg.seed)
        self.world = self._start_world()
        self.object_names = list(self.task.object_names)
        #: camera -> row-major 3x3 K [px] for camera_info (fixed for the world's lifetime)
        self.camera_k = {c: self.world.camera_intrinsics(c).ravel().tolist() for c in self.cfg.cameras}
        self.pub_img = {c: self.create_publisher(Image, f"{c}/color/image_raw", qos.SENSOR) for c in self.cfg.cameras}
        self.pub_info = {c: self.create_publisher(CameraInfo, f"{c}/color/camera_info", qos.SENSOR)
                         for c in self.cfg.cameras}
        self.pub_obj = {n: self.create_publisher(wire.PoseStamped, f"sim/objects/{n}/pose", qos.STATE)
                        for n in self.object_names}
        self.create_service(Trigger, "sim/reset_scene", self._srv_reset)
        self.pub_host = self.create_publisher(String, "sim/hostname", qos.LATCHED)
        self.pub_host.publish(String(data=self.world.hostname))
        self.create_timer(1.0 / self.cfg.camera_hz, self._publish_frames)
        self.create_timer(1.0 / self.cfg.pose_hz, self._publish_objects)
        if self.cfg.camera_realtime_priority:
            # the executor (this thread) renders; the physics thread already runs and keeps normal scheduling,
            # the GL worker the first render starts inherits the priority
            set_thread_realtime(self.cfg.camera_realtime_priority)
        self.get_logger().info(f"sim world serving franky on {self.world.hostname}; cameras {self.cfg.cameras}; "
                               f"objects {self.object_names}" + (f"; cameras at SCHED_FIFO "
                               f"{self.cfg.camera_realtime_priority}" if self.cfg.camera_realtime_priority else ""))

    def _start_world(self):
        from robot_envs.env import default_sim_cameras
        from robot_envs.sim.world import SimWorld, SimWorldConfig
        # the same camera placements as robot_envs.make(backend="sim"): a policy sees the same images in both
        cams = default_sim_cameras(self.cfg.cameras, self.task.cfg.image_size)
        cfg = SimWorldConfig(hostname=self.cfg.hostname, cameras=cams)
        world = SimWorld(cfg, scene_hooks=[self.task.add_to_scene])
        world.start()
        world.reset_scene(self.task.randomise_scene(self.rng))
        return world

    def _publish_frames(self) -> None:
        for cam in self.cfg.cameras:
            stamp = time.time()  # capture time: the scene is snapshotted first, then rendered (like an exposure)
            try:
                frame = self.world.render(cam)
            except Exception as exc:  # noqa: BLE001 - logged, next tick retries
                self.get_logger().error(f"render of {cam} failed: {exc}", throttle_duration_sec=5.0)
                continue
            frame_id = f"{cam}_color_optical_frame"
            self.pub_img[cam].publish(wire.image_to_msg(frame.image, stamp, frame_id))
            h, w = frame.image.shape[:2]
            self.pub_info[cam].publish(wire.camera_info_msg(w, h, stamp, frame_id, self.camera_k[cam]))

    def _publish_objects(self) -> None:
        if not self.object_names:
            return
        stamp = time.time()
        for name, pose in self.world.object_poses(self.object_names).items():
            self.pub_obj[name].publish(wire.pose_to_msg(pose, stamp, self.cfg.frame_id))

    def _srv_reset(self, _req, resp):
        try:
            poses = self.task.randomise_scene(self.rng)
            self.world.reset_scene(poses)
            resp.success, resp.message = True, f"scene reset: {sorted(poses)}"
        except Exception as exc:  # noqa: BLE001 - reported to the caller and logged
            self.get_logger().error(f"scene reset failed: {exc}")
            resp.success, resp.message = False, f"scene reset failed: {exc}"
        return resp

    def shutdown(self) -> None:
        try:
            self.world.close()
        except Exception as exc:  # noqa: BLE001
            self.get_logger().error(f"closing the sim world failed: {exc}")


def main(args: list[str] | None = None) -> int:
    return run_node(SimWorldNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
