"""Pose math in one place.

Conventions (see docs/design.md): quaternions are ``(4,)`` float64 ``[qx, qy, qz, qw]`` (scalar
last, as franky prints them); poses are ``(7,)`` ``[x, y, z, qx, qy, qz, qw]`` in metres, TCP in the
robot base frame; rotation vectors are ``(3,)`` axis * angle in radians. Deltas are applied in the
base frame: ``q_new = q_delta * q``.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def as_pose(pose, name: str = "pose") -> np.ndarray:
    """Return ``pose`` as a finite (7,) float64 array with a unit quaternion, or raise ValueError."""
    arr = np.asarray(pose, dtype=np.float64)
    if arr.shape != (7,):
        raise ValueError(f"{name} must have shape (7,) [x,y,z,qx,qy,qz,qw], got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf: {arr.tolist()}")
    out = arr.copy()
    out[3:] = quat_normalize(arr[3:], name=f"{name} quaternion")
    return out


def quat_normalize(q, name: str = "quaternion") -> np.ndarray:
    """Unit quaternion ``(4,)`` [x,y,z,w]; raises ValueError for a zero or non-finite input."""
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (4,):
        raise ValueError(f"{name} must have shape (4,) [qx,qy,qz,qw], got {q.shape}")
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"{name} cannot be normalised (norm {n}): {q.tolist()}")
    return q / n


def quat_multiply(a, b) -> np.ndarray:
    """Hamilton product ``a * b`` of two [x,y,z,w] quaternions (apply b first, then a)."""
    ax, ay, az, aw = np.asarray(a, dtype=np.float64)
    bx, by, bz, bw = np.asarray(b, dtype=np.float64)
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


def quat_conjugate(q) -> np.ndarray:
    """Inverse of a unit quaternion [x,y,z,w]."""
    q = np.asarray(q, dtype=np.float64)
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_to_rotvec(q) -> np.ndarray:
    """Rotation vector ``(3,)`` [rad] of a unit quaternion, angle in [0, pi]."""
    q = quat_normalize(q)
    if q[3] < 0:
        q = -q
    s = float(np.linalg.norm(q[:3]))
    if s < _EPS:
        return 2.0 * q[:3]
    angle = 2.0 * np.arctan2(s, q[3])
    return q[:3] / s * angle


def rotvec_to_quat(rv) -> np.ndarray:
    """Unit quaternion [x,y,z,w] of a rotation vector ``(3,)`` [rad]."""
    rv = np.asarray(rv, dtype=np.float64)
    if rv.shape != (3,):
        raise ValueError(f"rotation vector must have shape (3,), got {rv.shape}")
    angle = float(np.linalg.norm(rv))
    if angle < _EPS:
        q = np.array([rv[0] / 2, rv[1] / 2, rv[2] / 2, 1.0])
        return q / np.linalg.norm(q)
    axis = rv / angle
    return np.concatenate([axis * np.sin(angle / 2), [np.cos(angle / 2)]])


def quat_angle(a, b) -> float:
    """Smallest rotation angle [rad] between two orientations, in [0, pi]."""
    d = abs(float(np.dot(quat_normalize(a), quat_normalize(b))))
    return 2.0 * float(np.arccos(min(1.0, d)))


def quat_slerp(a, b, t: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1) along the short arc."""
    a, b = quat_normalize(a), quat_normalize(b)
    if np.dot(a, b) < 0:
        b = -b
    rel = quat_multiply(b, quat_conjugate(a))
    return quat_normalize(quat_multiply(rotvec_to_quat(quat_to_rotvec(rel) * float(t)), a))


def quat_to_matrix(q) -> np.ndarray:
    """3x3 rotation matrix of a quaternion [x,y,z,w]."""
    x, y, z, w = quat_normalize(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(m) -> np.ndarray:
    """Quaternion [x,y,z,w] (w >= 0) of a 3x3 rotation matrix."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"rotation matrix must be 3x3, got {m.shape}")
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = quat_normalize(np.array(q))
    return -q if q[3] < 0 else q


def xyzw_to_wxyz(q) -> np.ndarray:
    """[x,y,z,w] -> [w,x,y,z] (MuJoCo order)."""
    q = np.asarray(q, dtype=np.float64)
    return np.array([q[3], q[0], q[1], q[2]])


def wxyz_to_xyzw(q) -> np.ndarray:
    """[w,x,y,z] (MuJoCo order) -> [x,y,z,w]."""
    q = np.asarray(q, dtype=np.float64)
    return np.array([q[1], q[2], q[3], q[0]])


def compose_delta(pose, delta_pos, delta_rotvec=None) -> np.ndarray:
    """Apply a base-frame delta to a pose.

    Args:
        pose: (7,) current pose.
        delta_pos: (3,) translation [m] in the base frame.
        delta_rotvec: (3,) rotation vector [rad] in the base frame, or None for no rotation.
    Returns:
        (7,) new pose: position + delta_pos, orientation ``rotvec_to_quat(delta) * q``.
    """
    pose = as_pose(pose)
    dp = np.asarray(delta_pos, dtype=np.float64)
    if dp.shape != (3,):
        raise ValueError(f"delta_pos must have shape (3,), got {dp.shape}")
    out = pose.copy()
    out[:3] += dp
    if delta_rotvec is not None:
        out[3:] = quat_normalize(quat_multiply(rotvec_to_quat(delta_rotvec), pose[3:]))
    return out
