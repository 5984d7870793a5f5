"""The ``mujoco`` backend: the simulated FR3 stepped directly in MuJoCo, for fast learning experiments.

Same world as the ``sim`` backend -- franky-sim's FR3 MuJoCo model, the task's scene hooks, the
cameras and renderer settings of ``SimWorld`` -- but no libfranka protocol, no franky-sim server,
no physics thread and no real-time pacing: physics advances only when this process steps it.
Select it with ``robot_envs.env.make(task, backend="mujoco")``.

- ``DirectSimWorld`` (a ``SimWorld``): builds the scene with ``SimWorld._create_simulator`` and
  compiles it with franky-sim's simulator (1 ms steps, implicitfast, arm torques on
  ``qfrc_applied``, the MJCF actuators zeroed), so model and scene are the franky-sim ones.
  ``step(n)`` / ``advance_to(t)``: each 1 ms physics step runs ``mj_step1``, then the registered
  controllers (they read that state and write ``qfrc_applied``), then ``mj_step2``; the last step
  of a call is followed by ``mj_forward``, so renders, object poses and robot states all show the
  state *after* stepping. Rendering, object poses, ``reset_scene``, camera poses: inherited.
- ``SteppedClock`` (a ``Clock``): ``now()`` is the simulation time; ``sleep_until(t)`` steps the
  physics up to ``t`` (the first 1 ms step at or after it), so ``RobotEnv``'s wait for the next
  control tick simulates exactly one control period; wall time plays no part.
- ``MujocoRobot`` (a ``Robot``): ``command_pose`` re-plans a ``CartesianTrajectory`` toward the
  target, an ``OperationalSpaceController`` (``robot_envs/sim/control.py``) tracks it (torques
  recomputed every 2 ms, physics at 1 kHz); a PD hand with a speed and force limit moves the
  fingers; ``move_to`` steps the physics until
  the pose is reached. ``RobotState.stamp`` is ``time.monotonic()`` like every backend; the
  simulation time is in ``extras["sim_time_s"]``.

Matching the franky-sim arm (``SimBackendConfig``; measured, see docs/benchmarks.md and
``tests/backend/test_direct_sim.py``):

- limits: franky's planner moves the TCP at the Franka Cartesian limits (1.7 m/s, 13 m/s^2;
  2.5 rad/s, 25 rad/s^2) scaled by the robot-wide ``relative_dynamics_factor`` that
  ``FrankyRobot`` sets *times* the same factor given to each motion: 0.4 x 0.4 = 0.16 when
  streaming (2.08 m/s^2 measured in franky-sim), 0.4 x 0.3 = 0.12 for ``move_to``
  (``MujocoRobotConfig.matching_franky``);
- re-planning: per-DOF time-synchronised profiles from a velocity seen through franky-sim's
  ~20 ms filter (``replan_velocity_filter_s``, ``robot_envs/sim/control.py``);
- tracking: the franky-sim arm follows franky's trajectory to ~0.01 mm; the operational-space
  controller here to ~0.2 mm / ~1 mrad while moving;
- latency (``command_delay_s``, simulated time from ``command_pose`` to the planner taking the
  target): franky re-plans ~4 ms after a command, and in the ``sim`` backend the simulation runs on
  while the env renders (two 84x84 cameras: median ~16 ms on the 2-core machine, much more when
  the CPU is starved), so a target computed from an observation takes effect ~20 ms after it.
  The default 0.02 s reproduces the sim backend's median per-step displacement; 0.004 s reproduces
  franky-sim when its world is paused while rendering (deterministic). 0 = immediate.

Errors: like a Franka reflex, a tracking error above ``max_tracking_error_m`` / ``_rad`` (the arm
is blocked) or a non-finite physics state puts the robot in error: it holds where it is,
``command_pose`` / ``move_to`` raise ``RobotError`` and ``recover()`` clears it.

Frames/units: TCP pose (7,) [x, y, z, qx, qy, qz, qw] in the base frame (= world) [m]; the TCP is
franky's end-effector frame, 0.1034 m along the hand's z axis (libfranka's F_T_EE for the Franka Hand).
"""
from __future__ import annotations

