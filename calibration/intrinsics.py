"""Camera intrinsics: from RealSense factory calibration, or estimated from board images with OpenCV.

Conventions: K is the (3, 3) pinhole matrix in pixels with OpenCV's pixel coordinates (x = column,
y = row, pixel centres at integers); ``dist`` are OpenCV "plumb_bob" coefficients
``[k1, k2, p1, p2, k3]`` (longer vectors are accepted as OpenCV orders them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import cv2
import numpy as np

from calibration.board import Board, Detection


class IntrinsicsError(ValueError):
    """Intrinsics could not be built or estimated (bad input, too few usable images, unsupported model)."""


@dataclass
class CameraIntrinsics:
    """A calibrated pinhole camera."""

    K: np.ndarray  # (3, 3) camera matrix [px]
    dist: np.ndarray  # (N,) OpenCV distortion coefficients, N in {4, 5, 8, 12, 14}
    width: int  # image width the calibration holds for [px]
    height: int  # image height the calibration holds for [px]
    rms_px: float | None = None  # RMS reprojection error of the estimate [px]; None for factory values
    source: str = "unknown"  # where the values come from: "realsense", "charuco", "checkerboard", "file"

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64)
        self.dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        if self.K.shape != (3, 3) or not np.all(np.isfinite(self.K)):
            raise IntrinsicsError(f"K must be a finite (3, 3) matrix, got {self.K.tolist()}")
        if not (self.K[0, 0] > 0 and self.K[1, 1] > 0) or not np.allclose(self.K[2], [0, 0, 1]):
            raise IntrinsicsError(f"K must have positive focal lengths and last row [0, 0, 1], got {self.K.tolist()}")
        if self.dist.size not in (4, 5, 8, 12, 14) or not np.all(np.isfinite(self.dist)):
            raise IntrinsicsError(f"dist must hold 4, 5, 8, 12 or 14 finite values, got {self.dist.tolist()}")
        if int(self.width) != self.width or int(self.height) != self.height or self.width < 1 or self.height < 1:
            raise IntrinsicsError(f"image size must be positive integers, got {self.width}x{self.height}")
        self.width, self.height = int(self.width), int(self.height)
        if self.rms_px is not None and not (np.isfinite(self.rms_px) and self.rms_px >= 0):
            raise IntrinsicsError(f"rms_px must be None or a finite value >= 0, got {self.rms_px}")

    @property
    def fx(self) -> float:
        """Focal length along x [px]."""
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        """Focal length along y [px]."""
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        """Principal point x [px]."""
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        """Principal point y [px]."""
        return float(self.K[1, 2])


# ---------------------------------------------------------------------------------------------
# RealSense factory intrinsics
# ---------------------------------------------------------------------------------------------
_BROWN = ("brown_conrady", "modified_brown_conrady")


def _model_name(model) -> str:
    name = getattr(model, "name", None) or str(model)
    return name.split(".")[-1].lower()


def from_realsense(intr, allow_inverse_brown_conrady: bool = False) -> CameraIntrinsics:
    """Convert a ``pyrealsense2.intrinsics`` (or any object with the same attributes: width, height,
    fx, fy, ppx, ppy, model, coeffs) into :class:`CameraIntrinsics`.

    RealSense's Brown-Conrady coefficients are ``[k1, k2, p1, p2, k3]`` like OpenCV's. The colour
    stream of D400 cameras reports ``inverse_brown_conrady`` (usually with all-zero coefficients, which
    is exact). Non-zero inverse coefficients are not OpenCV's model: they are refused unless
    ``allow_inverse_brown_conrady`` (then used as an approximation). Fisheye models are refused.
    """
    try:
        w, h = int(intr.width), int(intr.height)
        fx, fy, ppx, ppy = float(intr.fx), float(intr.fy), float(intr.ppx), float(intr.ppy)
        coeffs = np.asarray(list(intr.coeffs), dtype=np.float64)
        model = _model_name(intr.model)
    except (AttributeError, TypeError, ValueError) as exc:
        raise IntrinsicsError(f"not a RealSense intrinsics object (need width, height, fx, fy, ppx, ppy, "
                              f"model, coeffs): {exc}") from exc
    if coeffs.size < 5:
        raise IntrinsicsError(f"RealSense coeffs must have 5 values, got {coeffs.tolist()}")
    coeffs = coeffs[:5]
    zero = not np.any(coeffs)
    if model == "none" or zero:
        dist = np.zeros(5)
    elif model in _BROWN:
        dist = coeffs.copy()
    elif model == "inverse_brown_conrady" and allow_inverse_brown_conrady:
        dist = coeffs.copy()
    else:
        raise IntrinsicsError(f"RealSense distortion model {model!r} with coefficients {coeffs.tolist()} "
                              f"has no exact OpenCV equivalent; calibrate with a board instead")
    K = np.array([[fx, 0.0, ppx], [0.0, fy, ppy], [0.0, 0.0, 1.0]])
    return CameraIntrinsics(K=K, dist=dist, width=w, height=h, rms_px=None, source="realsense")


def read_realsense_intrinsics(serial: str | None, width: int, height: int, fps: int = 30,
                              timeout_s: float = 5.0) -> CameraIntrinsics:
    """Factory intrinsics of a connected RealSense colour stream (starts and stops a pipeline).

    Raises IntrinsicsError with the list of connected devices when the camera is not found.
    """
    try:
        import pyrealsense2 as rs
    except ImportError as exc:
        raise IntrinsicsError("pyrealsense2 is not installed (pip install pyrealsense2)") from exc
    devices = [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]
    if not devices:
        raise IntrinsicsError("no RealSense camera is connected (check the USB 3 cable and udev rules)")
    if serial is not None and serial not in devices:
        raise IntrinsicsError(f"RealSense {serial!r} not found; connected: {devices}")
    cfg = rs.config()
    if serial is not None:
        cfg.enable_device(serial)
    cfg.enable_stream(rs.stream.color, int(width), int(height), rs.format.rgb8, int(fps))
    pipe = rs.pipeline()
    profile = pipe.start(cfg)
    try:
        pipe.wait_for_frames(int(timeout_s * 1000))
        stream = profile.get_stream(rs.stream.color).as_video_stream_profile()
        return from_realsense(stream.get_intrinsics())
    finally:
        pipe.stop()


# ---------------------------------------------------------------------------------------------
# Estimation from board images
# ---------------------------------------------------------------------------------------------
@dataclass
class IntrinsicsCalibConfig:
    """Options of the board-based intrinsics estimate."""

    min_views: int = 4  # fewest usable images (more, with varied tilts, give better results)
    fix_k3: bool = True  # keep k3 = 0 (recommended unless the lens is wide-angle)
    zero_tangent: bool = False  # keep p1 = p2 = 0
    fix_aspect_ratio: bool = False  # force fx == fy (square pixels)
    max_rms_px: float = 1.0  # an estimate above this RMS reprojection error [px] is reported as failed

    def __post_init__(self) -> None:
        if int(self.min_views) != self.min_views or self.min_views < 3:
            raise ValueError(f"min_views must be an integer >= 3, got {self.min_views}")
        if not (np.isfinite(self.max_rms_px) and self.max_rms_px > 0):
            raise ValueError(f"max_rms_px must be > 0, got {self.max_rms_px}")

    def flags(self) -> int:
        """The cv2.calibrateCamera flags these options stand for."""
        f = 0
        if self.fix_k3:
            f |= cv2.CALIB_FIX_K3
        if self.zero_tangent:
            f |= cv2.CALIB_ZERO_TANGENT_DIST
        if self.fix_aspect_ratio:
            f |= cv2.CALIB_FIX_ASPECT_RATIO
        return f


@dataclass
class IntrinsicsReport:
    """Result of :func:`calibrate_from_images`."""

    intrinsics: CameraIntrinsics  # the estimate
    per_view_rms_px: list[float]  # RMS reprojection error of each used view [px]
    used: list[str] = field(default_factory=list)  # names of the images that were used
    rejected: dict[str, str] = field(default_factory=dict)  # image name -> why it was not used


def calibrate_from_detections(detections: list[Detection], image_size: tuple[int, int],
                              cfg: IntrinsicsCalibConfig | None = None,
                              source: str = "charuco") -> tuple[CameraIntrinsics, list[float]]:
    """Estimate K and distortion from board detections in several views (cv2.calibrateCamera).

    Args:
        detections: one Detection per usable view (all of the same camera and resolution).
        image_size: (width, height) [px].
    Returns:
        (intrinsics with rms_px set, per-view RMS reprojection errors [px]).
    """
    cfg = cfg if cfg is not None else IntrinsicsCalibConfig()
    if len(detections) < cfg.min_views:
        raise IntrinsicsError(f"need at least {cfg.min_views} usable board views, got {len(detections)}")
    w, h = int(image_size[0]), int(image_size[1])
    for i, d in enumerate(detections):
        if tuple(d.image_size) != (w, h):
            raise IntrinsicsError(f"view {i} has size {d.image_size}, expected {(w, h)}: one camera mode only")
    obj = [d.object_points.reshape(-1, 1, 3).astype(np.float32) for d in detections]
    img = [d.image_points.reshape(-1, 1, 2).astype(np.float32) for d in detections]
    # With CALIB_FIX_ASPECT_RATIO only the fx/fy ratio of the input matrix is used (here 1).
    rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, (w, h), np.eye(3), None, flags=cfg.flags())
    per_view = []
    for o, p, rv, tv in zip(obj, img, rvecs, tvecs):
        proj, _ = cv2.projectPoints(o, rv, tv, K, dist)
        per_view.append(float(np.sqrt(np.mean(np.sum((proj - p).reshape(-1, 2) ** 2, axis=1)))))
    intr = CameraIntrinsics(K=K, dist=dist.reshape(-1)[:5] if dist.size >= 5 else dist, width=w, height=h,
                            rms_px=float(rms), source=source)
    return intr, per_view


def calibrate_from_images(images: Iterable[tuple[str, np.ndarray]], board: Board,
                          cfg: IntrinsicsCalibConfig | None = None,
                          progress: Callable[[str], None] | None = None) -> IntrinsicsReport:
    """Detect the board in named RGB/gray uint8 images and estimate the intrinsics.

    Args:
        images: iterable of (name, image) pairs; all images of one camera at one resolution.
        board: the target shown in the images.
        progress: optional callback receiving one human-readable line per image.
    Raises:
        IntrinsicsError when too few images show the board, or the RMS error exceeds ``cfg.max_rms_px``.
    """
    cfg = cfg if cfg is not None else IntrinsicsCalibConfig()
    say = progress if progress is not None else (lambda _msg: None)
    dets, used, rejected, size = [], [], {}, None
    for name, image in images:
        det = board.detect(image)
        if det is None:
            rejected[name] = f"fewer than {board.cfg.min_corners} board corners found"
        elif size is not None and det.image_size != size:
            rejected[name] = f"size {det.image_size} differs from the first image's {size}"
        else:
            size = det.image_size
            dets.append(det)
            used.append(name)
        say(f"{name}: " + (f"{len(det)} corners" if name in used else f"skipped ({rejected[name]})"))
    if size is None:
        raise IntrinsicsError(f"the board was not found in any image ({len(rejected)} tried)")
    intr, per_view = calibrate_from_detections(dets, size, cfg, source=board.cfg.kind)
    if intr.rms_px > cfg.max_rms_px:
        raise IntrinsicsError(f"calibration RMS reprojection error {intr.rms_px:.3f} px exceeds "
                              f"max_rms_px={cfg.max_rms_px}; per-view errors: "
                              + ", ".join(f"{n}={e:.2f}" for n, e in zip(used, per_view)))
    return IntrinsicsReport(intrinsics=intr, per_view_rms_px=per_view, used=used, rejected=rejected)
