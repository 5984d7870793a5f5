"""Hand-eye calibration from board poses (solvePnP) and robot TCP poses.

Frames: ``base`` = robot base; ``tcp`` = the frame of ``RobotState.ee_pose`` (franky's end-effector
frame); ``camera`` = the OpenCV optical frame of the camera (x right, y down, z forward);
``board`` = the board frame of :mod:`calibration.board`. ``T_a_b`` maps points in b to a.

Two set-ups, both solved as the robot-world-hand-eye problem ``A_i X = Z B_i`` over samples i:

* ``eye_to_hand`` (camera fixed in the cell, board held by the gripper):
  ``T_base_tcp_i T_tcp_board = T_base_camera T_camera_board_i``; X = T_tcp_board, Z = T_base_camera.
* ``eye_in_hand`` (camera on the flange, board fixed in the cell):
  ``T_base_tcp_i T_tcp_camera = T_base_board T_board_camera_i``; X = T_tcp_camera, Z = T_base_board.

The solver is a closed-form linear estimate (rotation from the Kronecker null space, then
translation by least squares) refined by Levenberg-Marquardt on the pose residuals, and finally (when
the samples carry their detected corners, as HandEyeCollector stores them) on the corners'
reprojection errors through the whole chain, which weights every measurement by its real precision
(a single view's board rotation is far noisier than its corners). It is written here because
the OpenCV 5.0 Python wheel does not expose ``cv2.calibrateHandEye`` /
``cv2.calibrateRobotWorldHandEye``. Residuals (the chain's inconsistency over samples, i.e. how far
apart the two sides of the equation land) are reported in millimetre and degree terms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.board import Board
from calibration.geometry import (
    check_transform,
    exp_so3,
    invert,
    log_so3,
    make_transform,
    pose_to_matrix,
    project_to_rotation,
    rotation_angle,
)
from calibration.intrinsics import CameraIntrinsics

MODES = ("eye_to_hand", "eye_in_hand")


class HandEyeError(ValueError):
    """Hand-eye calibration failed (bad input, too few or degenerate samples)."""


@dataclass
class HandEyeConfig:
    """Options of the hand-eye collector and solver."""

    mode: str = "eye_to_hand"  # "eye_to_hand" (camera fixed, board on gripper) or "eye_in_hand"
    min_samples: int = 5  # fewest accepted samples before solving (10-20 recommended)
    max_reprojection_px: float = 1.5  # a sample whose board pose reprojects worse than this is rejected [px]
    min_rotation_spread_deg: float = 15.0  # solve refuses if TCP orientations span less than this [deg]
    rotation_weight_m: float = 0.1  # metres of residual one radian of rotation residual counts as
    refine_iterations: int = 30  # Gauss-Newton iterations after the linear estimate (0 = none)
    refine_reprojection: bool = True  # finally minimise the corners' reprojection error over all samples

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if int(self.min_samples) != self.min_samples or self.min_samples < 3:
            raise ValueError(f"min_samples must be an integer >= 3, got {self.min_samples}")
        for name in ("max_reprojection_px", "rotation_weight_m"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v}")
        if not (np.isfinite(self.min_rotation_spread_deg) and self.min_rotation_spread_deg >= 0):
            raise ValueError(f"min_rotation_spread_deg must be >= 0, got {self.min_rotation_spread_deg}")
        if int(self.refine_iterations) != self.refine_iterations or self.refine_iterations < 0:
            raise ValueError(f"refine_iterations must be an integer >= 0, got {self.refine_iterations}")

    @property
    def camera_frames(self) -> tuple[str, str]:
        """(parent, child) frame names of the camera transform this mode estimates."""
        return ("base", "camera") if self.mode == "eye_to_hand" else ("tcp", "camera")

    @property
    def board_frames(self) -> tuple[str, str]:
        """(parent, child) frame names of the board transform estimated alongside."""
        return ("tcp", "board") if self.mode == "eye_to_hand" else ("base", "board")


@dataclass
class HandEyeSample:
    """One robot pose with the board pose seen at that moment."""

    T_base_tcp: np.ndarray  # (4, 4) TCP in the base frame (from RobotState.ee_pose)
    T_camera_board: np.ndarray  # (4, 4) board in the camera optical frame (solvePnP)
    reprojection_px: float = 0.0  # RMS reprojection error of the board pose [px]
    n_corners: int = 0  # number of board corners used for the board pose
    image_points: np.ndarray | None = None  # (M, 2) detected corners [px]; enables reprojection refinement
    object_points: np.ndarray | None = None  # (M, 3) the same corners in the board frame [m]

    def __post_init__(self) -> None:
        self.T_base_tcp = check_transform(self.T_base_tcp, "T_base_tcp")
        self.T_camera_board = check_transform(self.T_camera_board, "T_camera_board")
        if (self.image_points is None) != (self.object_points is None):
            raise HandEyeError("give both image_points and object_points, or neither")
        if self.image_points is not None:
            self.image_points = np.asarray(self.image_points, np.float64).reshape(-1, 2)
            self.object_points = np.asarray(self.object_points, np.float64).reshape(-1, 3)
            if len(self.image_points) != len(self.object_points) or len(self.image_points) < 4:
                raise HandEyeError(f"need >= 4 matching image/object points, got {len(self.image_points)} "
                                   f"and {len(self.object_points)}")


@dataclass
class HandEyeResult:
    """The estimated transforms and how consistent the samples are with them."""

    mode: str  # "eye_to_hand" or "eye_in_hand"
    T_camera: np.ndarray  # (4, 4) camera transform: T_base_camera (eye_to_hand) or T_tcp_camera (eye_in_hand)
    T_board: np.ndarray  # (4, 4) board transform: T_tcp_board (eye_to_hand) or T_base_board (eye_in_hand)
    residual_translation_m: np.ndarray  # (N,) per-sample translation inconsistency [m]
    residual_rotation_rad: np.ndarray  # (N,) per-sample rotation inconsistency [rad]
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. linear-estimate residuals)

    @property
    def camera_frames(self) -> tuple[str, str]:
        """(parent, child) names of T_camera."""
        return HandEyeConfig(mode=self.mode).camera_frames

    @property
    def board_frames(self) -> tuple[str, str]:
        """(parent, child) names of T_board."""
        return HandEyeConfig(mode=self.mode).board_frames

    def summary(self) -> dict[str, float]:
        """RMS and max pose-chain residuals in mm and degrees, the sample count, and (after the
        reprojection refinement) the corners' RMS reprojection error through the chain [px]."""
        t, r = self.residual_translation_m, self.residual_rotation_rad
        out = {"n_samples": int(t.size),
               "translation_rms_mm": float(1e3 * np.sqrt(np.mean(t ** 2))),
               "translation_max_mm": float(1e3 * t.max()),
               "rotation_rms_deg": float(np.rad2deg(np.sqrt(np.mean(r ** 2)))),
               "rotation_max_deg": float(np.rad2deg(r.max()))}
        if "reprojection_rms_px" in self.extra:
            out["reprojection_rms_px"] = float(self.extra["reprojection_rms_px"])
        return out


