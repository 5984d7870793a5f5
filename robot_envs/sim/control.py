"""Arm control for the directly stepped MuJoCo backend (``robot_envs.sim.direct``).

Two parts, run every control period (2 ms by default; the torques are held in between):

``CartesianTrajectory`` -- an online trajectory generator. A command re-plans from the current
reference state (pose and velocity) to the target pose at rest. Six DOFs ``[x, y, z, rx, ry, rz]``
(translation, and the rotation vector from the orientation at re-planning time, base frame); per
DOF the time-optimal profile under a velocity and an acceleration limit (change speed at the
limit, cruise, brake at the limit), then every other DOF is stretched to the duration of the
slowest one by cruising slower (time synchronisation): they all arrive together. A DOF that must
reverse (a change of direction) brakes at the acceleration limit and overshoots by its braking
distance. That is how franky's online planner moves the franky-sim arm: 1 ms samples of its
commanded pose show the slowest DOF at +-2.08 m/s^2 and the others cruising at a reduced speed,
and a re-plan starting from a low-passed velocity (``velocity_filter_s``; franky-sim reports
the commanded velocity through a ~20 ms filter). franky's jerk limit is left out (at the limits
used here it ramps the acceleration within ~2 ms).

``OperationalSpaceController`` -- tracks the reference with a Cartesian impedance in operational
space, computed from MuJoCo's own model::

    tau = J^T Lambda (a_ref + Kp e + Kd (v_ref - v)) + N^T tau_posture + qfrc_bias

with ``J`` the TCP Jacobian (``mj_jac``), ``Lambda = (J M^-1 J^T)^-1`` from the joint-space inertia
(``mj_solveM``: the whole model, armature included), ``qfrc_bias`` gravity + Coriolis/centrifugal
forces, ``N^T = I - J^T (Lambda J M^-1)`` the dynamically consistent null-space projector of a joint
posture PD term, and the sum clipped to the FR3 joint torque limits.

Units: metres, radians, seconds; poses ``(7,) [x, y, z, qx, qy, qz, qw]`` in the base frame,
twists ``(6,) [vx, vy, vz, wx, wy, wz]`` in the base frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_envs import transforms as tf

FR3_TORQUE_LIMITS = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # |tau| per joint [Nm]


# Unchecked quaternion helpers ([x, y, z, w], unit inputs) for the 1 kHz loop: the checked ones in
# robot_envs.transforms cost several microseconds each in validation.
def _qmul(a, b) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)


def _qerr(a, b) -> tuple[float, float, float]:
    """Rotation vector of ``a * conj(b)`` (the rotation taking b to a, base frame), short way round."""
    ax, ay, az, aw = a
    bx, by, bz, bw = -b[0], -b[1], -b[2], b[3]
    x = aw * bx + ax * bw + ay * bz - az * by
    y = aw * by - ax * bz + ay * bw + az * bx
    z = aw * bz + ax * by - ay * bx + az * bw
    w = aw * bw - ax * bx - ay * by - az * bz
    if w < 0.0:
        x, y, z, w = -x, -y, -z, -w
    s = math.sqrt(x * x + y * y + z * z)
    k = 2.0 if s < 1e-12 else 2.0 * math.atan2(s, w) / s
    return x * k, y * k, z * k


def _rotvec_quat(x: float, y: float, z: float) -> tuple[float, float, float, float]:
    angle = math.sqrt(x * x + y * y + z * z)
    if angle < 1e-12:
        return (0.5 * x, 0.5 * y, 0.5 * z, 1.0)
    k = math.sin(0.5 * angle) / angle
    return (x * k, y * k, z * k, math.cos(0.5 * angle))


@dataclass(frozen=True)
class MotionLimits:
    """Velocity / acceleration limits of the trajectory generator, per DOF (each axis on its own)."""

    translation_velocity: float  # [m/s]
    translation_acceleration: float  # [m/s^2]
    rotation_velocity: float  # [rad/s]
    rotation_acceleration: float  # [rad/s^2]

    def __post_init__(self) -> None:
        for name in ("translation_velocity", "translation_acceleration", "rotation_velocity",
                     "rotation_acceleration"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v}")

    def scaled(self, factor: float) -> "MotionLimits":
        """All limits times ``factor`` in (0, 1]."""
        if not (0 < factor <= 1):
            raise ValueError(f"dynamics factor must be in (0, 1], got {factor}")
        return MotionLimits(self.translation_velocity * factor, self.translation_acceleration * factor,
                            self.rotation_velocity * factor, self.rotation_acceleration * factor)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(6,) velocity limits, (6,) acceleration limits in DOF order [x, y, z, rx, ry, rz]."""
        v = np.array([self.translation_velocity] * 3 + [self.rotation_velocity] * 3)
        a = np.array([self.translation_acceleration] * 3 + [self.rotation_acceleration] * 3)
        return v, a


