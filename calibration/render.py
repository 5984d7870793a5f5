"""MuJoCo test scenes: a textured calibration board seen by a pinhole camera, both with known poses.

Used by the tests (and usable for trying the tools without hardware). The board and the camera each
hang on a mocap body, so any pair of world poses can be rendered directly:

* ``T_world_board``: the board frame of :mod:`calibration.board` (origin at the pattern's top-left
  corner, x right, y down, z into the board);
* ``T_world_camera``: the OpenCV camera frame (x right, y down, z forward / optical axis).

The camera's intrinsics follow from ``fovy_deg`` and the image size (:func:`intrinsics_from_fovy`).
``MUJOCO_GL`` must be chosen before mujoco is imported; this module sets ``egl`` when unset.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from calibration.board import Board, BoardConfig
from calibration.geometry import check_transform, matrix_to_quat

os.environ.setdefault("MUJOCO_GL", "egl")


@dataclass
class BoardSceneConfig:
    """A board-and-camera MuJoCo scene."""

    width: int = 640  # rendered image width [px]
    height: int = 480  # rendered image height [px]
    fovy_deg: float = 50.0  # vertical field of view of the pinhole camera [deg]
    board: BoardConfig = field(default_factory=BoardConfig)  # the target drawn on the board
    px_per_square: int = 80  # texture resolution: pixels per chessboard square
    margin_px: int = 40  # white texture margin around the pattern [px of the texture]
    thickness: float = 0.004  # board thickness behind the printed face [m]
    background_rgb: tuple[float, float, float] = (0.35, 0.4, 0.45)  # floor/sky colour (0..1)

    def __post_init__(self) -> None:
        if int(self.width) < 32 or int(self.height) < 32:
            raise ValueError(f"image size must be at least 32x32, got {self.width}x{self.height}")
        if not (1.0 < float(self.fovy_deg) < 170.0):
            raise ValueError(f"fovy_deg must be in (1, 170), got {self.fovy_deg}")
        if int(self.px_per_square) < 10 or int(self.margin_px) < 0:
            raise ValueError(f"need px_per_square >= 10 and margin_px >= 0, got {self.px_per_square}, "
                             f"{self.margin_px}")
        if not self.thickness > 0:
            raise ValueError(f"thickness must be > 0 m, got {self.thickness}")


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """(3, 3) K of an ideal pinhole camera (MuJoCo's model: square pixels, centred principal point).

    Principal point in OpenCV pixel coordinates (pixel centres at integers): ((W-1)/2, (H-1)/2).
    """
    fy = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
    return np.array([[fy, 0.0, (width - 1) / 2.0], [0.0, fy, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def _board_mesh(cfg: BoardSceneConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (8, 3) [m], faces (12, 3), texcoords (8, 2) of the board slab in the board frame."""
    b = cfg.board
    s = b.square_length / cfg.px_per_square  # metres per texture pixel
    m = cfg.margin_px
    x0, x1 = -m * s, (b.squares_x * cfg.px_per_square + m) * s
    y0, y1 = -m * s, (b.squares_y * cfg.px_per_square + m) * s
    z1 = cfg.thickness
    front = [(x0, y0, 0), (x1, y0, 0), (x1, y1, 0), (x0, y1, 0)]
    back = [(x, y, z1) for x, y, _ in front]
    verts = np.array(front + back, dtype=np.float64)
    uv = np.array([(0, 0), (1, 0), (1, 1), (0, 1)] * 2, dtype=np.float64)
    # Counter-clockwise seen from outside: the printed face (z = 0) faces -z.
    faces = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7],
                      [0, 5, 4], [0, 1, 5], [1, 6, 5], [1, 2, 6],
                      [2, 7, 6], [2, 3, 7], [3, 4, 7], [3, 0, 4]])
    return verts, faces, uv


def _fmt(a) -> str:
    return " ".join(f"{v:.9g}" for v in np.asarray(a).reshape(-1))


def scene_xml(cfg: BoardSceneConfig, texture_png: str | Path) -> str:
    """The MJCF text of the scene (the board texture is read from ``texture_png``)."""
    verts, faces, uv = _board_mesh(cfg)
    bg = _fmt(cfg.background_rgb)
    return f"""
<mujoco model="calibration_board">
  <visual>
    <global offwidth="{int(cfg.width)}" offheight="{int(cfg.height)}"/>
    <headlight ambient="0.75 0.75 0.75" diffuse="0.25 0.25 0.25" specular="0 0 0"/>
    <quality shadowsize="0"/>
  </visual>
  <asset>
    <texture name="board" type="2d" file="{Path(texture_png).as_posix()}"/>
    <material name="board" texture="board" specular="0" shininess="0" reflectance="0"/>
    <mesh name="board" vertex="{_fmt(verts)}" face="{_fmt(faces.astype(int))}" texcoord="{_fmt(uv)}"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.5" rgba="{bg} 1" contype="0" conaffinity="0"/>
    <body name="board_mount" mocap="true">
      <geom name="board" type="mesh" mesh="board" material="board" contype="0" conaffinity="0"/>
    </body>
    <body name="camera_mount" mocap="true" pos="0 0 1">
      <camera name="cam" quat="0 1 0 0" fovy="{float(cfg.fovy_deg)}"/>
    </body>
  </worldbody>
</mujoco>
"""


