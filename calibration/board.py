"""Calibration targets (ChArUco and plain checkerboard): image generation, detection, pose.

Board frame (OpenCV's convention): origin at the board's outer top-left corner as the board image is
printed, x to the right along the columns, y down along the rows, z = x cross y pointing *into* the
board (a camera that sees the printed side sits at negative z). Lengths in metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from calibration.geometry import rvec_tvec_to_matrix

_DICTIONARIES = {name: getattr(cv2.aruco, name) for name in dir(cv2.aruco) if name.startswith("DICT_")}


class BoardDetectionError(ValueError):
    """An image could not be used (wrong type/shape, too few corners found)."""


@dataclass
class BoardConfig:
    """Geometry of the printed calibration target."""

    kind: str = "charuco"  # "charuco" (chessboard + ArUco markers) or "checkerboard"
    squares_x: int = 7  # number of squares along the board x axis (columns)
    squares_y: int = 5  # number of squares along the board y axis (rows)
    square_length: float = 0.04  # side of one chessboard square as printed [m] (measure it!)
    marker_length: float = 0.03  # side of one ArUco marker [m] (charuco only; < square_length)
    dictionary: str = "DICT_5X5_100"  # OpenCV predefined ArUco dictionary name (charuco only)
    min_corners: int = 6  # fewest detected inner corners for an image to count

    def __post_init__(self) -> None:
        if self.kind not in ("charuco", "checkerboard"):
            raise ValueError(f"board kind must be 'charuco' or 'checkerboard', got {self.kind!r}")
        for name in ("squares_x", "squares_y"):
            v = getattr(self, name)
            if int(v) != v or v < 3:
                raise ValueError(f"{name} must be an integer >= 3, got {v!r}")
            setattr(self, name, int(v))
        if not (np.isfinite(self.square_length) and self.square_length > 0):
            raise ValueError(f"square_length must be a positive length in metres, got {self.square_length}")
        if self.kind == "charuco":
            if not (np.isfinite(self.marker_length) and 0 < self.marker_length < self.square_length):
                raise ValueError(f"marker_length must be in (0, square_length={self.square_length}), "
                                 f"got {self.marker_length}")
            if self.dictionary not in _DICTIONARIES:
                raise ValueError(f"unknown ArUco dictionary {self.dictionary!r}; e.g. DICT_4X4_50, DICT_5X5_100")
        if int(self.min_corners) != self.min_corners or self.min_corners < 4:
            raise ValueError(f"min_corners must be an integer >= 4 (solvePnP needs 4), got {self.min_corners}")

    @property
    def n_inner_corners(self) -> int:
        """Number of inner chessboard corners, (squares_x - 1) * (squares_y - 1)."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    @property
    def size_m(self) -> tuple[float, float]:
        """(width, height) of the square pattern in metres (without any printed margin)."""
        return self.squares_x * self.square_length, self.squares_y * self.square_length