# ---- one-DOF profiles ------------------------------------------------------------------------------
# A profile goes from (0, v0) to (D, 0): phase 1 changes the speed from v0 to vp at +-a (t1), phase 2
# cruises at vp (t2), phase 3 brakes from vp to 0 at -a (t3). It is stored in a frame flipped by
# ``sign`` so that the motion goes toward +; all arrays are (n_dof,).

def _optimal(dist: float, v0: float, a: float, vmax: float) -> tuple[float, float, float, float, float, float]:
    """Time-optimal profile ``(sign, v0', vp, t1, t2, t3)`` from (0, v0) to (dist, 0)."""
    stop = v0 * abs(v0) / (2.0 * a)  # where braking right away would stop
    sign = 1.0 if dist - stop >= 0.0 else -1.0
    d, v = sign * dist, sign * v0  # now d >= v|v| / 2a
    vp = vmax if v > vmax else min(vmax, math.sqrt(max(0.0, a * d + 0.5 * v * v)))
    d1 = abs(vp * vp - v * v) / (2.0 * a)
    d3 = vp * vp / (2.0 * a)
    t2 = max(0.0, d - d1 - d3) / vp if vp > 1e-12 else 0.0
    return sign, v, vp, abs(vp - v) / a, t2, vp / a


def _stretched(dist: float, v0: float, a: float, vmax: float, duration: float):
    """A profile from (0, v0) to (dist, 0) that lasts exactly ``duration`` (a lower cruise speed),
    or None when there is none of this shape (the DOF then keeps its time-optimal profile)."""
    stop = v0 * abs(v0) / (2.0 * a)
    sign = 1.0 if dist - stop >= 0.0 else -1.0
    d, v = sign * dist, sign * v0
    # speed up (or start from below zero) to vp >= max(v, 0), cruise, brake
    b = a * duration + v
    disc = b * b - 4.0 * (a * d + 0.5 * v * v)
    if disc >= -1e-12:
        vp = 0.5 * (b - math.sqrt(max(0.0, disc)))
        t1, t3 = (vp - v) / a, vp / a
        t2 = duration - t1 - t3
        if vp >= max(v, 0.0) - 1e-12 and vp <= vmax + 1e-9 and t2 >= -1e-9:
            return sign, v, vp, max(0.0, t1), max(0.0, t2), t3
    # slow down to a cruise speed 0 <= vp < v, cruise, brake
    den = duration - v / a
    if v > 0.0 and den > 1e-12:
        vp = (d - 0.5 * v * v / a) / den
        if -1e-12 <= vp <= v:
            vp = max(0.0, vp)
            t1, t3 = (v - vp) / a, vp / a
            return sign, v, vp, t1, max(0.0, duration - t1 - t3), t3
    return None