import collections
import logging
import math
import time
from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np

from robot_envs import transforms as tf
from robot_envs.clock import Clock
from robot_envs.robot import Robot, RobotError, RobotState
from robot_envs.sim.control import (
    FR3_TORQUE_LIMITS,
    CartesianTrajectory,
    MotionLimits,
    OperationalSpaceController,
    OscGains,
)
from robot_envs.sim.world import ROBOT_PREFIX, SimWorld, SimWorldError

logger = logging.getLogger(__name__)

# Cartesian limits of the Franka as franky reports them (Robot.translation_velocity_limit etc.).
FRANKA_CARTESIAN_LIMITS = MotionLimits(translation_velocity=1.7, translation_acceleration=13.0,
                                       rotation_velocity=2.5, rotation_acceleration=25.0)
TCP_OFFSET_IN_HAND = (0.0, 0.0, 0.1034)  # franky's TCP in the hand body frame [m]
HAND_MAX_WIDTH = 0.08  # Franka Hand: widest opening [m]
HAND_MAX_SPEED = 0.05  # finger speed limit [m/s]
HAND_MAX_FORCE = 140.0  # force limit [N]

Controller = Callable[[object, object], None]  # (MjModel, MjData) -> None, writes qfrc_applied


class DirectSimWorld(SimWorld):
    """A ``SimWorld`` whose physics is stepped by its caller (see module docstring).

    Takes the same ``SimWorldConfig`` and scene hooks; ``realtime_factor``, ``hostname``,
    ``lockstep_timeout_s`` and ``max_catchup_steps`` concern franky-sim's server and are unused.
    """

    #: physics advances only when stepped: a render never sees the world move (cameras skip their wall-clock timeout)
    advances_while_rendering = False

    def __init__(self, cfg=None, scene_hooks=()) -> None:
        super().__init__(cfg, scene_hooks)
        self._controllers: list[Controller] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "DirectSimWorld":
        """Build and compile the scene (no server, no thread)."""
        import mujoco

        if self._data is not None:
            raise SimWorldError("DirectSimWorld already started")
        self._create_simulator()
        try:
            self._sim.start()
        except BaseException:
            self._sim.cleanup()
            self._sim = None
            raise
        self._model, self._data = self._sim.model, self._sim.data
        mujoco.mj_forward(self._model, self._data)
        logger.info("DirectSimWorld started (MuJoCo stepped in-process, %d dofs)", self._model.nv)
        return self

    def close(self) -> None:
        """Close the renderers and the simulator. Safe to call twice."""
        self._controllers.clear()
        super().close()

    # -- stepping -------------------------------------------------------------------------------
    @property
    def timestep(self) -> float:
        """Physics step [s] (1 ms)."""
        self._check_alive()
        return float(self._model.opt.timestep)

    def add_controller(self, controller: Controller) -> None:
        """Run ``controller(model, data)`` in every physics step, between ``mj_step1`` and ``mj_step2``."""
        self._controllers.append(controller)

    def remove_controller(self, controller: Controller) -> None:
        """Stop running a controller added with ``add_controller`` (no-op when absent)."""
        if controller in self._controllers:
            self._controllers.remove(controller)

    def step(self, n: int = 1) -> None:
        """Advance the physics by ``n`` steps (controllers run in each), then update the kinematics."""
        import mujoco

        n = int(n)
        if n < 0:
            raise ValueError(f"cannot step a negative number of steps ({n})")
        with self._locked():
            m, d = self._model, self._data
            for _ in range(n):
                mujoco.mj_step1(m, d)
                for controller in self._controllers:
                    controller(m, d)
                mujoco.mj_step2(m, d)
                self._steps += 1
            mujoco.mj_forward(m, d)

    def advance_to(self, t: float) -> None:
        """Step until the simulation time reaches ``t`` [s] (the first 1 ms step at or after it, up to
        1 us of rounding: ticks summed in floating point land on the grid); no-op for a past ``t``."""
        if not math.isfinite(float(t)):
            raise ValueError(f"cannot advance to a non-finite time {t}")
        dt = self.timestep
        n = int(math.ceil((float(t) - self.sim_time() - 1e-6) / dt))
        if n > 0:
            self.step(n)

    def advance(self, duration: float) -> None:
        """Step for ``duration`` simulated seconds."""
        self.advance_to(self.sim_time() + float(duration))

    @property
    def clock(self) -> "SteppedClock":
        """A Clock whose ``sleep_until`` steps this world's physics."""
        return SteppedClock(self)

    # -- access for the controllers of this package -------------------------------------------------
    @property
    def model(self):
        """The MjModel (for robot_envs.sim controllers; everything else uses the query methods)."""
        self._check_alive()
        return self._model

    @property
    def data(self):
        """The MjData (for robot_envs.sim controllers; hold ``locked()`` while reading it)."""
        self._check_alive()
        return self._data

    def locked(self):
        """Context manager holding the physics lock."""
        return self._locked()

    # -- franky-sim only --------------------------------------------------------------------------
    @property
    def hostname(self) -> str:
        raise SimWorldError("a DirectSimWorld has no franky-sim server to connect franky to; "
                            "drive its arm with robot_envs.sim.direct.MujocoRobot")

    def pause(self) -> None:
        raise SimWorldError("a DirectSimWorld never runs on its own (its clock steps it): nothing to pause")

    def resume(self) -> None:
        raise SimWorldError("a DirectSimWorld never runs on its own (its clock steps it): nothing to resume")


