"""Intel RealSense colour camera through pyrealsense2 (imported lazily; needs the system libusb-1.0).

Frames: ``(H, W, 3)`` uint8 RGB after ``crop`` + resize to ``output_size`` (``camera.preprocess``).
Stamps: the device's hardware timestamp in the *global time* domain (librealsense maps the camera
clock onto the host clock), in seconds since the epoch, with ``Frame.stamp_source="hardware"``; if
the device cannot report global time the host arrival time (``time.monotonic()``) is used instead
and ``stamp_source="monotonic"``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from robot_envs.camera import Camera, CameraError, CameraTimeout, Frame, preprocess

logger = logging.getLogger(__name__)

_FORMATS = ("rgb8", "bgr8")


@dataclass
class RealSenseCameraConfig:
    """One RealSense colour stream."""

    name: str = "front"  # camera name (frames carry it; must match the task's camera names)
    serial: str | None = None  # device serial number; None = the only connected device (error if several)
    width: int = 640  # colour stream width [px]
    height: int = 480  # colour stream height [px]
    fps: int = 30  # colour stream rate [Hz]
    color_format: str = "rgb8"  # stream pixel format: rgb8 | bgr8 (converted to RGB)
    warmup_frames: int = 30  # frames discarded after start so auto-exposure settles
    crop: tuple[int, ...] | None = None  # (x, y, w, h) pixel rectangle of the stream image; None = full
    output_size: tuple[int, ...] = (84, 84)  # (H, W) of the delivered frames [px]
    reconnect_attempts: int = 3  # pipeline restarts tried after a failed read before giving up
    reconnect_delay_s: float = 0.5  # wait between restarts [s]
    global_time: bool = True  # ask the device for global-time (host-synchronised) hardware timestamps

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"name must be non-empty without spaces, got {self.name!r}")
        if self.serial is not None:
            self.serial = str(self.serial).strip()
            if not self.serial:
                raise ValueError("serial must be None (the only device) or a non-empty serial number")
        for key in ("width", "height", "fps"):
            if int(getattr(self, key)) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.color_format not in _FORMATS:
            raise ValueError(f"color_format must be one of {_FORMATS}, got {self.color_format!r}")
        if self.warmup_frames < 0 or self.reconnect_attempts < 0 or self.reconnect_delay_s < 0:
            raise ValueError("warmup_frames, reconnect_attempts and reconnect_delay_s must be >= 0")
        if self.crop is not None:
            if len(self.crop) != 4:
                raise ValueError(f"crop must be (x, y, w, h), got {self.crop}")
            x, y, w, h = (int(v) for v in self.crop)
            if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > self.width or y + h > self.height:
                raise ValueError(f"crop {self.crop} does not fit in the {self.width}x{self.height} stream")
            self.crop = (x, y, w, h)
        if len(self.output_size) != 2 or min(int(v) for v in self.output_size) <= 0:
            raise ValueError(f"output_size must be (H, W) > 0, got {self.output_size}")
        self.output_size = (int(self.output_size[0]), int(self.output_size[1]))


def color_buffer_to_rgb(buffer, width: int, height: int, color_format: str) -> np.ndarray:
    """Interpret a raw colour buffer (bytes / array of ``height * width * 3`` uint8) as ``(H, W, 3)`` RGB."""
    if color_format not in _FORMATS:
        raise ValueError(f"color_format must be one of {_FORMATS}, got {color_format!r}")
    if isinstance(buffer, (bytes, bytearray, memoryview)):
        arr = np.frombuffer(buffer, dtype=np.uint8)
    else:
        arr = np.asarray(buffer)
    if arr.dtype != np.uint8:
        raise ValueError(f"colour buffer must hold uint8 pixels, got {arr.dtype}")
    if arr.size != height * width * 3:
        raise ValueError(f"colour buffer has {arr.size} bytes, expected {height}x{width}x3 = {height * width * 3}")
    image = arr.reshape(height, width, 3)
    return np.ascontiguousarray(image[:, :, ::-1] if color_format == "bgr8" else image)


def process_color(buffer, cfg: RealSenseCameraConfig) -> np.ndarray:
    """Raw stream buffer -> delivered ``(output H, output W, 3)`` uint8 RGB (format, crop, resize)."""
    rgb = color_buffer_to_rgb(buffer, cfg.width, cfg.height, cfg.color_format)
    return preprocess(rgb, cfg.crop, cfg.output_size)


def _import_rs():
    try:
        import pyrealsense2 as rs
    except ImportError as e:
        raise CameraError(f"pyrealsense2 cannot be imported ({e}); pip install pyrealsense2 and make sure the "
                          "system libusb-1.0 is installed (Debian/Ubuntu: apt-get install libusb-1.0-0)") from e
    return rs


def list_serials() -> list[str]:
    """Serial numbers of the RealSense devices connected now (empty list when none)."""
    rs = _import_rs()
    return [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]


def select_serial(wanted: str | None, found: list[str]) -> str:
    """The serial to open: ``wanted`` if connected, else the only device; CameraError naming what was found."""
    if not found:
        raise CameraError("no RealSense device found (is it plugged into a USB3 port and not used by another process?)"
                          + (f"; wanted serial {wanted}" if wanted else ""))
    if wanted is None:
        if len(found) > 1:
            raise CameraError(f"several RealSense devices found {found}; set serial to choose one")
        return found[0]
    if wanted not in found:
        raise CameraError(f"RealSense serial {wanted} not found; connected devices: {found}")
    return wanted


class RealSenseCamera(Camera):
    """A RealSense colour stream (see module docstring). Use as a context manager."""

    def __init__(self, cfg: RealSenseCameraConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else RealSenseCameraConfig()
        self.name = self.cfg.name
        self.serial: str | None = None
        self._rs = None
        self._pipeline = None
        self._seq = 0

    def open(self) -> None:
        """Select the device by serial, start the colour stream and discard the warm-up frames."""
        self._rs = _import_rs()
        self.serial = select_serial(self.cfg.serial, list_serials())
        self._start()
        for _ in range(self.cfg.warmup_frames):
            self._wait(timeout_s=5.0)

    def _start(self) -> None:
        rs = self._rs
        config = rs.config()
        config.enable_device(self.serial)
        fmt = getattr(rs.format, self.cfg.color_format)
        config.enable_stream(rs.stream.color, self.cfg.width, self.cfg.height, fmt, self.cfg.fps)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(config)
        except RuntimeError as e:
            raise CameraError(f"RealSense {self.serial} ({self.name}) could not start {self.cfg.width}x"
                              f"{self.cfg.height}@{self.cfg.fps} {self.cfg.color_format}: {e}") from e
        if self.cfg.global_time:
            sensor = profile.get_device().first_color_sensor()
            if sensor.supports(rs.option.global_time_enabled):
                sensor.set_option(rs.option.global_time_enabled, 1.0)
        self._pipeline = pipeline

    def close(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError as e:  # already stopped / unplugged: nothing left to release
                logger.warning("stopping RealSense %s: %s", self.serial, e)
            self._pipeline = None

    def _wait(self, timeout_s: float):
        try:
            frames = self._pipeline.wait_for_frames(int(max(timeout_s, 0.001) * 1000))
        except RuntimeError as e:
            raise CameraTimeout(f"RealSense {self.serial} ({self.name}): no frame within {timeout_s} s: {e}") from e
        color = frames.get_color_frame()
        if not color:
            raise CameraError(f"RealSense {self.serial} ({self.name}) delivered a frameset without colour")
        return color

    def read(self, timeout_s: float = 1.0) -> Frame:
        """Next colour frame, processed; on a failed read restart the pipeline (bounded) and retry."""
        if self._pipeline is None:
            raise CameraError(f"RealSense camera {self.name!r} is not open")
        last: Exception | None = None
        for attempt in range(self.cfg.reconnect_attempts + 1):
            try:
                return self._to_frame(self._wait(timeout_s))
            except CameraError as e:
                last = e
                if attempt < self.cfg.reconnect_attempts:
                    logger.warning("RealSense %s read failed (%s); restarting (%d/%d)", self.serial, e,
                                   attempt + 1, self.cfg.reconnect_attempts)
                    self._restart()
        raise CameraError(f"RealSense {self.serial} ({self.name}) failed after {self.cfg.reconnect_attempts} "
                          f"restarts: {last}") from last

    def _restart(self) -> None:
        self.close()
        time.sleep(self.cfg.reconnect_delay_s)
        self.serial = select_serial(self.serial, list_serials())
        self._start()

    def _to_frame(self, color) -> Frame:
        image = process_color(np.asanyarray(color.get_data()), self.cfg)
        hardware = color.get_frame_timestamp_domain() == self._rs.timestamp_domain.global_time
        stamp = color.get_timestamp() / 1000.0 if hardware else time.monotonic()
        self._seq = max(self._seq + 1, int(color.get_frame_number()))
        return Frame(image=image, stamp=stamp, seq=self._seq, camera=self.name,
                     stamp_source="hardware" if hardware else "monotonic")
