"""SimWorld: a franky-sim FR3 served over the libfranka protocol, a MuJoCo task scene and cameras.

The real franky client connects to ``SimWorld.hostname`` exactly as to a real arm. Physics runs in
this object's own thread (1 ms MuJoCo steps through ``SimulationServer.run_once``), paced to
``realtime_factor`` x wall-clock (0 = as fast as the CPU allows). One lock guards the MuJoCo model
and data: the physics step, render-scene updates, object pose reads and writes all take it (MuJoCo
data is not thread-safe). Rendering itself (the slow part) runs outside the lock on a snapshot.

Faster than real time (``realtime_factor=0`` or > 1): franky's motions are driven by the robot's
state packets, so they follow the simulator's clock. Verified here: blocking moves reach their
targets (tests/backend/test_sim_world.py) and streamed ``command_pose`` episodes reached their goals
in 14 of 15 trials; the one failure was franky's planner aborting with "Motion planner failed with
error code -101" (recovered by ``recover()``) on a heavily loaded machine, so 1.0 stays the default
and callers at 0 must handle RobotError/recover like on a real arm. The gain is bounded by the cost
of one step (~0.75 ms CPU: physics + kinematics + packets): ~1.3x real time on an idle 2-core
machine, and below real time when the CPU is shared (0.2-0.5x measured under load average 6-18).
Pace control loops with ``SimWorld.clock`` (sim time), never wall time.

Lockstep with franky (``lockstep_timeout_s``): franky-sim alone steps on whether or not franky has
answered the last state packet. When franky's control thread is starved of CPU (a loaded machine;
software-GL rendering in the same process, which by default used every core) franky then plans from
stale states: the arm drifts off course or the planner fails (-101/-110/-111). This showed up as
"a second SimWorld in the same process goes off course" (tests/backend/test_sim_restart.py), but
it was the CPU starvation during rendering, not state left over from the first world (physics
was checked to be bit-identical across worlds, renderers are closed). So: while a motion runs, each
step waits (bounded) for franky's command, and llvmpipe renders with one thread (LP_NUM_THREADS).

Frames: world = robot base frame (z up, robot base at the origin). Poses ``(7,)``
``[x, y, z, qx, qy, qz, qw]``, metres.

Run standalone: ``python -m robot_envs.sim.world --hostname 127.0.0.1`` serves franky until Ctrl-C.
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
# Mesa llvmpipe (software GL) rasterises with one worker thread per core by default: a render then
# takes every core for tens of ms and starves franky's 1 kHz control thread (planner errors, the arm
# drifting off course). One worker renders an 84x84 frame about as fast. Set it before GL is loaded.
os.environ.setdefault("LP_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Callable, Iterator, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from robot_envs import transforms as tf  # noqa: E402
from robot_envs.camera import Frame  # noqa: E402
from robot_envs.clock import SimClock  # noqa: E402
from robot_envs.sim.scene import SceneBuilder  # noqa: E402

logger = logging.getLogger(__name__)

ROBOT_PREFIX = "robot0_"
_VISUAL_GROUP, _COLLISION_GROUP = 2, 3  # geom groups of the FR3 model (franky_sim/assets/fr3.xml)


class SimWorldError(RuntimeError):
    """The simulated world failed (could not start, physics thread died, unknown name)."""


@dataclass
class SimCameraConfig:
    """A fixed camera in the world frame, aimed by ``quaternion`` if given, else by the look-at ``target``."""

    name: str = "front"  # camera name (also the MJCF camera name)
    position: tuple[float, float, float] = (1.2, 0.0, 0.7)  # optical centre in the world frame [m]
    target: tuple[float, float, float] | None = (0.5, 0.0, 0.15)  # look-at point [m]; image "up" ~ world +z
    # [qx,qy,qz,qw] of the camera frame (looks along -z, y up); overrides target
    quaternion: tuple[float, float, float, float] | None = None
    fovy: float = 45.0  # vertical field of view [deg]
    width: int = 84  # image width [px]
    height: int = 84  # image height [px]
    draw_visual_meshes: bool = False  # True: detailed FR3 meshes (~2.5x slower); False: collision geoms only

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"camera name must be non-empty without spaces, got {self.name!r}")
        if self.quaternion is not None:
            self.target = None  # an explicit orientation wins over the default look-at point
        if self.target is None and self.quaternion is None:
            raise ValueError(f"camera {self.name!r}: give a look-at target or a quaternion")
        self.position = tuple(_finite(self.position, 3, "position"))
        if self.target is not None:
            self.target = tuple(_finite(self.target, 3, "target"))
            if np.linalg.norm(np.subtract(self.target, self.position)) < 1e-6:
                raise ValueError(f"camera {self.name!r}: target equals position")
        if self.quaternion is not None:
            self.quaternion = tuple(tf.quat_normalize(_finite(self.quaternion, 4, "quaternion")).tolist())
        if not (0 < self.fovy < 180):
            raise ValueError(f"camera {self.name!r}: fovy must be in (0, 180) deg, got {self.fovy}")
        if not (0 < int(self.width) <= 4096 and 0 < int(self.height) <= 4096):
            raise ValueError(f"camera {self.name!r}: width/height must be in 1..4096, got {self.width}x{self.height}")

    def xyaxes(self) -> np.ndarray:
        """(6,) MJCF ``xyaxes`` (camera x = image right, camera y = image up) in the world frame."""
        if self.quaternion is not None:
            m = tf.quat_to_matrix(self.quaternion)
            return np.concatenate([m[:, 0], m[:, 1]])
        fwd = np.subtract(self.target, self.position)
        fwd = fwd / np.linalg.norm(fwd)
        up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.999 else np.array([1.0, 0.0, 0.0])
        x = np.cross(fwd, up)
        x /= np.linalg.norm(x)
        y = np.cross(-fwd, x)
        return np.concatenate([x, y])


def _finite(values, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be {n} finite numbers, got {values}")
    return arr


@dataclass
class SimWorldConfig:
    """The simulated world."""

    cameras: list[SimCameraConfig] = field(default_factory=lambda: [SimCameraConfig()])  # rendered cameras
    realtime_factor: float = 1.0  # 1.0 = wall-clock real time, 2.0 = twice as fast, 0 = as fast as possible
    hostname: str = "127.0.0.1"  # loopback address franky-sim listens on (ports 1337/1338); "auto" = a free 127.x.y.z
    initial_joint_positions: tuple[float, ...] | None = None  # (7,) start joints [rad]; None = franky-sim default
    table_height: float = 0.0  # top of a box table in front of the robot [m]; 0 = no table (objects on the floor)
    table_size_xy: tuple[float, float] = (0.6, 0.8)  # table extent [m]
    table_center_xy: tuple[float, float] = (0.6, 0.0)  # table centre in the world frame [m]
    # Off by default: on software GL (llvmpipe, no GPU) an 84x84 frame of the reach scene takes ~19 ms with
    # 256 px shadows and 4x MSAA, ~9 ms with either, ~4.6 ms with neither (2-core machine, idle); the camera
    # node's renders compete with the learner for the CPU. Two views fix an object's 3D position without shadows.
    # shadow map resolution [px] (e.g. 256; 4096 costs ~130 ms/frame on software GL); 0 = no shadows
    shadow_map_size: int = 0
    render_samples: int = 0  # multisample anti-aliasing samples of the offscreen buffer (e.g. 4; 0 = off)
    max_catchup_steps: int = 50  # physics steps allowed back-to-back after a stall before the pace resets
    # while a franky motion runs, each step waits up to this wall time for the client's answer to the last state
    # packet [s]; 0 = off
    lockstep_timeout_s: float = 0.2
    start_timeout_s: float = 30.0  # max wall time to build and start the simulation [s]

    def __post_init__(self) -> None:
        if not np.isfinite(self.realtime_factor) or self.realtime_factor < 0:
            raise ValueError(f"realtime_factor must be >= 0 (0 = as fast as possible), got {self.realtime_factor}")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")
        if not self.hostname:
            raise ValueError("hostname must be a loopback address such as 127.0.0.1, or 'auto'")
        if self.initial_joint_positions is not None:
            self.initial_joint_positions = tuple(_finite(self.initial_joint_positions, 7, "initial_joint_positions"))
        if self.table_height < 0:
            raise ValueError(f"table_height must be >= 0, got {self.table_height}")
        if not (0 <= int(self.shadow_map_size) <= 8192) or not (0 <= int(self.render_samples) <= 16):
            raise ValueError(f"need 0 <= shadow_map_size <= 8192 and 0 <= render_samples <= 16, got "
                             f"{self.shadow_map_size}, {self.render_samples}")
        if not (np.isfinite(self.lockstep_timeout_s) and 0 <= self.lockstep_timeout_s <= 1.0):
            raise ValueError(f"lockstep_timeout_s must be in [0, 1] s (0 = off), got {self.lockstep_timeout_s}")
        if self.max_catchup_steps < 1:
            raise ValueError(f"max_catchup_steps must be >= 1, got {self.max_catchup_steps}")


def _auto_hostnames(n: int = 200) -> Iterator[str]:
    """Random loopback addresses (avoids clashing with other sims started on this machine)."""
    rng = random.Random()
    for _ in range(n):
        yield f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


SceneHook = Callable[[SceneBuilder], None]


class SimWorld:
    """franky-sim FR3 + task scene + cameras. Context manager: ``with SimWorld(cfg, hooks) as w:``.

    Args:
        cfg: the world configuration.
        scene_hooks: callables run on a ``SceneBuilder`` before the simulation starts (tasks add
            their objects here).
    """

    #: the physics thread runs on while a frame renders (a slow render means an older frame than the arm)
    advances_while_rendering = True

    def __init__(self, cfg: SimWorldConfig | None = None, scene_hooks: Sequence[SceneHook] = ()) -> None:
        self.cfg = cfg if cfg is not None else SimWorldConfig()
        self._hooks = tuple(scene_hooks)
        self._lock = threading.Lock()
        self._waiting = 0  # threads waiting for the lock (the physics loop yields to them)
        self._waiting_lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._sim = self._server = self._model = self._data = None
        self._hostname: str | None = None
        self._objects: list[str] = []
        self._cams = {c.name: c for c in self.cfg.cameras}
        self._seq = {c.name: 0 for c in self.cfg.cameras}
        self._render_cache: dict[str, tuple] = {}
        self._render_locks = {c.name: threading.Lock() for c in self.cfg.cameras}
        self._physics_error: BaseException | None = None
        self._steps = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "SimWorld":
        """Build the scene, bind franky-sim on the hostname and start the physics thread."""
        if self._thread is not None:
            raise SimWorldError("SimWorld already started")
        from franky_sim import SimulationServer

        self._create_simulator()
        candidates = _auto_hostnames() if self.cfg.hostname == "auto" else [self.cfg.hostname]
        self._server = SimulationServer(self._sim, hostname_candidates=candidates)
        try:
            self._server.init()
        except OSError as e:
            self._sim.cleanup()
            raise SimWorldError(f"franky-sim could not listen on {self.cfg.hostname} (ports 1337/1338): {e}. "
                                "Is another simulator using this address? Use hostname='auto'.") from e
        self._hostname = self._server.robot_servers[0].hostname
        self._model, self._data = self._sim.model, self._sim.data
        self._stop.clear()
        self._thread = threading.Thread(target=self._physics_loop, name="sim-physics", daemon=True)
        self._thread.start()
        logger.info("SimWorld serving franky on %s (realtime_factor=%s)", self._hostname, self.cfg.realtime_factor)
        return self

    def close(self) -> None:
        """Stop physics, close the franky-sim sockets and the renderers. Safe to call twice."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                logger.error("sim physics thread did not stop within 5 s")
            self._thread = None
        self._close_renderers()
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._sim is not None and self._sim.is_initialized and not self._sim.is_cleaned_up:
            self._sim.cleanup()
        self._sim = self._model = self._data = None

    def __enter__(self) -> "SimWorld":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    # -- scene ----------------------------------------------------------------------------------
    def _create_simulator(self) -> None:
        """Create franky-sim's MuJoCo simulator with the FR3 and build the task scene into it (not
        compiled yet: ``self._sim.start()`` compiles it; the franky-sim server calls that itself).
        Shared with ``robot_envs.sim.direct.DirectSimWorld``, which steps the same model without a server."""
        from franky_sim.mujoco_simulator import MujocoSimulator

        self._sim = MujocoSimulator(enable_visualization=False)
        self._sim.init()
        kwargs = {}
        if self.cfg.initial_joint_positions is not None:
            kwargs["initial_q"] = self.cfg.initial_joint_positions
        self._sim.add_robot(**kwargs)
        self._build_scene()

    def _build_scene(self) -> None:
        builder = SceneBuilder(self._sim.scene, self._sim.worldbody, ROBOT_PREFIX)
        if self.cfg.table_height > 0:
            builder.add_table(self.cfg.table_height, self.cfg.table_size_xy, self.cfg.table_center_xy)
        for hook in self._hooks:
            hook(builder)
        self._objects = list(builder.objects)
        for cam in self.cfg.cameras:
            ET.SubElement(self._sim.worldbody, "camera", name=cam.name, mode="fixed",
                          pos=" ".join(f"{v:.6g}" for v in cam.position),
                          xyaxes=" ".join(f"{v:.6g}" for v in cam.xyaxes()), fovy=f"{cam.fovy:.6g}")
        visual = self._sim.scene.find("visual")
        if visual is None:
            visual = ET.SubElement(self._sim.scene, "visual")
        w = max([640] + [int(c.width) for c in self.cfg.cameras])
        h = max([480] + [int(c.height) for c in self.cfg.cameras])
        ET.SubElement(visual, "global", offwidth=str(w), offheight=str(h))
        quality = visual.find("quality")
        if quality is None:
            quality = ET.SubElement(visual, "quality")
        quality.set("shadowsize", str(int(self.cfg.shadow_map_size)))
        quality.set("offsamples", str(int(self.cfg.render_samples)))

    # -- physics thread -------------------------------------------------------------------------
    def _physics_loop(self) -> None:
        rf = float(self.cfg.realtime_factor)
        period = 0.001 / rf if rf > 0 else 0.0
        next_t = time.perf_counter()
        try:
            while not self._stop.is_set():
                if self._paused.is_set():
                    time.sleep(0.001)
                    next_t = time.perf_counter()
                    continue
                if self._waiting:
                    time.sleep(0.0001)  # let a render / pose read take the lock
                with self._lock:
                    self._server.run_once(False)
                    self._steps += 1
                    waiting_for = self._motion_command_sockets()
                if waiting_for:
                    select.select(waiting_for, [], [], self.cfg.lockstep_timeout_s)
                if period > 0:
                    next_t += period
                    delay = next_t - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    elif -delay > period * self.cfg.max_catchup_steps:
                        next_t = time.perf_counter()
        except BaseException as e:  # reported through physics_error / _check_alive, and logged
            self._physics_error = e
            logger.exception("sim physics thread died")

    def _motion_command_sockets(self) -> list:
        """UDP sockets of robot servers running a franky motion (lockstep, see below), else [].

        Lockstep: like the real arm, franky answers every 1 ms state packet with a command, but
        franky-sim steps on without waiting for it. When the client is starved of CPU (a
        loaded machine, software-GL rendering in the same process), franky then plans from
        stale states and its planner fails (-101/-110/-111) or the arm drifts off course.
        Waiting (bounded) for the answer makes a slow client slow the simulation down instead.
        """
        if self.cfg.lockstep_timeout_s <= 0:
            return []
        socks = []
        for rs in self._server.robot_servers:
            if rs.current_motion_id and rs.udp_connected:
                sock = getattr(rs, "_FrankaServer__udp_socket", None)  # franky-sim 1.0.x private attribute
                if sock is not None:
                    socks.append(sock)
        return socks

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._check_alive()
        with self._waiting_lock:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def _check_alive(self) -> None:
        if self._physics_error is not None:
            raise SimWorldError(f"sim physics thread died: {self._physics_error!r}") from self._physics_error
        if self._data is None:
            raise SimWorldError("SimWorld is not started (use it as a context manager or call start())")

    def pause(self) -> None:
        """Freeze physics (the franky connection times out after ~1 s of silence, like a cable pull)."""
        self._paused.set()

    def resume(self) -> None:
        """Continue physics after ``pause()``."""
        self._paused.clear()

    # -- queries --------------------------------------------------------------------------------
    @property
    def hostname(self) -> str:
        """Address to give franky (``franky.Robot(hostname)`` / FrankyRobotConfig.hostname)."""
        if self._hostname is None:
            raise SimWorldError("SimWorld is not started")
        return self._hostname

    @property
    def camera_names(self) -> list[str]:
        """Configured camera names, in config order."""
        return list(self._cams)

    @property
    def object_names(self) -> list[str]:
        """Objects registered by the scene hooks through ``SceneBuilder.add_object``."""
        return list(self._objects)

    @property
    def physics_steps(self) -> int:
        """Number of 1 ms physics steps run so far."""
        return self._steps

    def sim_time(self) -> float:
        """Simulation time [s] (1 ms per physics step)."""
        self._check_alive()
        return float(self._data.time)

    @property
    def clock(self) -> SimClock:
        """A Clock on simulation time (lets a control loop follow the simulator's pace)."""
        return SimClock(self.sim_time)

    def camera_pose(self, camera_name: str, convention: str = "opencv") -> np.ndarray:
        """World pose ``(7,) [x, y, z, qx, qy, qz, qw]`` [m] of a configured camera, read from MuJoCo.

        ``convention="opencv"``: optical frame x right, y down, z forward (what calibration
        estimates); ``"mujoco"``: MuJoCo's camera frame x right, y up, looking along -z.
        """
        import mujoco

        if convention not in ("opencv", "mujoco"):
            raise ValueError(f"convention must be 'opencv' or 'mujoco', got {convention!r}")
        if camera_name not in self._cams:
            raise KeyError(f"unknown sim camera {camera_name!r}; configured: {list(self._cams)}")
        cid = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, camera_name)
        with self._locked():
            pos = np.array(self._data.cam_xpos[cid], dtype=np.float64)
            rot = np.array(self._data.cam_xmat[cid], dtype=np.float64).reshape(3, 3)
        if convention == "opencv":
            rot = rot @ np.diag([1.0, -1.0, -1.0])
        return np.concatenate([pos, tf.matrix_to_quat(rot)])

    def camera_intrinsics(self, camera_name: str) -> np.ndarray:
        """``(3, 3)`` pinhole K [px] of a configured camera (MuJoCo renders square pixels without
        distortion; principal point at the image centre in OpenCV pixel coordinates, ((W-1)/2, (H-1)/2))."""
        cam = self._cams.get(camera_name)
        if cam is None:
            raise KeyError(f"unknown sim camera {camera_name!r}; configured: {list(self._cams)}")
        f = 0.5 * int(cam.height) / np.tan(np.deg2rad(cam.fovy) / 2.0)
        return np.array([[f, 0.0, (int(cam.width) - 1) / 2.0], [0.0, f, (int(cam.height) - 1) / 2.0],
                         [0.0, 0.0, 1.0]])

    def _body_id(self, name: str) -> int:
        import mujoco

        bid = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_BODY, name)
        if bid < 0:
            raise KeyError(f"no body named {name!r} in the sim scene (objects: {self._objects})")
        return int(bid)

    def object_poses(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """World poses ``{name: (7,) [x,y,z,qx,qy,qz,qw]}`` of bodies (default: the registered objects)."""
        names = self._objects if names is None else list(names)
        ids = {n: self._body_id(n) for n in names}
        with self._locked():
            return {n: np.concatenate([self._data.xpos[i], tf.wxyz_to_xyzw(self._data.xquat[i])])
                    for n, i in ids.items()}

    def set_object_pose(self, name: str, pose) -> None:
        """Place a body: free-joint bodies via qpos (velocity zeroed), joint-less bodies via
        model.body_pos/quat (pose in the PARENT body's frame; the world for top-level bodies)."""
        self.reset_scene({name: pose})

    def reset_scene(self, poses: dict[str, np.ndarray]) -> None:
        """Set several body poses at once (see ``set_object_pose``), atomically w.r.t. physics."""
        import mujoco

        plan = []
        for name, pose in poses.items():
            p = tf.as_pose(pose, f"pose of {name}")
            plan.append((name, self._body_id(name), p))
        with self._locked():
            for name, bid, p in plan:
                self._place_body(name, bid, p)
            mujoco.mj_forward(self._model, self._data)

    def _place_body(self, name: str, bid: int, p: np.ndarray) -> None:
        import mujoco

        m, d = self._model, self._data
        njnt, jadr = int(m.body_jntnum[bid]), int(m.body_jntadr[bid])
        if njnt == 0:
            m.body_pos[bid] = p[:3]
            m.body_quat[bid] = tf.xyzw_to_wxyz(p[3:])
        elif njnt == 1 and m.jnt_type[jadr] == mujoco.mjtJoint.mjJNT_FREE:
            q, v = int(m.jnt_qposadr[jadr]), int(m.jnt_dofadr[jadr])
            d.qpos[q:q + 3] = p[:3]
            d.qpos[q + 3:q + 7] = tf.xyzw_to_wxyz(p[3:])
            d.qvel[v:v + 6] = 0.0
        else:
            raise ValueError(f"body {name!r} has {njnt} non-free joint(s); only free or static bodies can be placed")

    # -- rendering ------------------------------------------------------------------------------
    # One renderer per camera, shared by all threads: each render makes its GL context current
    # and releases it afterwards, so any thread may render (and close) it; a per-camera lock
    # serialises two threads rendering the same camera.
    def _renderer(self, cam: SimCameraConfig):
        import mujoco

        if cam.name not in self._render_cache:
            renderer = mujoco.Renderer(self._model, height=int(cam.height), width=int(cam.width))
            _release_current_gl()  # the constructor left its context current in this thread
            opt = mujoco.MjvOption()
            opt.geomgroup[:] = 0
            opt.geomgroup[0] = opt.geomgroup[1] = 1
            opt.geomgroup[_VISUAL_GROUP if cam.draw_visual_meshes else _COLLISION_GROUP] = 1
            self._render_cache[cam.name] = (renderer, opt)
        return self._render_cache[cam.name]

    def render(self, camera_name: str) -> Frame:
        """Render one (H, W, 3) uint8 RGB frame of a configured camera.

        The stamp is ``time.monotonic()`` when the scene was captured (the sim time is
        ``sim_time()``); ``seq`` counts frames per camera from 1.
        """
        cam = self._cams.get(camera_name)
        if cam is None:
            raise KeyError(f"unknown sim camera {camera_name!r}; configured: {list(self._cams)}")
        self._check_alive()
        with self._render_locks[cam.name]:
            renderer, opt = self._renderer(cam)
            with self._locked():
                renderer.update_scene(self._data, camera=cam.name, scene_option=opt)
                stamp = time.monotonic()
            with _gl_scope(renderer):
                image = renderer.render()
            self._seq[cam.name] += 1
            return Frame(image=np.array(image, dtype=np.uint8, copy=True), stamp=stamp,
                         seq=self._seq[cam.name], camera=cam.name)

    def _close_renderers(self) -> None:
        for name, (renderer, _) in list(self._render_cache.items()):
            with self._render_locks[name]:
                try:
                    renderer.close()
                except Exception as e:  # report and keep closing the others
                    logger.warning("closing the renderer of camera %r failed: %s", name, e)
        self._render_cache.clear()


@contextlib.contextmanager
def _gl_scope(renderer) -> Iterator[None]:
    """Make the renderer's GL context current for the block, then release it."""
    ctx = getattr(renderer, "_gl_context", None)
    if ctx is None or not hasattr(ctx, "as_current"):
        yield
        return
    with ctx.as_current():
        yield


def _release_current_gl() -> None:
    """Release this thread's current EGL context (so another thread may make it current)."""
    if os.environ.get("MUJOCO_GL") != "egl":
        return
    from mujoco import egl

    if egl.EGL_DISPLAY is not None:
        egl.EGL.eglMakeCurrent(egl.EGL_DISPLAY, egl.EGL.EGL_NO_SURFACE, egl.EGL.EGL_NO_SURFACE,
                               egl.EGL.EGL_NO_CONTEXT)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a franky-sim FR3 until Ctrl-C."""
    ap = argparse.ArgumentParser(description="Serve a simulated FR3 (franky-sim) for franky clients.")
    ap.add_argument("--hostname", default="127.0.0.1", help="loopback address to listen on, or 'auto'")
    ap.add_argument("--realtime-factor", type=float, default=1.0, help="1 = real time, 0 = as fast as possible")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop cleanly on SIGTERM too
    cfg = SimWorldConfig(cameras=[], hostname=args.hostname, realtime_factor=args.realtime_factor)
    with SimWorld(cfg) as world:
        print(f"franky-sim FR3 listening on {world.hostname}; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(0.5)
                world.sim_time()  # raises if the physics thread died
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