class BoardScene:
    """Renders the board from a camera, both placed by world poses. Use as a context manager."""

    def __init__(self, cfg: BoardSceneConfig | None = None) -> None:
        import mujoco  # lazy: only the rendering tests need it

        self.cfg = cfg if cfg is not None else BoardSceneConfig()
        self.board = Board(self.cfg.board)
        self._mj = mujoco
        with tempfile.TemporaryDirectory(prefix="calib_scene_") as tmp:
            png = write_board_texture(self.cfg, tmp)
            self.model = mujoco.MjModel.from_xml_string(scene_xml(self.cfg, png))
        self.data = mujoco.MjData(self.model)
        self._renderer = mujoco.Renderer(self.model, height=int(self.cfg.height), width=int(self.cfg.width))
        self._board_mocap = self.model.body("board_mount").mocapid[0]
        self._cam_mocap = self.model.body("camera_mount").mocapid[0]

    @property
    def K(self) -> np.ndarray:
        """(3, 3) true camera matrix of the rendered images [px]."""
        return intrinsics_from_fovy(self.cfg.fovy_deg, self.cfg.width, self.cfg.height)

    def render(self, T_world_camera: np.ndarray, T_world_board: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of the board with the camera and board at the given world poses."""
        for mocap, T, name in ((self._cam_mocap, T_world_camera, "T_world_camera"),
                               (self._board_mocap, T_world_board, "T_world_board")):
            T = check_transform(T, name)
            q = matrix_to_quat(T[:3, :3])
            self.data.mocap_pos[mocap] = T[:3, 3]
            self.data.mocap_quat[mocap] = [q[3], q[0], q[1], q[2]]  # MuJoCo quaternions are w-first
        self._mj.mj_forward(self.model, self.data)
        self._renderer.update_scene(self.data, camera="cam")
        return self._renderer.render().copy()

    def close(self) -> None:
        """Free the renderer (its GL context)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "BoardScene":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) T_world_camera (OpenCV optical frame) of a camera at ``eye`` looking at ``target`` with
    image-up roughly along ``up`` (world frame, metres)."""
    eye, target, up = (np.asarray(v, np.float64).reshape(3) for v in (eye, target, up))
    z = target - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("eye and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, -up)  # image x (right) is perpendicular to the view direction and to up
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("up is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], axis=1)
    T[:3, 3] = eye
    return T


# ---------------------------------------------------------------------------------------------
# Synthetic data sets with a known answer (tests and the accuracy benchmark)
# ---------------------------------------------------------------------------------------------
def _random_tilt(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    from calibration.geometry import exp_so3

    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    T = np.eye(4)
    T[:3, :3] = exp_so3(axis * np.deg2rad(rng.uniform(0.0, max_deg)))
    return T


def board_centred(scene: BoardScene, T_world_centre: np.ndarray) -> np.ndarray:
    """T_world_board whose pattern centre sits at ``T_world_centre`` (same axes)."""
    w, h = scene.cfg.board.size_m
    T = np.eye(4)
    T[:3, 3] = [-w / 2, -h / 2, 0.0]
    return T_world_centre @ T


def render_intrinsic_views(scene: BoardScene, n: int, rng: np.random.Generator,
                           max_tries: int = 100) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` renders of the board (at the world origin) in which it is detected, seen from 0.35-0.6 m
    at 9-37 deg incidence with random roll: [(image (H, W, 3) uint8, T_world_camera (4, 4))]."""
    from calibration.geometry import exp_so3

    centre = np.r_[np.array(scene.cfg.board.size_m) / 2, 0.0]
    views: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(max_tries):
        if len(views) == n:
            return views
        d, th, ph = rng.uniform(0.35, 0.6), rng.uniform(0.15, 0.65), rng.uniform(0, 2 * np.pi)
        eye = centre + d * np.array([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), -np.cos(th)])
        T = look_at(eye, centre + np.r_[rng.normal(size=2) * 0.03, 0.0], up=(0.0, -1.0, 0.0))
        roll = np.eye(4)
        roll[:3, :3] = exp_so3([0.0, 0.0, rng.uniform(-0.6, 0.6)])
        T = T @ roll
        img = scene.render(T, np.eye(4))
        if scene.board.detect(img) is not None:
            views.append((img, T))
    raise RuntimeError(f"only {len(views)} of {n} views showed the board after {max_tries} tries")


