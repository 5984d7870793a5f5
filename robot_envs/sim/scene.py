"""SceneBuilder: what a task sees of the MuJoCo scene before the simulation starts.

A task adds bodies/geoms to ``worldbody`` (or to ``hand_body`` to attach a tool such as a peg to the
gripper) and assets to ``asset``. Names are MJCF names; lengths in metres; MJCF quaternions are
``w x y z``.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from robot_envs import transforms as tf


class SceneBuilder:
    """Wraps the MJCF element trees of a not-yet-started MujocoSimulator.

    Attributes:
        root: the <mujoco> element.
        worldbody: the <worldbody> element (robot base at the origin, z up).
        asset: the <asset> element.
        robot_prefix: name prefix of the robot's elements (e.g. "robot0_").
    """

    def __init__(self, root: ET.Element, worldbody: ET.Element, robot_prefix: str = "robot0_") -> None:
        self.root = root
        self.worldbody = worldbody
        asset = root.find("asset")
        self.asset = asset if asset is not None else ET.SubElement(root, "asset")
        self.robot_prefix = robot_prefix
        self.objects: list[str] = []  # bodies registered with add_object (reported by object_poses)

    @property
    def hand_body_name(self) -> str:
        """MJCF name of the gripper hand body (children move with the hand)."""
        return f"{self.robot_prefix}hand"

    @property
    def flange_body_name(self) -> str:
        """MJCF name of the last arm link (the flange)."""
        return f"{self.robot_prefix}fr3_link7"

    @property
    def hand_body(self) -> ET.Element:
        """The hand's <body> element; add children to attach them to the gripper."""
        return self.find_body(self.hand_body_name)

    def find_body(self, name: str) -> ET.Element:
        """The <body> element named ``name``; KeyError when absent."""
        for body in self.root.iter("body"):
            if body.get("name") == name:
                return body
        raise KeyError(f"no body named {name!r} in the scene")

    def add_object(self, name: str, pose=None, free: bool = True, parent: ET.Element | None = None) -> ET.Element:
        """Add a body and register it as a scene object (tracked by ``SimWorld.object_poses``).

        Args:
            name: unique body name.
            pose: (7,) [x,y,z,qx,qy,qz,qw] in the parent frame (world by default); None = origin.
            free: give the body a free joint (movable); False = static (still settable by
                ``SimWorld.set_object_pose`` through model.body_pos/quat).
            parent: parent element (default worldbody).
        Returns:
            The new <body> element: add <geom> children to it.
        """
        if name in self.objects:
            raise ValueError(f"object {name!r} already added")
        p = np.array([0, 0, 0, 0, 0, 0, 1.0]) if pose is None else tf.as_pose(pose, f"pose of {name}")
        body = ET.SubElement(parent if parent is not None else self.worldbody, "body", name=name,
                             pos=" ".join(f"{v:.6g}" for v in p[:3]),
                             quat=" ".join(f"{v:.6g}" for v in tf.xyzw_to_wxyz(p[3:])))
        if free:
            ET.SubElement(body, "freejoint", name=f"{name}_joint")
        self.objects.append(name)
        return body

    def add_table(self, height: float, size_xy: tuple[float, float], center_xy: tuple[float, float],
                  rgba: str = "0.55 0.45 0.35 1") -> None:
        """A static box table whose top surface is at z = ``height`` [m]."""
        if height <= 0:
            raise ValueError(f"table height must be > 0, got {height}")
        ET.SubElement(self.worldbody, "geom", name="table", type="box",
                      pos=f"{center_xy[0]} {center_xy[1]} {height / 2}",
                      size=f"{size_xy[0] / 2} {size_xy[1] / 2} {height / 2}", rgba=rgba)