class SteppedClock(Clock):
    """Simulation time of a ``DirectSimWorld``; waiting on it is stepping its physics."""

    def __init__(self, world: DirectSimWorld) -> None:
        self.world = world

    def now(self) -> float:
        return self.world.sim_time()

    def sleep_until(self, t: float) -> None:
        self.world.advance_to(t)


@dataclass
class MujocoRobotConfig:
    """Control settings of ``MujocoRobot`` (defaults: the franky-sim arm of ``SimBackendConfig``)."""

    dynamics_factor: float = 0.16  # fraction (0, 1] of ``limits`` for command_pose (franky-sim: 0.4 x 0.4)
    move_to_dynamics_factor: float = 0.12  # fraction (0, 1] of ``limits`` for move_to (franky-sim: 0.4 x 0.3)
    limits: MotionLimits = FRANKA_CARTESIAN_LIMITS  # per-DOF Cartesian velocity/acceleration limits at factor 1
    command_delay_s: float = 0.02  # simulated time from command_pose to the planner taking the target [s] (module doc)
    control_period_s: float = 0.002  # the controller recomputes the torques this often [s] (held in between)
    # a re-plan starts from the velocity low-passed with this time constant [s], as franky on franky-sim (0 = exact)
    replan_velocity_filter_s: float = 0.0195
    gains: OscGains = field(default_factory=OscGains)  # operational-space controller gains
    torque_limits: tuple[float, ...] = FR3_TORQUE_LIMITS  # |tau| per joint [Nm]
    posture: tuple[float, ...] | None = None  # (7,) null-space joint posture [rad]; None = the joints at connect()
    max_tracking_error_m: float = 0.05  # reflex: TCP further than this from its reference [m] -> error
    max_tracking_error_rad: float = 0.5  # reflex: orientation further than this from its reference [rad] -> error
    move_to_tolerance_m: float = 1e-3  # move_to returns once the TCP is this close to the pose [m] ...
    move_to_tolerance_rad: float = 5e-3  # ... and this close in orientation [rad]
    gripper_enabled: bool = True  # command the fingers (False: they are held where they are)
    gripper_speed: float = 0.1  # finger speed [m/s] (the hand moves at most 0.05 m/s)
    gripper_force: float = 20.0  # grasp force when closing [N]
    gripper_move_force: float = 70.0  # force limit of a plain move (and of holding) [N]
    gripper_min_change: float = 0.005  # only a width request that moves by more starts a new gripper motion [m]
    grasp_on_close: bool = True  # closing grasps with ``gripper_force``; else moves with ``gripper_move_force``

    def __post_init__(self) -> None:
        for name in ("dynamics_factor", "move_to_dynamics_factor"):
            v = float(getattr(self, name))
            if not (0 < v <= 1):
                raise ValueError(f"{name} must be in (0, 1], got {v}")
        if not isinstance(self.limits, MotionLimits):
            raise ValueError(f"limits must be a MotionLimits, got {type(self.limits).__name__}")
        if not isinstance(self.gains, OscGains):
            raise ValueError(f"gains must be OscGains, got {type(self.gains).__name__}")
        if not (math.isfinite(self.command_delay_s) and 0 <= self.command_delay_s <= 1.0):
            raise ValueError(f"command_delay_s must be in [0, 1] s, got {self.command_delay_s}")
        if not (math.isfinite(self.replan_velocity_filter_s) and 0 <= self.replan_velocity_filter_s <= 1.0):
            raise ValueError(f"replan_velocity_filter_s must be in [0, 1] s, got {self.replan_velocity_filter_s}")
        if not (math.isfinite(self.control_period_s) and 0 < self.control_period_s <= 0.01):
            raise ValueError(f"control_period_s must be in (0, 0.01] s, got {self.control_period_s}")
        lim = np.asarray(self.torque_limits, dtype=np.float64)
        if lim.shape != (7,) or not np.all(np.isfinite(lim)) or np.any(lim <= 0):
            raise ValueError(f"torque_limits must be 7 positive values, got {self.torque_limits}")
        self.torque_limits = tuple(lim.tolist())
        if self.posture is not None:
            post = np.asarray(self.posture, dtype=np.float64)
            if post.shape != (7,) or not np.all(np.isfinite(post)):
                raise ValueError(f"posture must be 7 finite joint angles, got {self.posture}")
            self.posture = tuple(post.tolist())
        for name in ("max_tracking_error_m", "max_tracking_error_rad", "move_to_tolerance_m",
                     "move_to_tolerance_rad", "gripper_speed", "gripper_force", "gripper_move_force"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v}")
        if not self.gripper_min_change >= 0:
            raise ValueError(f"gripper_min_change must be >= 0, got {self.gripper_min_change}")

    @classmethod
    def matching_franky(cls, franky_fields: dict | None = None, **overrides) -> "MujocoRobotConfig":
        """The config that moves like ``FrankyRobot(FrankyRobotConfig(**franky_fields))`` on franky-sim.

        franky scales its limits by the robot-wide ``relative_dynamics_factor`` (which FrankyRobot
        sets) times the per-motion factor: ``relative_dynamics_factor**2`` for ``command_pose``,
        ``relative_dynamics_factor * move_to_dynamics_factor`` for ``move_to``. The gripper settings
        are copied. ``overrides`` set MujocoRobotConfig fields on top.
        """
        from robot_envs.franky_robot import FrankyRobotConfig

        names = {f.name for f in fields(FrankyRobotConfig)}
        given = {k: v for k, v in (franky_fields or {}).items() if k in names}
        fr = FrankyRobotConfig(**{"hostname": "unused", **given})
        rdf = float(fr.relative_dynamics_factor)
        base = dict(dynamics_factor=rdf * rdf, move_to_dynamics_factor=rdf * float(fr.move_to_dynamics_factor),
                    gripper_enabled=fr.gripper_enabled, gripper_speed=fr.gripper_speed,
                    gripper_force=fr.gripper_force, gripper_min_change=fr.gripper_min_change,
                    grasp_on_close=fr.grasp_on_close)
        return cls(**{**base, **overrides})


