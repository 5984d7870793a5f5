"""Simulated cameras (MuJoCo EGL rendering) and image preprocessing."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("franky_sim")

from robot_envs.camera import CameraError, Frame, from_chw, preprocess, to_chw  # noqa: E402
from robot_envs.sim import SimCamera, SimCameraConfig, SimWorld, SimWorldConfig  # noqa: E402

pytestmark = pytest.mark.sim


def _scene(builder):
    cube = builder.add_object("cube", pose=[0.5, 0.0, 0.03, 0, 0, 0, 1])
    ET.SubElement(cube, "geom", type="box", size="0.03 0.03 0.03", rgba="1 0 0 1")


@pytest.fixture(scope="module")
def world():
    cams = [SimCameraConfig(name="front", position=(1.0, 0.0, 0.5), target=(0.5, 0.0, 0.05)),
            SimCameraConfig(name="top", position=(0.5, 0.0, 1.2), quaternion=(0.0, 0.0, 0.0, 1.0),
                            width=64, height=48),
            SimCameraConfig(name="front_vis", position=(1.0, 0.0, 0.5), target=(0.5, 0.0, 0.05),
                            draw_visual_meshes=True)]
    with SimWorld(SimWorldConfig(cameras=cams, hostname="auto"), scene_hooks=[_scene]) as w:
        yield w


def _red_pixels(img):
    return int(np.sum((img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80)))


def test_frames_have_the_right_shape_and_increasing_stamps(world):
    with SimCamera(world, "front") as cam:
        frames = [cam.read(timeout_s=30.0) for _ in range(3)]
    for f in frames:
        assert isinstance(f, Frame) and f.camera == "front"
        assert f.image.shape == (84, 84, 3) and f.image.dtype == np.uint8
        assert f.image.std() > 5  # a real picture, not a blank buffer
    assert [f.seq for f in frames] == sorted({f.seq for f in frames})
    assert frames[0].stamp < frames[1].stamp < frames[2].stamp
    top = world.render("top")
    assert top.image.shape == (48, 64, 3)


def test_camera_sees_the_object_move(world):
    world.set_object_pose("cube", [0.6, 0.3, 0.03, 0, 0, 0, 1])  # beside the arm, below the top camera
    seen = _red_pixels(world.render("top").image)
    assert seen > 5
    world.set_object_pose("cube", [2.5, 2.5, 0.03, 0, 0, 0, 1])  # far out of view
    assert _red_pixels(world.render("top").image) == 0


def test_visual_meshes_render_differently(world):
    a = world.render("front").image.astype(int)
    b = world.render("front_vis").image.astype(int)
    assert np.abs(a - b).mean() > 1.0  # same viewpoint, different robot geometry drawn


def test_errors_are_clear(world):
    with pytest.raises(CameraError, match="no camera 'side'"):
        SimCamera(world, "side")
    cam = SimCamera(world, "front")
    with pytest.raises(CameraError, match="not open"):
        cam.read()
    with pytest.raises(KeyError, match="unknown sim camera"):
        world.render("side")


def test_preprocess_crop_and_resize():
    img = np.zeros((480, 640, 3), np.uint8)
    img[100:200, 300:400] = [255, 0, 0]
    out = preprocess(img, crop=(300, 100, 100, 100), size=(84, 84))
    assert out.shape == (84, 84, 3) and out.dtype == np.uint8
    assert np.all(out == [255, 0, 0])
    full = preprocess(img, crop=None, size=(48, 64))
    assert full.shape == (48, 64, 3)
    same = preprocess(out, crop=None, size=(84, 84))
    assert same is not out and np.array_equal(same, out)


def test_preprocess_rejects_bad_input():
    img = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        preprocess(img.astype(np.float32), None, (8, 8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        preprocess(np.zeros((48, 64), np.uint8), None, (8, 8))
    with pytest.raises(ValueError, match="does not fit"):
        preprocess(img, (60, 0, 10, 10), (8, 8))
    with pytest.raises(ValueError, match="size"):
        preprocess(img, None, (0, 8))


def test_chw_round_trip():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    chw = to_chw(img)
    assert chw.shape == (3, 6, 5) and chw.flags["C_CONTIGUOUS"]
    assert np.array_equal(from_chw(chw), img)
    with pytest.raises(ValueError):
        from_chw(np.zeros((4, 6, 5), np.uint8))