def render_eye_to_hand(scene: BoardScene, n: int, rng: np.random.Generator, T_base_camera: np.ndarray,
                       T_tcp_board: np.ndarray, workspace_centre=(0.5, 0.0, 0.3), spread_m: float = 0.08,
                       max_tilt_deg: float = 30.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Board held by the gripper, camera fixed: [(image, T_base_tcp)] for ``n`` random TCP poses that
    turn the board towards the camera (tilted up to ``max_tilt_deg``); the world frame is the base."""
    out = []
    c0 = np.asarray(workspace_centre, np.float64)
    for _ in range(n):
        centre = c0 + rng.uniform(-spread_m, spread_m, size=3)
        facing = look_at(centre, 2 * centre - T_base_camera[:3, 3])  # board z points away from the camera
        T_base_board = board_centred(scene, facing @ _random_tilt(rng, max_tilt_deg))
        T_base_tcp = T_base_board @ np.linalg.inv(T_tcp_board)
        out.append((scene.render(T_base_camera, T_base_board), T_base_tcp))
    return out


def render_eye_in_hand(scene: BoardScene, n: int, rng: np.random.Generator, T_base_board: np.ndarray,
                       T_tcp_camera: np.ndarray, height_m=(0.3, 0.5), spread_m: float = 0.15,
                       max_tries: int = 100) -> list[tuple[np.ndarray, np.ndarray]]:
    """Camera on the flange, board fixed: [(image, T_base_tcp)] for ``n`` views (board detected) from
    ``height_m`` above the board's centre along its normal, shifted up to ``spread_m``, random roll."""
    centre = (T_base_board @ np.r_[np.array(scene.cfg.board.size_m) / 2, 0.0, 1.0])[:3]
    normal = -T_base_board[:3, 2]  # the printed side faces -z of the board frame
    e1 = T_base_board[:3, 0]
    e2 = np.cross(normal, e1)
    out = []
    for _ in range(max_tries):
        if len(out) == n:
            return out
        a, b = rng.uniform(-spread_m, spread_m, size=2)
        eye = centre + a * e1 + b * e2 + rng.uniform(*height_m) * normal
        ang = rng.uniform(0, 2 * np.pi)
        T_base_camera = look_at(eye, centre + rng.normal(size=3) * 0.02, up=np.cos(ang) * e1 + np.sin(ang) * e2)
        img = scene.render(T_base_camera, T_base_board)
        if scene.board.detect(img) is not None:
            out.append((img, T_base_camera @ np.linalg.inv(T_tcp_camera)))
    raise RuntimeError(f"only {len(out)} of {n} views showed the board after {max_tries} tries")


def write_board_texture(cfg: BoardSceneConfig, directory: str | Path) -> Path:
    """Write the board texture (RGB PNG, ``margin_px`` white border) into ``directory``; returns its path."""
    png = Path(directory) / "calibration_board.png"
    img = Board(cfg.board).image(cfg.px_per_square, cfg.margin_px)
    if not cv2.imwrite(str(png), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)):
        raise OSError(f"could not write the board texture {png}")
    return png


def attach_board(asset, parent_body, cfg: BoardSceneConfig, texture_png: str | Path, T_parent_board: np.ndarray,
                 name: str = "calib_board"):
    """Add the textured board to an MJCF element tree (xml.etree) as a massless-looking visual body.

    Args:
        asset: the <asset> element to receive the texture, material and mesh.
        parent_body: the <body> (or <worldbody>) element the board hangs on, e.g. a robot's hand.
        cfg: board geometry; texture_png: from :func:`write_board_texture`.
        T_parent_board: (4, 4) pose of the board frame in the parent body frame [m].
    Returns:
        the new <body> element (named ``name``).
    """
    import xml.etree.ElementTree as ET

    T = check_transform(T_parent_board, "T_parent_board")
    verts, faces, uv = _board_mesh(cfg)
    ET.SubElement(asset, "texture", name=f"{name}_tex", type="2d", file=Path(texture_png).as_posix())
    ET.SubElement(asset, "material", name=f"{name}_mat", texture=f"{name}_tex", specular="0", shininess="0",
                  reflectance="0")
    ET.SubElement(asset, "mesh", name=f"{name}_mesh", vertex=_fmt(verts), face=_fmt(faces.astype(int)),
                  texcoord=_fmt(uv))
    q = matrix_to_quat(T[:3, :3])
    body = ET.SubElement(parent_body, "body", name=name, pos=_fmt(T[:3, 3]), quat=_fmt([q[3], q[0], q[1], q[2]]))
    ET.SubElement(body, "geom", name=f"{name}_geom", type="mesh", mesh=f"{name}_mesh", material=f"{name}_mat",
                  contype="0", conaffinity="0", group="0", mass="0.001")
    return body