class CartesianTrajectory:
    """Online re-planned reference for the TCP (see module docstring). Times are simulation seconds.

    Args:
        pose: (7,) start pose (at rest).
        t: start time [s].
        velocity_filter_s: time constant [s] of the first-order filter through which a re-plan sees
            the current velocity (0 = the exact velocity; see ``observe``).
    """

    _REST = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # a DOF at rest: (sign, v0, vp, t1, t2, t3, a1, a)

    def __init__(self, pose, t: float = 0.0, velocity_filter_s: float = 0.0) -> None:
        if not (math.isfinite(velocity_filter_s) and velocity_filter_s >= 0):
            raise ValueError(f"velocity_filter_s must be >= 0, got {velocity_filter_s}")
        self.velocity_filter_s = float(velocity_filter_s)
        self.hold(pose, t)

    def hold(self, pose, t: float) -> None:
        """Rest at ``pose`` from time ``t`` on (drops the running plan)."""
        p = tf.as_pose(pose, "pose")
        self._filtered_velocity, self._filter_t = np.zeros(6), float(t)
        self._set(float(t), p[:3].copy(), p[3:].copy(), [self._REST] * 6, p)

    def observe(self, t: float, twist: np.ndarray) -> None:
        """Feed the filter with the reference velocity at ``t`` (call it at the control rate).

        franky-sim reports the commanded velocity through such a filter (0.95 per 1 ms step, ~20 ms)
        and franky starts each new motion from the reported velocity: with ``velocity_filter_s`` > 0 a
        re-plan starts from the filtered velocity too (the position stays continuous, the velocity jumps).
        """
        dt = float(t) - self._filter_t
        self._filter_t = float(t)
        if self.velocity_filter_s <= 0 or dt <= 0:
            self._filtered_velocity = np.asarray(twist, dtype=np.float64).copy()
            return
        k = 1.0 - math.exp(-dt / self.velocity_filter_s)
        self._filtered_velocity += k * (twist - self._filtered_velocity)

    def _set(self, t0: float, p0: np.ndarray, q0: np.ndarray, profiles: list, target: np.ndarray) -> None:
        self._t0, self._p0, self._q0, self._target = t0, p0, q0, target
        self._profiles = [tuple(float(v) for v in pr) for pr in profiles]
        ends = [pr[3] + pr[4] + pr[5] for pr in self._profiles]
        self._duration = max(ends)
        self._rotates = any(pr[0] != 0.0 and end > 0.0 for pr, end in zip(self._profiles[3:], ends[3:]))
        self._rest = (target.copy(), np.zeros(6), np.zeros(6))

    @property
    def target(self) -> np.ndarray:
        """(7,) pose the current plan ends at."""
        return self._target.copy()

    def end_time(self) -> float:
        """Time [s] at which the current plan reaches its target."""
        return self._t0 + self._duration

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reference at time ``t`` (>= the last re-planning): ``(pose (7,), twist (6,), accel (6,))``."""
        tau = float(t) - self._t0
        if tau >= self._duration:
            pose, twist, acc = self._rest
            return pose.copy(), twist.copy(), acc.copy()
        tau = max(0.0, tau)
        xs, vs, accs = [0.0] * 6, [0.0] * 6, [0.0] * 6
        for i, (sign, v0, vp, t1, t2, t3, a1, a) in enumerate(self._profiles if self._rotates else self._profiles[:3]):
            if tau < t1:  # changing speed
                xs[i], vs[i], accs[i] = sign * (v0 * tau + 0.5 * a1 * tau * tau), sign * (v0 + a1 * tau), sign * a1
                continue
            x = v0 * t1 + 0.5 * a1 * t1 * t1
            r = tau - t1
            if r < t2:  # cruising
                xs[i], vs[i] = sign * (x + vp * r), sign * vp
                continue
            x += vp * t2
            r = min(r - t2, t3)  # braking, then at rest
            xs[i], vs[i] = sign * (x + vp * r - 0.5 * a * r * r), sign * (vp - a * r)
            accs[i] = -sign * a if r < t3 else 0.0
        pose = np.empty(7)
        pose[:3] = (self._p0[0] + xs[0], self._p0[1] + xs[1], self._p0[2] + xs[2])
        pose[3:] = _qmul(_rotvec_quat(xs[3], xs[4], xs[5]), self._q0) if self._rotates else self._q0
        return pose, np.array(vs), np.array(accs)

    def replan(self, t: float, target, limits: MotionLimits) -> None:
        """From the reference state at ``t``, plan to ``target`` (7,) at rest within ``limits``."""
        goal = tf.as_pose(target, "target")
        pose, vel, _ = self.sample(t)
        if self.velocity_filter_s > 0:
            vel = self._filtered_velocity.copy()
        q_goal = goal[3:] if float(np.dot(goal[3:], pose[3:])) >= 0 else -goal[3:]
        dist = np.concatenate([goal[:3] - pose[:3], _qerr(q_goal, pose[3:])])
        vmax, amax = limits.arrays()
        profiles = [_optimal(dist[i], vel[i], amax[i], vmax[i]) for i in range(6)]
        duration = max(p[3] + p[4] + p[5] for p in profiles)
        for i, p in enumerate(profiles):  # time synchronisation: every DOF arrives with the slowest one
            if p[3] + p[4] + p[5] < duration - 1e-9:
                stretched = _stretched(dist[i], vel[i], amax[i], vmax[i], duration)
                if stretched is not None:
                    profiles[i] = stretched
        full = [p + ((amax[i] if p[2] >= p[1] else -amax[i]), amax[i]) for i, p in enumerate(profiles)]
        self._set(float(t), pose[:3].copy(), pose[3:].copy(), full, np.concatenate([goal[:3], q_goal]))

    def brake(self, t: float, limits: MotionLimits) -> None:
        """Stop as fast as ``limits`` allow: each DOF brakes to rest from its velocity at ``t``."""
        pose, vel, _ = self.sample(t)
        _, amax = limits.arrays()
        stop = vel * np.abs(vel) / (2.0 * amax)
        target = np.empty(7)
        target[:3] = pose[:3] + stop[:3]
        target[3:] = _qmul(_rotvec_quat(stop[3], stop[4], stop[5]), pose[3:])
        self.replan(t, target, limits)


# ---- operational-space controller ----------------------------------------------------------------------
@dataclass(frozen=True)
class OscGains:
    """Gains of the operational-space controller (accelerations per unit error: decoupled unit mass)."""

    translation_stiffness: float = 10000.0  # Kp [1/s^2] on the position error (10000: 16 Hz bandwidth)
    rotation_stiffness: float = 10000.0  # Kp [1/s^2] on the orientation error (rotation vector)
    damping_ratio: float = 1.0  # Kd = 2 * ratio * sqrt(Kp)
    # null-space joint PD toward the posture [1/s^2]. 100, not a softer 10: with 10 the redundant joint drifted
    # over hundreds of episodes until joint 7 sat at its limit (3.02 rad) and a reset move could no longer
    # reach the goal orientation (docs/design.md, "reset stall").
    posture_stiffness: float = 100.0
    posture_damping: float = 20.0  # [1/s]

    def __post_init__(self) -> None:
        for name in ("translation_stiffness", "rotation_stiffness", "damping_ratio"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v}")
        for name in ("posture_stiffness", "posture_damping"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")


class OperationalSpaceController:
    """Cartesian impedance for a 7-joint arm in a MuJoCo model (see module docstring).

    Args:
        model: the MjModel.
        dofs: (7,) dof indices of the arm joints (base to flange).
        body: id of the body the TCP is fixed to. tcp_offset: (3,) TCP position in that body's frame.
        gains: OscGains. torque_limits: (7,) |tau| limits [Nm]. posture: (7,) null-space posture [rad].
    """

    def __init__(self, model, dofs, body: int, tcp_offset, gains: OscGains | None = None,
                 torque_limits=FR3_TORQUE_LIMITS, posture=None) -> None:
        self.model = model
        self.dofs = np.asarray(dofs, dtype=np.int64)
        if self.dofs.shape != (7,):
            raise ValueError(f"need the 7 arm dofs, got {self.dofs}")
        d0 = int(self.dofs[0])
        # a slice (a view, no copy) when the arm's dofs are contiguous, as in the FR3 model
        self._sel = slice(d0, d0 + 7) if np.array_equal(self.dofs, np.arange(d0, d0 + 7)) else self.dofs
        self.body = int(body)
        self.tcp_offset = np.asarray(tcp_offset, dtype=np.float64).reshape(3)
        self.gains = gains if gains is not None else OscGains()
        self.torque_limits = np.asarray(torque_limits, dtype=np.float64).reshape(7)
        self.posture = None if posture is None else np.asarray(posture, dtype=np.float64).reshape(7)
        g = self.gains
        self._kp = np.array([g.translation_stiffness] * 3 + [g.rotation_stiffness] * 3)
        self._kd = 2.0 * g.damping_ratio * np.sqrt(self._kp)
        nv = model.nv
        self._jac = np.zeros((6, nv))
        self._minv_jt = np.zeros((6, nv))
        self._err = np.zeros(6)
        self._jacp, self._jacr = self._jac[:3], self._jac[3:]
        self._lam_inv = np.zeros((6, 6))
        self._force = np.zeros(6)
        self._tau_lo = -self.torque_limits
        self._kq, self._dq = float(g.posture_stiffness), float(g.posture_damping)
        self._posture_on = self.posture is not None and (self._kq > 0 or self._dq > 0)
        qadr = np.asarray(model.jnt_qposadr[model.dof_jntid[self.dofs]], dtype=np.int64)
        a0 = int(qadr[0])
        self._qsel = slice(a0, a0 + 7) if np.array_equal(qadr, np.arange(a0, a0 + 7)) else qadr

    def _views(self, data) -> None:
        """Cache the numpy views of ``data``'s arrays (each attribute access of MjData costs microseconds)."""
        if data is not getattr(self, "_data", None):
            self._data = data
            self._xpos, self._xmat, self._xquat = data.xpos, data.xmat, data.xquat
            self._qpos, self._qvel, self._bias = data.qpos, data.qvel, data.qfrc_bias

    def tcp_pose(self, data) -> np.ndarray:
        """(7,) TCP pose from the current kinematics of ``data``."""
        self._views(data)
        b = self.body
        pose = np.empty(7)
        pose[:3] = self._xpos[b] + self._xmat[b].reshape(3, 3) @ self.tcp_offset
        w, x, y, z = self._xquat[b]
        pose[3:] = (x, y, z, w)
        return pose

    def torques(self, data, ref_pose, ref_twist, ref_accel) -> tuple[np.ndarray, np.ndarray]:
        """Joint torques (7,) tracking the reference, and the (6,) pose error [m, rad] they act on.

        ``data`` must hold the kinematics, inertia and bias forces of the current state (after
        ``mj_step1`` or ``mj_forward``). Written for few numpy calls: it runs hundreds of times per
        simulated second.
        """
        import mujoco

        self._views(data)
        b, sel = self.body, self._sel
        p = self._xpos[b] + self._xmat[b].reshape(3, 3) @ self.tcp_offset
        jac, minv = self._jac, self._minv_jt
        mujoco.mj_jac(self.model, data, self._jacp, self._jacr, p, b)
        mujoco.mj_solveM(self.model, data, minv, jac)  # rows: J_i M^-1
        w, x, y, z = self._xquat[b]
        err = self._err
        err[:3] = ref_pose[:3] - p
        err[3:] = _qerr(ref_pose[3:], (x, y, z, w))
        j_arm, dq = jac[:, sel], self._qvel[sel]
        acc = ref_accel + self._kp * err + self._kd * (ref_twist - j_arm @ dq)
        tau = self._bias[sel].copy()
        if self._posture_on:
            # null-space posture: tau_p - J^T Lambda J M^-1 tau_p, folded into the one solve below
            tau_p = self._kq * (self.posture - self._qpos[self._qsel]) - self._dq * dq
            acc -= minv[:, sel] @ tau_p
            tau += tau_p
        lam_inv = self._lam_inv
        np.matmul(jac, minv.T, out=lam_inv)
        mujoco.mju_cholFactor(lam_inv, 1e-9)
        force = self._force
        mujoco.mju_cholSolve(force, lam_inv, acc)  # Lambda (acc - J M^-1 tau_p)
        tau += j_arm.T @ force
        return np.minimum(np.maximum(tau, self._tau_lo), self.torque_limits), err.copy()