@dataclass
class Detection:
    """Inner corners found in one image.

    ids: (N,) int32 inner-corner ids (row-major, id = row * (squares_x - 1) + col).
    image_points: (N, 2) float32 pixel coordinates (x = column, y = row; pixel centres at integers).
    object_points: (N, 3) float32 the same corners in the board frame [m].
    image_size: (width, height) of the image in pixels.
    """

    ids: np.ndarray
    image_points: np.ndarray
    object_points: np.ndarray
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class Board:
    """A calibration target: renders its image, finds its corners, estimates its pose."""

    def __init__(self, cfg: BoardConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else BoardConfig()
        c = self.cfg
        nx, ny = c.squares_x - 1, c.squares_y - 1
        grid = np.stack(np.meshgrid(np.arange(1, nx + 1), np.arange(1, ny + 1)), -1).reshape(-1, 2)
        self._corners = np.concatenate([grid * c.square_length, np.zeros((len(grid), 1))], 1).astype(np.float32)
        if c.kind == "charuco":
            dictionary = cv2.aruco.getPredefinedDictionary(_DICTIONARIES[c.dictionary])
            self._charuco = cv2.aruco.CharucoBoard((c.squares_x, c.squares_y), c.square_length,
                                                   c.marker_length, dictionary)
            self._detector = cv2.aruco.CharucoDetector(self._charuco)
        else:
            self._charuco = None
            self._detector = None

    @property
    def corner_points(self) -> np.ndarray:
        """(N, 3) float32 all inner corners in the board frame [m], row-major (index = id)."""
        return self._corners.copy()

    def image(self, px_per_square: int, margin_px: int = 0) -> np.ndarray:
        """The printable board as a grayscale uint8 image of
        (squares_y * px_per_square + 2 * margin_px, squares_x * px_per_square + 2 * margin_px) pixels,
        the pattern exactly filling the area inside a white margin (so 1 px = square_length / px_per_square).
        """
        if int(px_per_square) < 10 or int(margin_px) < 0:
            raise ValueError(f"need px_per_square >= 10 and margin_px >= 0, got {px_per_square}, {margin_px}")
        c, p, m = self.cfg, int(px_per_square), int(margin_px)
        w, h = c.squares_x * p, c.squares_y * p
        if self._charuco is not None:
            pattern = self._charuco.generateImage((w, h), marginSize=0, borderBits=1)
        else:
            rows, cols = np.indices((h, w))
            pattern = np.where(((rows // p) + (cols // p)) % 2 == 0, 0, 255).astype(np.uint8)
        return cv2.copyMakeBorder(pattern, m, m, m, m, cv2.BORDER_CONSTANT, value=255)

    def detect(self, image: np.ndarray) -> Detection | None:
        """Find the board's inner corners in an RGB (H, W, 3) or grayscale (H, W) uint8 image.

        Returns None when fewer than ``min_corners`` corners are found (the board is not usable in
        this image); raises BoardDetectionError for a malformed image.
        """
        gray = _to_gray(image)
        size = (gray.shape[1], gray.shape[0])
        if self._detector is not None:
            corners, ids, _, _ = self._detector.detectBoard(gray)
            if ids is None or corners is None or len(ids) < self.cfg.min_corners:
                return None
            ids = ids.reshape(-1).astype(np.int32)
            pts = corners.reshape(-1, 2).astype(np.float32)
        else:
            found = self._detect_checkerboard(gray)
            if found is None:
                return None
            ids, pts = found
        return Detection(ids=ids, image_points=pts, object_points=self._corners[ids].copy(), image_size=size)

    def _detect_checkerboard(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        pattern = (self.cfg.squares_x - 1, self.cfg.squares_y - 1)
        ok, corners = cv2.findChessboardCornersSB(gray, pattern, flags=cv2.CALIB_CB_EXHAUSTIVE)
        if not ok or corners is None:
            return None
        pts = corners.reshape(-1, 2).astype(np.float32)
        # A plain checkerboard is ambiguous under 180 deg rotation; orient it so that corner 0 is the
        # one nearest the image's top-left (the board must be shown roughly upright).
        if np.linalg.norm(pts[0]) > np.linalg.norm(pts[-1]):
            pts = pts[::-1].copy()
        return np.arange(len(pts), dtype=np.int32), pts

    def estimate_pose(self, det: Detection, K: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, float]:
        """Pose of the board in the camera (OpenCV camera frame: x right, y down, z forward).

        Args:
            det: a detection of this board.
            K: (3, 3) camera matrix [px]. dist: (5,) or more OpenCV distortion coefficients.
        Returns:
            (T_camera_board (4, 4) float64 [m], rms reprojection error [px]).
        """
        if len(det) < 4:
            raise BoardDetectionError(f"need at least 4 corners for a pose, got {len(det)}")
        K = np.asarray(K, np.float64)
        dist = np.asarray(dist, np.float64).reshape(-1)
        ok, rvec, tvec = cv2.solvePnP(det.object_points, det.image_points, K, dist, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            raise BoardDetectionError("solvePnP failed for this detection")
        rvec, tvec = cv2.solvePnPRefineLM(det.object_points, det.image_points, K, dist, rvec, tvec)
        proj, _ = cv2.projectPoints(det.object_points, rvec, tvec, K, dist)
        rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - det.image_points) ** 2, axis=1))))
        return rvec_tvec_to_matrix(rvec, tvec), rms


def _to_gray(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise BoardDetectionError(f"expected a uint8 numpy image, got {type(image).__name__} "
                                  f"{getattr(image, 'dtype', '')}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    raise BoardDetectionError(f"expected an (H, W, 3) RGB or (H, W) gray image, got shape {image.shape}")


__all__ = ["Board", "BoardConfig", "BoardDetectionError", "Detection"]
