"""The success classifier on MuJoCo-rendered frames: a cube on a table, inside (success) or outside (failure)
a green goal region, seen by a camera whose pose and the lighting jitter between frames."""
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
mujoco = pytest.importorskip("mujoco")

from robot_envs.classifier import ClassifierConfig, SuccessClassifier  # noqa: E402

SCENE = """
<mujoco>
  <visual><global offwidth="64" offheight="48"/></visual>
  <worldbody>
    <light name="key" pos="0 0 2" dir="0 0 -1" diffuse="0.8 0.8 0.8"/>
    <geom type="plane" size="1 1 0.01" rgba="0.45 0.5 0.6 1"/>
    <geom name="goal" type="cylinder" pos="0.1 0 0.001" size="0.08 0.001" rgba="0.1 0.8 0.2 1"/>
    <body name="cube" pos="0 0 0.02"><freejoint/>
      <geom type="box" size="0.025 0.025 0.025" rgba="0.9 0.15 0.1 1"/></body>
    <camera name="cam" pos="0.1 -0.55 0.45" xyaxes="1 0 0 0 0.63 0.77" fovy="50"/>
  </worldbody>
</mujoco>
"""
GOAL_XY = np.array([0.1, 0.0])


def render_dataset(seed: int, n_pos: int, n_neg: int) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives): (N, 48, 64, 3) uint8 frames rendered by MuJoCo."""
    rng = np.random.default_rng(seed)
    model = mujoco.MjModel.from_xml_string(SCENE)
    data = mujoco.MjData(model)
    cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "cam")
    cam_pos0 = model.cam_pos[cam_id].copy()
    frames = {True: [], False: []}
    with mujoco.Renderer(model, 48, 64) as renderer:
        for success in [True] * n_pos + [False] * n_neg:
            radius = rng.uniform(0.0, 0.05) if success else rng.uniform(0.13, 0.3)
            angle = rng.uniform(0, 2 * np.pi)
            xy = GOAL_XY + radius * np.array([np.cos(angle), np.sin(angle)])
            data.qpos[:3] = [xy[0], xy[1], 0.025]
            data.qpos[3:7] = [np.cos(a := rng.uniform(0, np.pi) / 2), 0, 0, np.sin(a)]
            model.cam_pos[cam_id] = cam_pos0 + rng.uniform(-0.02, 0.02, 3)  # camera mount jitter [m]
            model.light_diffuse[0] = rng.uniform(0.5, 1.0, 3)  # lighting changes
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=cam_id)
            frames[success].append(renderer.render().copy())
    return np.stack(frames[True]), np.stack(frames[False])


@pytest.mark.sim
def test_classifier_learns_success_from_rendered_frames():
    pos, neg = render_dataset(0, 60, 150)  # imbalanced, as operator labels usually are
    assert pos.shape[1:] == (48, 64, 3) and pos.std() > 5  # real rendered content, not blank frames
    clf = SuccessClassifier(ClassifierConfig(image_size=(32, 32), channels=(16, 32), hidden=32, train_steps=150,
                                             batch_size=32, device="cpu"))
    clf.fit(pos, neg)
    test_pos, test_neg = render_dataset(1, 80, 80)  # held out: new poses, camera jitter and lighting
    accuracy = clf.accuracy(test_pos, test_neg)
    assert accuracy >= 0.85, f"held-out balanced accuracy on rendered frames {accuracy:.3f}"
    assert float(np.mean(clf.predict(test_neg) >= clf.cfg.threshold)) < 0.1  # few false successes at 0.85
