"""Rigid-transform helpers (numpy only).

Transforms are (4, 4) float64 homogeneous matrices ``T_a_b`` that map points in frame b to frame a
(``p_a = T_a_b @ p_b``). Poses are (7,) ``[x, y, z, qx, qy, qz, qw]`` as everywhere in the project
(metres, unit quaternion, scalar last). Quaternion and matrix conversions are those of
:mod:`robot_envs.transforms`.
"""
from __future__ import annotations

import cv2
import numpy as np

# quaternion <-> rotation matrix: one implementation for the project (robot_envs.transforms, numpy only)
from robot_envs.transforms import matrix_to_quat, quat_to_matrix  # noqa: F401 - part of this module's API


def check_transform(T, name: str = "transform") -> np.ndarray:
    """Validate and return a (4, 4) float64 rigid transform (finite, orthonormal rotation, last row 0 0 0 1)."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"{name} must be a (4, 4) matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name} contains NaN/inf: {T.tolist()}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        raise ValueError(f"{name} rotation block is not a proper rotation: {R.tolist()}")
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-9):
        raise ValueError(f"{name} last row must be [0, 0, 0, 1], got {T[3].tolist()}")
    return T


def make_transform(R, t) -> np.ndarray:
    """(3, 3) rotation + (3,) translation [m] -> (4, 4) transform."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, np.float64)
    T[:3, 3] = np.asarray(t, np.float64).reshape(3)
    return T


def invert(T) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform."""
    T = np.asarray(T, np.float64)
    R, t = T[:3, :3], T[:3, 3]
    return make_transform(R.T, -R.T @ t)


def pose_to_matrix(pose) -> np.ndarray:
    """(7,) pose [x, y, z, qx, qy, qz, qw] -> (4, 4) transform (parent <- pose frame)."""
    pose = np.asarray(pose, np.float64).reshape(-1)
    if pose.shape != (7,) or not np.all(np.isfinite(pose)):
        raise ValueError(f"pose must be 7 finite numbers [x, y, z, qx, qy, qz, qw], got {pose.tolist()}")
    return make_transform(quat_to_matrix(pose[3:]), pose[:3])


def matrix_to_pose(T) -> np.ndarray:
    """(4, 4) transform -> (7,) pose [x, y, z, qx, qy, qz, qw]."""
    T = check_transform(T)
    return np.concatenate([T[:3, 3], matrix_to_quat(T[:3, :3])])


def rvec_tvec_to_matrix(rvec, tvec) -> np.ndarray:
    """OpenCV Rodrigues rotation vector (3,) [rad] + translation (3,) [m] -> (4, 4) transform."""
    R, _ = cv2.Rodrigues(np.asarray(rvec, np.float64).reshape(3, 1))
    return make_transform(R, np.asarray(tvec, np.float64).reshape(3))


def rotation_angle(R) -> float:
    """Angle [rad] of a (3, 3) rotation matrix, in [0, pi]."""
    R = np.asarray(R, np.float64)
    c = (np.trace(R) - 1.0) / 2.0
    s = 0.5 * np.linalg.norm([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return float(np.arctan2(s, c))  # accurate near 0 and pi, unlike arccos alone


def log_so3(R) -> np.ndarray:
    """(3, 3) rotation -> (3,) rotation vector [rad] (axis * angle)."""
    rv, _ = cv2.Rodrigues(np.asarray(R, np.float64))
    return rv.reshape(3)


def exp_so3(rv) -> np.ndarray:
    """(3,) rotation vector [rad] -> (3, 3) rotation matrix."""
    R, _ = cv2.Rodrigues(np.asarray(rv, np.float64).reshape(3, 1))
    return R


def transform_error(T_a, T_b) -> tuple[float, float]:
    """(translation distance [m], rotation angle [rad]) between two transforms of the same frames."""
    T_a, T_b = np.asarray(T_a, np.float64), np.asarray(T_b, np.float64)
    return (float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3])),
            rotation_angle(T_a[:3, :3].T @ T_b[:3, :3]))


def project_to_rotation(M) -> np.ndarray:
    """Nearest proper rotation (SVD) to a (3, 3) matrix."""
    U, _, Vt = np.linalg.svd(np.asarray(M, np.float64))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt
