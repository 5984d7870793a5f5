"""The plain (no ROS) robot environment: ``make(task, backend)`` -> ``RobotEnv``.

One control step: normalised action ``(A,)`` in [-1, 1] -> ``robot_envs.command.safe_command`` (the one
action -> safe command path: ``action_to_target`` relative to the current TCP pose, then
``SafetyLayer.clamp``) -> ``robot.command_pose`` (non-blocking) -> wait for the next control tick on the
env's clock -> read the robot state and one frame per camera -> task reward.

Observations: ``{"image": (3 * n_cameras, H, W) uint8, "proprio": (P,) float32}``, cameras in the
task's configured order. The sim backend builds a SimWorld (franky-sim FR3 + task scene + rendered
cameras), a FrankyRobot connected to it and SimCameras; the real backend a FrankyRobot and
RealSenseCameras. ``RobotEnv.close()`` (or the context manager) closes everything it was given.
"""
from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from robot_envs.camera import Camera, Frame, policy_image
from robot_envs.clock import Clock, WallClock
from robot_envs.command import safe_command
from robot_envs.robot import Robot, RobotError, RobotState
from robot_envs.safety import SafetyLayer
from robot_envs.tasks import RewardContext, SimTask, Task, get_task

logger = logging.getLogger(__name__)

ConfirmReset = Callable[[str], None]  # called with a prompt; returns once the operator confirmed
LabelSource = Callable[[], "bool | None"]  # returns the operator's success label for the current step


class HumanResetRequired(RuntimeError):
    """A real task needs an operator to confirm the reset, but no confirmation hook was given."""


def console_confirm(prompt: str) -> None:
    """Default reset hook: ask on the terminal; raise HumanResetRequired when stdin is not interactive."""
    if not sys.stdin or not sys.stdin.isatty():
        raise HumanResetRequired(
            f"{prompt} -- but stdin is not a terminal. Pass confirm_reset=<callable> to make()/RobotEnv "
            "(e.g. a teleop button) to confirm resets in a non-interactive context.")
    input(f"{prompt} Press Enter when ready. ")


@dataclass
class EnvConfig:
    """Runtime settings of a RobotEnv (task settings live in the task config)."""

    seed: int | None = None  # RNG seed of reset noise / scene randomisation (None = fresh entropy)
    move_timeout_s: float = 15.0  # max time of the blocking move to the reset pose [s]
    camera_timeout_s: float = 2.0  # max wait for a camera frame [s]
    settle_s: float = 0.1  # clock time to wait after the reset move before the first observation [s]
    max_tick_lag: float = 2.0  # re-anchor the control clock when more than this many periods late
    reset_attempts: int = 3  # tries of the reset move; between them the robot recovers (sim: the scene is re-staged)

    def __post_init__(self) -> None:
        for name in ("move_timeout_s", "camera_timeout_s", "max_tick_lag"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v}")
        if not (math.isfinite(self.settle_s) and self.settle_s >= 0):
            raise ValueError(f"settle_s must be >= 0, got {self.settle_s}")
        if int(self.reset_attempts) < 1:
            raise ValueError(f"reset_attempts must be >= 1, got {self.reset_attempts}")


class RobotEnv:
    """A task on a robot with cameras (see module docstring).

    Args:
        robot: a connected Robot. cameras: opened Cameras, in the order the task lists them.
        task: the Task. clock: the time source for pacing (SimWorld.clock in simulation).
        world: the SimWorld for sim tasks (scene randomisation, privileged object poses), else None.
        config: runtime settings. confirm_reset: human confirmation hook for ``needs_human_reset``
        tasks (default: ask on the terminal, error when not interactive). label_source: returns the
        operator's success label per step (None = no label).
    """

    def __init__(self, robot: Robot, cameras: Sequence[Camera], task: Task, clock: Clock,
                 world: Any = None, config: EnvConfig | None = None,
                 confirm_reset: ConfirmReset | None = None, label_source: LabelSource | None = None) -> None:
        if not cameras:
            raise ValueError("RobotEnv needs at least one camera")
        if isinstance(task, SimTask) and world is None:
            raise ValueError(f"sim task '{task.name}' needs the SimWorld it was built into (world=...)")
        self.robot, self.cameras, self.task, self.clock, self.world = robot, list(cameras), task, clock, world
        self.config = config if config is not None else EnvConfig()
        self.confirm_reset = confirm_reset if confirm_reset is not None else console_confirm
        self.label_source = label_source
        self.safety = SafetyLayer(task.cfg.safety)
        self.rng = np.random.default_rng(self.config.seed)
        self.spec = task.env_spec(len(self.cameras))
        self.period = 1.0 / task.control_hz
        self._t = 0
        self._next_tick: float | None = None
        self._episode = 0
        self._closed = False
        self.last_frames: dict[str, Frame] = {}
        self.last_state: RobotState | None = None

    # ---- episode ------------------------------------------------------------------------------
    def reset(self) -> dict[str, np.ndarray]:
        """Start an episode: pick task variables, move to a sampled reset pose, re-stage the scene.

        Sim: object poses are randomised after the arm reached its reset pose. Real tasks that need
        a human reset call ``confirm_reset`` after the arm moved. Returns the first observation.
        """
        self._require_open()
        self.task.begin_episode(self.rng)
        self._ensure_healthy()
        self._move_to_reset_pose(self.task.sample_reset_pose(self.rng))
        if self.world is not None:
            self.world.reset_scene(self.task.randomise_scene(self.rng))
        if self.task.needs_human_reset:
            self.confirm_reset(f"[{self.task.name}] episode {self._episode + 1}: re-stage the scene.")
        if self.task.cfg.gripper_width is not None:
            width = self.safety.clamp_gripper(self.task.cfg.gripper_width)
            self.robot.command_pose(self.robot.read_state().ee_pose, width)
        self.clock.sleep(self.config.settle_s)
        self._t = 0
        self._episode += 1
        self._next_tick = self.clock.now() + self.period
        return self._observe(self.robot.read_state())

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply one normalised action ``(A,)``; returns ``(obs, reward, terminated, truncated, info)``.

        info: ``success`` (bool), ``safety_clamped`` (target changed by the safety layer),
        ``clamp_distance`` [m], ``t`` (steps in the episode), ``tick_overrun`` (the step missed its
        control tick), ``robot_error`` (str or None) and the task's ``info()``. A robot error (a
        rejected command or an error in the state) truncates the episode; ``reset()`` recovers.
        Raises NonFiniteActionError / ValueError for NaN or wrong-shape actions (nothing is sent).
        """
        self._require_open()
        if self._next_tick is None:
            raise RuntimeError("step() called before reset()")
        state = self.last_state if self.last_state is not None else self.robot.read_state()
        command = safe_command(state.ee_pose, action, self.task.cfg.action, self.safety, self.task.cfg.gripper_width)
        command_error = self._command(command.target, command.gripper)
        overrun = self._wait_tick()
        state = self.robot.read_state()
        obs = self._observe(state)
        reward, success = self.task.outcome(self._reward_context(state))
        self._t += 1
        terminated = bool(success and self.task.terminate_on_success)
        robot_error = command_error or state.error
        truncated = bool(self._t >= self.task.episode_length or robot_error is not None)
        info = {"success": bool(success), "safety_clamped": command.clamped, "clamp_distance": command.clamp_distance,
                "t": self._t,
                "tick_overrun": overrun, "robot_error": robot_error, **self.task.info()}
        return obs, float(reward), terminated, truncated, info

    def close(self) -> None:
        """Close cameras, robot and (sim) world; every close is attempted, the first error re-raised."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for closer in [c.close for c in self.cameras] + [self.robot.close] + ([self.world.close] if self.world else []):
            try:
                closer()
            except Exception as e:  # keep closing the rest; reported below
                logger.error("closing %s failed: %s", getattr(closer, "__self__", closer), e)
                errors.append(e)
        if errors:
            raise errors[0]

    def __enter__(self) -> "RobotEnv":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------------
    def _require_open(self) -> None:
        if self._closed:
            raise RuntimeError("the env is closed")

    def _move_to_reset_pose(self, pose: np.ndarray) -> None:
        """The blocking reset move, retried after a recovery: a peg left jammed in its hole, or a cube under the
        gripper, can make the move fail with a reflex. In sim the scene is re-staged before the retry (the
        obstacle moves away); on a real arm the retry follows the robot's recovery."""
        target = self.safety.clamp(pose, pose)
        for attempt in range(1, self.config.reset_attempts + 1):
            try:
                self.robot.move_to(target, timeout_s=self.config.move_timeout_s)
                return
            except RobotError as exc:
                if attempt == self.config.reset_attempts:
                    raise RobotError(f"reset move failed {attempt} times, last: {exc}") from exc
                logger.warning("reset move failed (%s); recovering and retrying (%d/%d)", exc, attempt,
                               self.config.reset_attempts)
                if not self.robot.recover():
                    raise RobotError(f"robot could not recover after a failed reset move: {exc}") from exc
                if self.world is not None:
                    self.world.reset_scene(self.task.randomise_scene(self.rng))

    def _ensure_healthy(self) -> None:
        state = self.robot.read_state()
        if state.error is not None:
            logger.warning("robot reports an error before reset (%s); recovering", state.error)
            if not self.robot.recover():
                raise RobotError(f"robot could not recover from: {state.error}")

    def _command(self, pose: np.ndarray, width: float | None) -> str | None:
        try:
            self.robot.command_pose(pose, width)
        except RobotError as e:  # returned as info["robot_error"]; the episode is truncated
            logger.warning("robot rejected the command (episode truncated, reset recovers): %s", e)
            return str(e)
        return None

    def _wait_tick(self) -> bool:
        now = self.clock.now()
        overrun = now > self._next_tick
        if now - self._next_tick > self.config.max_tick_lag * self.period:
            self._next_tick = now  # far behind (e.g. a slow render): re-anchor instead of bursting
        else:
            self.clock.sleep_until(self._next_tick)
        self._next_tick += self.period
        return overrun

    def _read_frames(self) -> dict[str, Frame]:
        frames = {}
        for cam in self.cameras:
            frames[cam.name] = cam.read(timeout_s=self.config.camera_timeout_s)
        return frames

    def _observe(self, state: RobotState) -> dict[str, np.ndarray]:
        self.last_state = state
        self.last_frames = self._read_frames()
        image = policy_image([self.last_frames[cam.name].image for cam in self.cameras], self.spec.image_size)
        return {"image": image, "proprio": self.task.proprio(state)}

    def _reward_context(self, state: RobotState) -> RewardContext:
        poses = {}
        if self.world is not None and isinstance(self.task, SimTask) and self.task.object_names:
            poses = self.world.object_poses(list(self.task.object_names))
        label = self.label_source() if self.label_source is not None else None
        return RewardContext(robot_state=state, object_poses=poses,
                             images={n: f.image for n, f in self.last_frames.items()}, human_label=label)


# ------------------------------------------------------------------------------------------------
def default_sim_cameras(names: Sequence[str], image_size: tuple[int, int]) -> list:
    """SimCameraConfigs for the named cameras from a small catalogue that sees the workspace.

    ``front``: facing the robot from +x, above the table; ``side``: from -y; ``top``: from above.
    ``front`` and ``side`` look at the centre of the tasks' work area from about 0.65 m, so that
    together they fix a point's 3D position and a 3 cm target spans ~8 pixels at 84x84.
    """
    from robot_envs.sim import SimCameraConfig

    catalogue = {
        "front": dict(position=(1.08, 0.0, 0.42), target=(0.48, 0.0, 0.13), fovy=50.0),
        "side": dict(position=(0.48, -0.66, 0.38), target=(0.48, 0.0, 0.13), fovy=50.0),
        "top": dict(position=(0.50, 0.0, 0.95), quaternion=(0.0, 0.0, 0.7071068, 0.7071068), target=None, fovy=50.0),
    }
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ValueError(f"no default sim camera named {unknown}; known: {sorted(catalogue)} "
                         "(or pass sim_cameras=[SimCameraConfig(...)] to make())")
    H, W = image_size
    return [SimCameraConfig(name=n, width=W, height=H, **catalogue[n]) for n in names]


@dataclass
class SimBackendConfig:
    """Settings of the simulated backend built by ``make(..., backend="sim")``."""

    realtime_factor: float = 0.0  # 0 = physics as fast as the CPU allows, 1 = wall-clock real time
    hostname: str = "auto"  # loopback address of franky-sim ("auto" = a free random 127.x.y.z)
    sim_cameras: list | None = None  # SimCameraConfigs; None = default_sim_cameras(task cameras)
    # FrankyRobotConfig fields for the sim arm. relative_dynamics_factor 0.4 lets the arm follow a
    # 2 cm/step action at 10 Hz (measured: 17 mm/step; the real-robot default 0.15 gives ~4 mm/step).
    robot_overrides: dict = field(default_factory=lambda: {"move_to_dynamics_factor": 0.3,
                                                           "relative_dynamics_factor": 0.4})

    def __post_init__(self) -> None:
        if not (math.isfinite(self.realtime_factor) and self.realtime_factor >= 0):
            raise ValueError(f"realtime_factor must be >= 0 (0 = as fast as possible), got {self.realtime_factor}")
        if not self.hostname:
            raise ValueError("hostname must be a loopback address or 'auto'")
        if "hostname" in self.robot_overrides:
            raise ValueError("robot_overrides must not set hostname: the sim arm listens on SimWorld.hostname")


def make(task: str | Task, backend: str = "sim", *, config_file: str | None = None,
         env_config: EnvConfig | None = None, sim: SimBackendConfig | None = None,
         robot_config: Any = None, camera_devices: Sequence[Camera] | None = None,
         confirm_reset: ConfirmReset | None = None, label_source: LabelSource | None = None,
         **overrides: Any) -> RobotEnv:
    """Build a RobotEnv for ``task`` (a registered name or a Task) on ``backend`` "sim", "mujoco" or "real".

    "mujoco": the sim backend's world stepped directly in MuJoCo, no franky-sim server and no real-time
    pacing (``robot_envs.sim.direct``); ``sim`` is then a ``MujocoBackendConfig``.

    ``config_file`` (YAML) and ``overrides`` (dotted keys allowed) configure a task given by name.
    Sim: ``sim`` configures the SimWorld / arm. Real: ``robot_config`` is a FrankyRobotConfig (its
    hostname is required) and ``camera_devices`` the opened Camera objects in the task's camera order
    (default: one RealSenseCamera with default settings per task camera name).
    """
    if isinstance(task, str):
        task = get_task(task, config_file, **overrides)
    elif config_file is not None or overrides:
        raise ValueError("config_file/overrides only apply when the task is given by name")
    if backend == "sim":
        if robot_config is not None or camera_devices is not None:
            raise ValueError("robot_config/camera_devices are for backend='real'; "
                             "configure the sim with sim=SimBackendConfig(...)")
        return _make_sim(task, env_config, sim or SimBackendConfig(), confirm_reset, label_source)
    if backend == "mujoco":
        if robot_config is not None or camera_devices is not None:
            raise ValueError("robot_config/camera_devices are for backend='real'; configure the mujoco backend with "
                             "sim=MujocoBackendConfig(...)")
        return _make_mujoco(task, env_config, sim, confirm_reset, label_source)
    if backend == "real":
        return _make_real(task, env_config, robot_config, camera_devices, confirm_reset, label_source)
    raise ValueError(f"backend must be 'sim', 'mujoco' or 'real', got {backend!r}")


def _make_sim(task: Task, env_config, sim: SimBackendConfig, confirm_reset, label_source) -> RobotEnv:
    if not isinstance(task, SimTask):
        raise ValueError(f"task '{task.name}' is a real-robot task; use backend='real'")
    from robot_envs.franky_robot import FrankyRobot, FrankyRobotConfig
    from robot_envs.sim import SimWorld, SimWorldConfig

    cams = sim.sim_cameras
    if cams is None:
        cams = default_sim_cameras(task.cfg.cameras, task.cfg.image_size)
    world = SimWorld(SimWorldConfig(cameras=list(cams), realtime_factor=sim.realtime_factor, hostname=sim.hostname),
                     scene_hooks=[task.add_to_scene])
    return _assemble_sim_env(task, world, lambda: FrankyRobot(FrankyRobotConfig(**{
        "hostname": world.hostname, "ignore_realtime": True, **sim.robot_overrides})), env_config,
        confirm_reset, label_source)