@dataclass
class _Command:
    at: float  # simulation time the command takes effect [s]
    pose: np.ndarray | None
    width: float | None


class MujocoRobot(Robot):
    """The FR3 + Franka Hand of a started ``DirectSimWorld``, controlled in-process (module docstring).

    Not thread-safe: call it from one thread (the one that steps the world).
    """

    def __init__(self, world: DirectSimWorld, cfg: MujocoRobotConfig | None = None) -> None:
        if not isinstance(world, DirectSimWorld):
            raise TypeError(f"MujocoRobot needs a DirectSimWorld, got {type(world).__name__} "
                            "(a SimWorld's arm is driven by franky: use FrankyRobot)")
        self.world = world
        self.cfg = cfg if cfg is not None else MujocoRobotConfig()
        self._stream_limits = self.cfg.limits.scaled(self.cfg.dynamics_factor)
        self._move_limits = self.cfg.limits.scaled(self.cfg.move_to_dynamics_factor)
        self._connected = False
        self._error: str | None = None
        self._pending: collections.deque[_Command] = collections.deque()
        self._traj: CartesianTrajectory | None = None
        self._osc: OperationalSpaceController | None = None
        self._gripper_goal = self._gripper_ref = 0.0
        self._gripper_force = self.cfg.gripper_move_force
        self._gripper_speed = min(self.cfg.gripper_speed, HAND_MAX_SPEED)

    # -- connection -------------------------------------------------------------------------------
    def connect(self) -> None:
        """Attach the controller to the world's physics (the arm holds its current pose)."""
        import mujoco

        if self._connected:
            return
        try:
            m = self.world.model
        except SimWorldError as e:
            raise RobotError(f"cannot connect: {e}") from e

        def joint(name: str) -> tuple[int, int]:
            jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, ROBOT_PREFIX + name)
            if jid < 0:
                raise RobotError(f"the sim model has no joint {ROBOT_PREFIX + name}")
            return int(m.jnt_qposadr[jid]), int(m.jnt_dofadr[jid])

        arm = [joint(f"fr3_joint{i}") for i in range(1, 8)]
        fingers = [joint("finger_joint1"), joint("finger_joint2")]
        self._qadr = np.array([a for a, _ in arm])
        self._dofs = np.array([d for _, d in arm])
        d0 = int(self._dofs[0])  # a slice when contiguous (the FR3 model): cheaper than fancy indexing at 500 Hz
        self._arm = slice(d0, d0 + 7) if np.array_equal(self._dofs, np.arange(d0, d0 + 7)) else self._dofs
        self._finger_qadr = np.array([a for a, _ in fingers])
        self._finger_dofs = np.array([d for _, d in fingers])
        self._fingers = [(int(a), int(d)) for a, d in fingers]
        self._hand = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, ROBOT_PREFIX + "hand")
        if self._hand < 0:
            raise RobotError(f"the sim model has no body {ROBOT_PREFIX}hand")
        self._robot_root = int(m.body_rootid[self._hand])
        dt = float(m.opt.timestep)
        self._hold = max(dt, round(self.cfg.control_period_s / dt) * dt)  # torque hold time [s]
        with self.world.locked():
            d = self.world.data
            q = np.array(d.qpos[self._qadr])
            posture = self.cfg.posture if self.cfg.posture is not None else q
            self._osc = OperationalSpaceController(m, self._dofs, self._hand, TCP_OFFSET_IN_HAND, self.cfg.gains,
                                                   self.cfg.torque_limits, posture)
            self._traj = CartesianTrajectory(self._osc.tcp_pose(d), float(d.time), self.cfg.replan_velocity_filter_s)
            self._gripper_goal = self._gripper_ref = float(np.sum(d.qpos[self._finger_qadr]))
        self._gripper_force = self.cfg.gripper_move_force
        self._pending.clear()
        self._error = None
        d = self.world.data
        self._qpos, self._qvel, self._qfrc = d.qpos, d.qvel, d.qfrc_applied  # views, cached (module doc of control.py)
        self._next_update = -math.inf
        self.world.add_controller(self._control)
        self._connected = True

    def close(self) -> None:
        """Detach the controller (the arm's joint torques go to zero). Safe to call twice."""
        if not self._connected:
            return
        self.world.remove_controller(self._control)
        self._connected = False
        self._pending.clear()
        try:
            with self.world.locked():
                self.world.data.qfrc_applied[self._dofs] = 0.0
                self.world.data.qfrc_applied[self._finger_dofs] = 0.0
        except SimWorldError:  # the world was closed first: nothing left to release
            pass

    def _require(self) -> None:
        if not self._connected:
            raise RobotError("MujocoRobot is not connected (use it as a context manager or call connect())")

    # -- physics-step controller ----------------------------------------------------------------------
    def _control(self, m, d) -> None:
        """Runs in every physics step; recomputes the torques every ``control_period_s`` (they are
        held in ``qfrc_applied`` in between, as a real controller's output is)."""
        t = d.time
        if t < self._next_update - 1e-9:
            return
        self._next_update = t + self.cfg.control_period_s
        while self._pending and self._pending[0].at <= t + 1e-9:
            cmd = self._pending.popleft()
            if cmd.pose is not None and self._error is None:
                self._traj.replan(t, cmd.pose, self._stream_limits)
            if cmd.width is not None:
                self._start_gripper(cmd.width)
        # the torque is held for one period: track the reference half a period ahead
        ref_pose, ref_twist, ref_acc = self._traj.sample(t + 0.5 * self._hold)
        self._traj.observe(t, ref_twist)
        tau, err = self._osc.torques(d, ref_pose, ref_twist, ref_acc)
        ex, ey, ez, rx, ry, rz = err.tolist()
        lin, ang = math.sqrt(ex * ex + ey * ey + ez * ez), math.sqrt(rx * rx + ry * ry + rz * rz)
        if not math.isfinite(lin + ang + float(tau.sum())):
            self._fault("physics state is not finite (the simulation diverged)")
            self._qfrc[self._arm] = 0.0
            return
        self._qfrc[self._arm] = tau
        if self._error is None and (lin > self.cfg.max_tracking_error_m or ang > self.cfg.max_tracking_error_rad):
            self._fault(f"cartesian reflex: tracking error {lin * 1000:.1f} mm / {ang:.3f} rad "
                        f"(limits {self.cfg.max_tracking_error_m * 1000:.0f} mm / "
                        f"{self.cfg.max_tracking_error_rad} rad): is the arm blocked?")
            self._traj.hold(self._osc.tcp_pose(d), t)
        self._hand_control()

    def _hand_control(self) -> None:
        """PD fingers toward a width reference moving at the gripper speed, force-limited."""
        step = self._gripper_speed * self._hold
        goal, ref = self._gripper_goal, self._gripper_ref
        self._gripper_ref = ref = ref + max(-step, min(step, goal - ref))
        f_max = self._gripper_force
        for qa, da in self._fingers:
            f = 1000.0 * (0.5 * ref - self._qpos[qa]) - 40.0 * self._qvel[da]
            self._qfrc[da] = max(-f_max, min(f_max, f))

    def _fault(self, msg: str) -> None:
        if self._error is None:  # keep the first (causal) error until recover()
            logger.error("sim arm error: %s", msg)
            self._error = msg
        self._pending.clear()

    # -- state ------------------------------------------------------------------------------------
    def read_state(self) -> RobotState:
        """Current state after the last physics step; ``error`` set while the arm is in error."""
        self._require()
        with self.world.locked():
            d = self.world.data
            pose = self._osc.tcp_pose(d)
            q = np.array(d.qpos[self._qadr])
            width = float(np.sum(d.qpos[self._finger_qadr]))
            wrench = self._contact_wrench(pose[:3])
            t = float(d.time)
        if not (np.all(np.isfinite(pose)) and np.all(np.isfinite(q))):
            self._fault("physics state is not finite (the simulation diverged)")
            raise RobotError(f"cannot read the robot state: {self._error}")
        return RobotState(stamp=time.monotonic(), ee_pose=pose, joint_positions=q, gripper_width=width,
                          external_wrench=wrench, error=self._error, extras={"sim_time_s": t})

    def _contact_wrench(self, tcp: np.ndarray) -> np.ndarray:
        """(6,) wrench [N, Nm] the contacts exert on the arm (and what it holds), at the TCP, base frame."""
        import mujoco

        m, d = self.world.model, self.world.data
        wrench = np.zeros(6)
        f6 = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            on1 = m.body_rootid[m.geom_bodyid[c.geom1]] == self._robot_root
            on2 = m.body_rootid[m.geom_bodyid[c.geom2]] == self._robot_root
            if on1 == on2:  # not touching the arm, or the arm touching itself
                continue
            mujoco.mj_contactForce(m, d, i, f6)
            force = c.frame.reshape(3, 3).T @ f6[:3]  # on geom2, from geom1, in the world frame
            if on1:
                force = -force
            wrench[:3] += force
            wrench[3:] += np.cross(c.pos - tcp, force)
        return wrench

    # -- commands ---------------------------------------------------------------------------------
    def command_pose(self, target_pose, gripper_width: float | None = None) -> None:
        """Stream a target (non-blocking): the planner takes it ``command_delay_s`` later (simulated)."""
        self._require()
        pose = tf.as_pose(target_pose, "target_pose")
        if gripper_width is not None and not math.isfinite(float(gripper_width)):
            raise ValueError(f"gripper width must be finite, got {gripper_width}")
        if self._error is not None:
            raise RobotError(f"robot is in error, call recover() first: {self._error}")
        self._pending.append(_Command(self.world.sim_time() + self.cfg.command_delay_s, pose,
                                      None if gripper_width is None else float(gripper_width)))

    def _start_gripper(self, width: float) -> None:
        if not self.cfg.gripper_enabled:
            return
        width = float(np.clip(width, 0.0, HAND_MAX_WIDTH))
        if abs(width - self._gripper_goal) <= self.cfg.gripper_min_change:
            return
        closing = width < self._gripper_ref - self.cfg.gripper_min_change
        self._gripper_force = min(HAND_MAX_FORCE, self.cfg.gripper_force if closing and self.cfg.grasp_on_close
                                  else self.cfg.gripper_move_force)
        self._gripper_goal = width

    def move_to(self, pose, timeout_s: float) -> None:
        """Move at ``move_to_dynamics_factor`` and step the physics until the pose is reached.

        ``timeout_s`` is simulated time (the motion itself decides how long it takes; stepping
        runs faster than real time). RobotError on error or timeout (the arm is then stopped).
        """
        self._require()
        target = tf.as_pose(pose, "pose")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if self._error is not None:
            raise RobotError(f"robot is in error, call recover() first: {self._error}")
        world = self.world
        self._pending.clear()
        with world.locked():
            t0 = float(world.data.time)
            self._traj.replan(t0, target, self._move_limits)
        deadline = t0 + float(timeout_s)
        world.advance_to(min(deadline, self._traj.end_time()))
        while True:
            if self._error is not None:
                raise RobotError(f"move_to failed: {self._error}")
            state = self.read_state()
            if (np.linalg.norm(state.ee_pose[:3] - target[:3]) <= self.cfg.move_to_tolerance_m
                    and tf.quat_angle(state.ee_pose[3:], target[3:]) <= self.cfg.move_to_tolerance_rad):
                return
            if world.sim_time() >= deadline - 1e-9:
                self.stop()
                raise RobotError(f"move_to did not reach {np.round(target, 4).tolist()} within {timeout_s} s "
                                 f"(simulated; TCP at {np.round(state.ee_pose, 4).tolist()}) (stopped)")
            world.step(1)

    def stop(self) -> None:
        """Drop pending targets and brake to rest at the streaming limits (the arm then holds)."""
        self._require()
        self._pending.clear()
        with self.world.locked():
            self._traj.brake(float(self.world.data.time), self._stream_limits)

    def recover(self) -> bool:
        """Clear the error: the arm holds where it is now. RobotError when the physics state is broken."""
        self._require()
        with self.world.locked():
            d = self.world.data
            if not (np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel))):
                raise RobotError(f"cannot recover: the physics state is not finite (rebuild the env); "
                                 f"original error: {self._error}")
            self._traj.hold(self._osc.tcp_pose(d), float(d.time))
            self._gripper_goal = self._gripper_ref = float(np.sum(d.qpos[self._finger_qadr]))
        self._pending.clear()
        if self._error is not None:
            logger.info("sim arm recovered from: %s", self._error)
        self._error = None
        return True


@dataclass
class MujocoBackendConfig:
    """Settings of the directly stepped backend built by ``make(..., backend="mujoco")``."""

    sim_cameras: list | None = None  # SimCameraConfigs; None = default_sim_cameras(task cameras), as the sim backend
    robot: MujocoRobotConfig | None = None  # None = matching_franky(SimBackendConfig().robot_overrides)

    def __post_init__(self) -> None:
        if self.robot is not None and not isinstance(self.robot, MujocoRobotConfig):
            raise ValueError(f"robot must be a MujocoRobotConfig, got {type(self.robot).__name__}")