# ---------------------------------------------------------------------------------------------
# AX = ZB solver
# ---------------------------------------------------------------------------------------------
def _linear_ax_zb(A: list[np.ndarray], B: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    rows = []
    I3 = np.eye(3)
    for a, b in zip(A, B):
        # vec(Ra Rx) = (I (x) Ra) vec(Rx); vec(Rz Rb) = (Rb^T (x) I) vec(Rz)   (column-major vec)
        rows.append(np.hstack([np.kron(I3, a[:3, :3]), -np.kron(b[:3, :3].T, I3)]))
    _, _, Vt = np.linalg.svd(np.vstack(rows))
    v = Vt[-1]
    Rx, Rz = v[:9].reshape(3, 3, order="F"), v[9:].reshape(3, 3, order="F")
    det = np.linalg.det(Rx)
    if abs(det) < 1e-12:
        raise HandEyeError("degenerate samples: the rotation system has no unique solution "
                           "(vary the TCP orientation about at least two axes)")
    s = np.sign(det) * abs(det) ** (-1.0 / 3.0)
    Rx, Rz = project_to_rotation(s * Rx), project_to_rotation(s * Rz)
    # Translation: Ra tx + ta = Rz tb + tz  ->  [Ra, -I] [tx; tz] = Rz tb - ta
    M = np.vstack([np.hstack([a[:3, :3], -I3]) for a in A])
    y = np.concatenate([Rz @ b[:3, 3] - a[:3, 3] for a, b in zip(A, B)])
    sol, *_ = np.linalg.lstsq(M, y, rcond=None)
    return make_transform(Rx, sol[:3]), make_transform(Rz, sol[3:])


def _residuals(A, B, X, Z, w_rot: float) -> np.ndarray:
    out = []
    for a, b in zip(A, B):
        E = invert(Z @ b) @ a @ X
        out.append(np.concatenate([E[:3, 3], w_rot * log_so3(E[:3, :3])]))
    return np.concatenate(out)


def _perturb(T: np.ndarray, d: np.ndarray) -> np.ndarray:
    return T @ make_transform(exp_so3(d[:3]), d[3:])


def _levenberg_marquardt(residuals, X: np.ndarray, Z: np.ndarray, iterations: int, lam: float, eps: float,
                         step_tol: float, rel_tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``|residuals(X, Z)|^2`` over the two (4, 4) poses X and Z (12 unknowns, right-perturbed).

    Forward-difference Jacobian with step ``eps``; damping ``lam`` divided by 10 on an accepted step,
    multiplied by 10 on a rejected one (gives up above 1e6). Stops when a step is shorter than
    ``step_tol`` or lowers the squared error by less than ``rel_tol`` of it.
    """
    r = residuals(X, Z)
    for _ in range(iterations):
        J = np.empty((r.size, 12))
        for k in range(12):
            d = np.zeros(12)
            d[k] = eps
            J[:, k] = (residuals(_perturb(X, d[:6]), _perturb(Z, d[6:])) - r) / eps
        H, g = J.T @ J, J.T @ r
        step = -np.linalg.solve(H + lam * np.diag(np.diag(H) + 1e-12), g)
        Xn, Zn = _perturb(X, step[:6]), _perturb(Z, step[6:])
        rn = residuals(Xn, Zn)
        if rn @ rn < r @ r:
            converged = np.linalg.norm(step) < step_tol or (r @ r - rn @ rn) < rel_tol * (r @ r)
            X, Z, r, lam = Xn, Zn, rn, max(lam / 10, 1e-9)
            if converged:
                break
        else:
            lam *= 10
            if lam > 1e6:
                break
    return X, Z


def _refine(A, B, X, Z, w_rot: float, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Least squares on the AX=ZB pose residuals (translation [m], rotation scaled by ``w_rot`` [m/rad])."""
    return _levenberg_marquardt(lambda X_, Z_: _residuals(A, B, X_, Z_, w_rot), X, Z, iterations,
                                lam=1e-6, eps=1e-7, step_tol=1e-10)


def solve_ax_zb(A: list[np.ndarray], B: list[np.ndarray], rotation_weight_m: float = 0.1,
                refine_iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``A_i X = Z B_i`` for rigid (4, 4) X and Z (least squares over all i).

    Args:
        A, B: equal-length lists (N >= 3) of (4, 4) rigid transforms.
        rotation_weight_m: metres one radian of rotation error counts as in the refinement.
        refine_iterations: Gauss-Newton (Levenberg-Marquardt damped) iterations; 0 = linear only.
    Returns:
        (X, Z) as (4, 4) float64 arrays.
    """
    if len(A) != len(B):
        raise HandEyeError(f"A and B must have the same length, got {len(A)} and {len(B)}")
    if len(A) < 3:
        raise HandEyeError(f"need at least 3 pose pairs, got {len(A)}")
    A = [check_transform(a, f"A[{i}]") for i, a in enumerate(A)]
    B = [check_transform(b, f"B[{i}]") for i, b in enumerate(B)]
    X, Z = _linear_ax_zb(A, B)
    if refine_iterations > 0:
        X, Z = _refine(A, B, X, Z, rotation_weight_m, refine_iterations)
    return X, Z


def _ab_from_samples(samples: list[HandEyeSample], mode: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    A = [s.T_base_tcp for s in samples]
    if mode == "eye_to_hand":
        B = [s.T_camera_board for s in samples]
    else:
        B = [invert(s.T_camera_board) for s in samples]
    return A, B


def rotation_spread_deg(transforms: list[np.ndarray]) -> float:
    """Largest rotation angle [deg] between any two of the given (4, 4) transforms."""
    best = 0.0
    for i in range(len(transforms)):
        for j in range(i + 1, len(transforms)):
            best = max(best, rotation_angle(transforms[i][:3, :3].T @ transforms[j][:3, :3]))
    return float(np.rad2deg(best))


def calibrate_hand_eye(samples: list[HandEyeSample], cfg: HandEyeConfig | None = None,
                       intrinsics: CameraIntrinsics | None = None) -> HandEyeResult:
    """Estimate the camera (and board) transforms from samples; see the module docstring for the frames.

    With ``intrinsics`` and samples that carry their corners (as HandEyeCollector stores them) and
    ``cfg.refine_reprojection``, the pose-space estimate is refined by minimising the corners'
    reprojection error through the whole chain (weights every measurement by its real precision:
    single-view board rotations are much noisier than their image points suggest).
    """
    cfg = cfg if cfg is not None else HandEyeConfig()
    if len(samples) < cfg.min_samples:
        raise HandEyeError(f"need at least {cfg.min_samples} samples, got {len(samples)}")
    spread = rotation_spread_deg([s.T_base_tcp for s in samples])
    if spread < cfg.min_rotation_spread_deg:
        raise HandEyeError(f"TCP orientations span only {spread:.1f} deg (< {cfg.min_rotation_spread_deg}); "
                           f"tilt the gripper about several axes between samples")
    A, B = _ab_from_samples(samples, cfg.mode)
    X, Z = solve_ax_zb(A, B, cfg.rotation_weight_m, cfg.refine_iterations)
    extra = {"rotation_spread_deg": spread}
    if cfg.refine_reprojection and intrinsics is not None and all(s.image_points is not None for s in samples):
        rms0 = _reprojection_rms(samples, cfg.mode, X, Z, intrinsics)
        X, Z = _refine_reprojection(samples, cfg.mode, X, Z, intrinsics, max(cfg.refine_iterations, 5))
        extra.update(reprojection_rms_px_before=rms0,
                     reprojection_rms_px=_reprojection_rms(samples, cfg.mode, X, Z, intrinsics))
    t_res, r_res = [], []
    for a, b in zip(A, B):
        E = invert(Z @ b) @ a @ X
        t_res.append(float(np.linalg.norm(E[:3, 3])))
        r_res.append(rotation_angle(E[:3, :3]))
    T_camera, T_board = (Z, X) if cfg.mode == "eye_to_hand" else (X, Z)
    return HandEyeResult(mode=cfg.mode, T_camera=T_camera, T_board=T_board,
                         residual_translation_m=np.asarray(t_res), residual_rotation_rad=np.asarray(r_res),
                         extra=extra)


def _camera_board(mode: str, T_base_tcp: np.ndarray, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Predicted T_camera_board of one sample from the unknowns (see the module docstring)."""
    if mode == "eye_to_hand":
        return invert(Z) @ T_base_tcp @ X
    return invert(X) @ invert(T_base_tcp) @ Z


def _reprojection_residuals(samples, mode, X, Z, intr: CameraIntrinsics) -> np.ndarray:
    out = []
    for s in samples:
        T = _camera_board(mode, s.T_base_tcp, X, Z)
        rv = log_so3(T[:3, :3])
        proj, _ = cv2.projectPoints(s.object_points, rv, T[:3, 3], intr.K, intr.dist)
        out.append((proj.reshape(-1, 2) - s.image_points).reshape(-1))
    return np.concatenate(out)


def _reprojection_rms(samples, mode, X, Z, intr) -> float:
    r = _reprojection_residuals(samples, mode, X, Z, intr)
    return float(np.sqrt(np.mean(r ** 2) * 2))  # RMS of the 2-D point errors [px]


def _refine_reprojection(samples, mode, X, Z, intr, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on the corner reprojection errors of all samples (12 unknowns)."""
    return _levenberg_marquardt(lambda X_, Z_: _reprojection_residuals(samples, mode, X_, Z_, intr), X, Z,
                                iterations, lam=1e-4, eps=1e-6, step_tol=1e-12, rel_tol=1e-10)


# ---------------------------------------------------------------------------------------------
# Live front-end API
# ---------------------------------------------------------------------------------------------
@dataclass
class SampleOutcome:
    """What happened to one offered sample."""

    accepted: bool  # True when the sample was stored
    reason: str  # human-readable explanation (corners and error, or why it was rejected)
    n_corners: int = 0  # board corners found
    reprojection_px: float | None = None  # RMS reprojection error of the board pose [px]


def _pose_matrix(robot_pose) -> np.ndarray:
    pose = getattr(robot_pose, "ee_pose", robot_pose)  # a RobotState or a (7,) pose
    arr = np.asarray(pose, dtype=np.float64)
    if arr.shape == (4, 4):
        return check_transform(arr, "robot pose")
    if arr.shape != (7,):
        raise HandEyeError(f"robot pose must be a RobotState, a (7,) [x,y,z,qx,qy,qz,qw] pose or a (4,4) "
                           f"matrix, got shape {arr.shape}")
    return pose_to_matrix(arr)


class HandEyeCollector:
    """Collects (image, robot pose) pairs for a live or offline front-end, then solves.

    Usage: ``c = HandEyeCollector(board, intrinsics, HandEyeConfig(mode="eye_in_hand"))``;
    for each still robot pose: ``c.add_sample(rgb_image, robot.read_state())``; then ``c.solve()``.
    """

    def __init__(self, board: Board, intrinsics: CameraIntrinsics, cfg: HandEyeConfig | None = None) -> None:
        self.board = board
        self.intrinsics = intrinsics
        self.cfg = cfg if cfg is not None else HandEyeConfig()
        self.samples: list[HandEyeSample] = []

    def add_sample(self, image: np.ndarray, robot_pose) -> SampleOutcome:
        """Detect the board in ``image`` ((H, W, 3) RGB uint8 from the calibrated camera) and pair its
        pose with ``robot_pose`` (RobotState, (7,) TCP pose in base, or (4, 4) T_base_tcp).

        The robot must be still while the image is taken. Returns whether the sample was kept and why.
        """
        if getattr(robot_pose, "error", None) is not None:
            return SampleOutcome(False, f"robot reports an error: {robot_pose.error}")
        T_base_tcp = _pose_matrix(robot_pose)
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            raise HandEyeError(f"image must be an (H, W, 3) uint8 array, got {type(image).__name__}")
        h, w = image.shape[:2]
        if (w, h) != (self.intrinsics.width, self.intrinsics.height):
            raise HandEyeError(f"image is {w}x{h} but the intrinsics are for "
                               f"{self.intrinsics.width}x{self.intrinsics.height}")
        det = self.board.detect(image)
        if det is None:
            return SampleOutcome(False, "board not found (too few corners)")
        T_cb, rms = self.board.estimate_pose(det, self.intrinsics.K, self.intrinsics.dist)
        if rms > self.cfg.max_reprojection_px:
            return SampleOutcome(False, f"board pose reprojection error {rms:.2f} px > "
                                        f"{self.cfg.max_reprojection_px}", len(det), rms)
        self.samples.append(HandEyeSample(T_base_tcp, T_cb, rms, len(det), det.image_points, det.object_points))
        return SampleOutcome(True, f"sample {len(self.samples)}: {len(det)} corners, {rms:.2f} px",
                             len(det), rms)

    def add_board_pose(self, T_camera_board: np.ndarray, robot_pose, reprojection_px: float = 0.0) -> None:
        """Store a sample whose board pose was measured elsewhere ((4, 4) T_camera_board [m])."""
        self.samples.append(HandEyeSample(_pose_matrix(robot_pose), T_camera_board, reprojection_px))

    def solve(self) -> HandEyeResult:
        """Run :func:`calibrate_hand_eye` on the collected samples."""
        return calibrate_hand_eye(self.samples, self.cfg, self.intrinsics)