def _assemble_sim_env(task: Task, world, make_robot: Callable[[], Robot], env_config, confirm_reset,
                      label_source) -> RobotEnv:
    """Start ``world``, connect the robot ``make_robot()`` builds (after the start: it may need the world's
    address), open a SimCamera per task camera and wrap them in a RobotEnv; on any error, close what opened."""
    from robot_envs.sim import SimCamera

    opened: list = []
    try:
        world.start()
        opened.append(world)
        robot = make_robot()
        robot.connect()
        opened.append(robot)
        cameras = []
        for name in task.cfg.cameras:
            cam = SimCamera(world, name)
            cam.open()
            opened.append(cam)
            cameras.append(cam)
        return RobotEnv(robot, cameras, task, world.clock, world=world, config=env_config,
                        confirm_reset=confirm_reset, label_source=label_source)
    except BaseException:
        _close_all(opened)
        raise


def _make_mujoco(task: Task, env_config, cfg, confirm_reset, label_source) -> RobotEnv:
    """The ``mujoco`` backend: the sim backend's FR3 model, scene and cameras stepped directly in MuJoCo
    (``robot_envs.sim.direct``); ``cfg`` is a MujocoBackendConfig or None. By default the arm moves like
    the sim backend's (the dynamics factors of ``SimBackendConfig().robot_overrides``)."""
    if not isinstance(task, SimTask):
        raise ValueError(f"task '{task.name}' is a real-robot task; use backend='real'")
    from robot_envs.sim import SimWorldConfig
    from robot_envs.sim.direct import DirectSimWorld, MujocoBackendConfig, MujocoRobot, MujocoRobotConfig

    cfg = cfg if cfg is not None else MujocoBackendConfig()
    if not isinstance(cfg, MujocoBackendConfig):
        raise ValueError(f"backend='mujoco' is configured with sim=MujocoBackendConfig(...), got {type(cfg).__name__}")
    cams = cfg.sim_cameras
    if cams is None:
        cams = default_sim_cameras(task.cfg.cameras, task.cfg.image_size)
    robot_cfg = cfg.robot
    if robot_cfg is None:  # the arm of the sim backend
        robot_cfg = MujocoRobotConfig.matching_franky(SimBackendConfig().robot_overrides)
    world = DirectSimWorld(SimWorldConfig(cameras=list(cams)), scene_hooks=[task.add_to_scene])
    return _assemble_sim_env(task, world, lambda: MujocoRobot(world, robot_cfg), env_config, confirm_reset,
                             label_source)


def _close_all(opened: list) -> None:
    """Close what a failed make() had opened, newest first; the original error is re-raised by the caller."""
    for obj in reversed(opened):
        try:
            obj.close()
        except Exception as e:  # noqa: BLE001 - reported; the make() error matters more
            logger.error("cleanup after a failed make() could not close %s: %s", obj, e)


def _make_real(task: Task, env_config, robot_config, cameras, confirm_reset, label_source) -> RobotEnv:
    if isinstance(task, SimTask):
        raise ValueError(f"task '{task.name}' uses privileged simulator state; use backend='sim'")
    if robot_config is None:
        raise ValueError("backend='real' needs robot_config=FrankyRobotConfig(hostname=<your robot's FCI address>)")
    from robot_envs.franky_robot import FrankyRobot

    opened: list = []
    try:
        if cameras is None:
            from robot_envs.realsense import RealSenseCamera, RealSenseCameraConfig

            H, W = task.cfg.image_size
            cameras = []
            for name in task.cfg.cameras:
                cam = RealSenseCamera(RealSenseCameraConfig(name=name, output_size=(H, W)))
                cam.open()
                opened.append(cam)
                cameras.append(cam)
        robot = FrankyRobot(robot_config)
        robot.connect()
        opened.append(robot)
        names = [c.name for c in cameras]
        if names != list(task.cfg.cameras):
            raise ValueError(f"cameras {names} do not match the task's camera order {list(task.cfg.cameras)}")
        return RobotEnv(robot, cameras, task, WallClock(), config=env_config,
                        confirm_reset=confirm_reset, label_source=label_source)
    except BaseException:
        _close_all(opened)
        raise
