"""SimCamera: a Camera over one of a SimWorld's rendered cameras."""
from __future__ import annotations

import time

from robot_envs.camera import Camera, CameraError, CameraTimeout, Frame


class SimCamera(Camera):
    """Renders ``camera_name`` of a started SimWorld at its configured size (84x84 by default).

    ``read`` renders a fresh frame on demand (a simulator has no frame clock of its own). Args:
        world: a started ``SimWorld``.
        camera_name: one of ``world.camera_names``.
    """

    def __init__(self, world, camera_name: str) -> None:
        if camera_name not in world.camera_names:
            raise CameraError(f"sim world has no camera {camera_name!r}; configured: {world.camera_names}")
        self.world = world
        self.name = camera_name
        self._open = False

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def read(self, timeout_s: float = 1.0) -> Frame:
        """Render and return one frame; CameraTimeout when rendering took longer than ``timeout_s`` [s,
        wall clock] while the world ran on (franky-sim: the frame would be that much older than the arm).
        A world stepped by its caller (``advances_while_rendering`` False) does not move while it renders:
        a slow render there is only slow, and its frame is returned."""
        if not self._open:
            raise CameraError(f"sim camera {self.name!r} is not open (use it as a context manager)")
        t0 = time.monotonic()
        try:
            frame = self.world.render(self.name)
        except (RuntimeError, KeyError) as e:
            raise CameraError(f"sim camera {self.name!r} failed to render: {e}") from e
        elapsed = time.monotonic() - t0
        if elapsed > timeout_s and getattr(self.world, "advances_while_rendering", True):
            raise CameraTimeout(f"sim camera {self.name!r}: rendering took {elapsed:.3f} s > timeout {timeout_s} s")
        return frame
