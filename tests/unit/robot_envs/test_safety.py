"""SafetyLayer: every clamped target is finite, inside the box, within the step limits."""
import numpy as np
import pytest

from robot_envs import transforms as tf
from robot_envs.safety import NonFiniteActionError, SafetyConfig, SafetyLayer

CFG = SafetyConfig(workspace_min=(0.3, -0.2, 0.1), workspace_max=(0.6, 0.2, 0.5),
                   max_translation_per_step=0.02, max_rotation_per_step=0.1)
DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # TCP pointing down


def _random_quat(rng):
    return tf.quat_normalize(rng.normal(size=4))


def _pose(p, q=DOWN):
    return np.concatenate([np.asarray(p, float), q])


def test_step_is_limited_inside_the_box():
    layer = SafetyLayer(CFG)
    cur = _pose([0.45, 0.0, 0.3])
    out = layer.clamp(cur, _pose([0.55, 0.0, 0.3]))
    np.testing.assert_allclose(out[:3], [0.47, 0.0, 0.3], atol=1e-12)  # 2 cm along the request
    small = layer.clamp(cur, _pose([0.455, 0.0, 0.3]))
    np.testing.assert_allclose(small[:3], [0.455, 0.0, 0.3], atol=1e-12)  # below the limit: untouched


def test_random_and_huge_targets_property():
    layer = SafetyLayer(CFG)
    rng = np.random.default_rng(0)
    lo, hi = np.array(CFG.workspace_min), np.array(CFG.workspace_max)
    for i in range(2000):
        scale = [0.01, 1.0, 1e3, 1e12][i % 4]
        cur_p = rng.uniform(lo, hi)
        cur = _pose(cur_p, _random_quat(rng))
        tgt = _pose(cur_p + rng.normal(size=3) * scale, _random_quat(rng))
        out = layer.clamp(cur, tgt)
        assert np.all(np.isfinite(out))
        assert np.all(out[:3] >= lo - 1e-12) and np.all(out[:3] <= hi + 1e-12)
        assert np.linalg.norm(out[:3] - cur[:3]) <= CFG.max_translation_per_step + 1e-9
        assert abs(np.linalg.norm(out[3:]) - 1) < 1e-9
        assert tf.quat_angle(cur[3:], out[3:]) <= CFG.max_rotation_per_step + 1e-6


def test_current_outside_box_moves_into_the_box():
    layer = SafetyLayer(CFG)
    rng = np.random.default_rng(1)
    lo, hi = np.array(CFG.workspace_min), np.array(CFG.workspace_max)
    for _ in range(500):
        cur = _pose(rng.uniform(lo - 1.0, hi + 1.0))
        tgt = _pose(rng.uniform(lo - 5.0, hi + 5.0))
        out = layer.clamp(cur, tgt)
        assert np.all(out[:3] >= lo - 1e-12) and np.all(out[:3] <= hi + 1e-12)
    # staying put while outside the box is also pulled back in
    cur = _pose([0.9, 0.0, 0.3])
    np.testing.assert_allclose(layer.clamp(cur, cur)[:3], [0.6, 0.0, 0.3])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_target_is_rejected(bad):
    layer = SafetyLayer(CFG)
    cur = _pose([0.45, 0.0, 0.3])
    for idx in range(7):
        tgt = cur.copy()
        tgt[idx] = bad
        with pytest.raises(NonFiniteActionError, match="target_pose contains NaN/inf"):
            layer.clamp(cur, tgt)
    with pytest.raises(NonFiniteActionError, match="current_pose"):
        layer.clamp(np.full(7, bad), cur)


def test_wrong_shapes_and_zero_quaternion_are_rejected():
    layer = SafetyLayer(CFG)
    cur = _pose([0.45, 0.0, 0.3])
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        layer.clamp(cur, cur[:6])
    with pytest.raises(ValueError, match="normalised"):
        layer.clamp(cur, np.array([0.45, 0, 0.3, 0, 0, 0, 0]))


def test_orientation_cone():
    nominal = DOWN
    cfg = SafetyConfig(workspace_min=CFG.workspace_min, workspace_max=CFG.workspace_max,
                       max_rotation_per_step=np.pi, nominal_quat=tuple(nominal), orientation_cone_rad=0.3)
    layer = SafetyLayer(cfg)
    rng = np.random.default_rng(2)
    for _ in range(500):
        cur = _pose([0.45, 0, 0.3], tf.quat_slerp(nominal, _random_quat(rng), 0.05))
        out = layer.clamp(cur, _pose([0.45, 0, 0.3], _random_quat(rng)))
        assert tf.quat_angle(nominal, out[3:]) <= 0.3 + 1e-6


def test_gripper_clamp():
    layer = SafetyLayer(CFG)
    assert layer.clamp_gripper(None) is None
    assert layer.clamp_gripper(1.0) == CFG.gripper_max_width
    assert layer.clamp_gripper(-1.0) == CFG.gripper_min_width
    assert layer.clamp_gripper(0.03) == pytest.approx(0.03)
    with pytest.raises(NonFiniteActionError):
        layer.clamp_gripper(float("nan"))


def test_config_validation():
    with pytest.raises(ValueError, match="workspace_min"):
        SafetyConfig(workspace_min=(0.6, 0, 0), workspace_max=(0.3, 1, 1))
    with pytest.raises(ValueError, match="max_translation_per_step"):
        SafetyConfig(max_translation_per_step=0.0)
    with pytest.raises(ValueError, match="workspace_max"):
        SafetyConfig(workspace_max=(1.0, float("nan"), 1.0))
    with pytest.raises(ValueError, match="orientation_cone_rad"):
        SafetyConfig(orientation_cone_rad=4.0)


def test_transform_helpers_round_trip():
    rng = np.random.default_rng(3)
    for _ in range(200):
        q = _random_quat(rng)
        q = q if q[3] >= 0 else -q
        np.testing.assert_allclose(tf.matrix_to_quat(tf.quat_to_matrix(q)), q, atol=1e-9)
        rv = tf.quat_to_rotvec(q)
        assert tf.quat_angle(tf.rotvec_to_quat(rv), q) < 1e-6
        m = tf.quat_to_matrix(q)
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-9)
    # a base-frame rotation about z applied to "pointing down" keeps the tool pointing down
    p = tf.compose_delta(_pose([0.4, 0, 0.3]), [0.01, 0, 0], [0, 0, 0.2])
    np.testing.assert_allclose(p[:3], [0.41, 0, 0.3])
    np.testing.assert_allclose(tf.quat_to_matrix(p[3:])[:, 2], [0, 0, -1], atol=1e-12)


def test_safe_command_is_the_one_action_to_command_path():
    from robot_envs.actions import ActionSpaceConfig
    from robot_envs.command import safe_command
    layer = SafetyLayer(CFG)
    at_corner = _pose([0.6, 0.2, 0.5])  # on the box corner; the action pushes further out
    cmd = safe_command(at_corner, np.ones(3), ActionSpaceConfig(translation_scale=0.05), layer, 0.08)
    np.testing.assert_allclose(cmd.target[:3], [0.6, 0.2, 0.5], atol=1e-12)
    assert cmd.clamped and cmd.clamp_distance == pytest.approx(np.sqrt(3) * 0.05)
    assert cmd.gripper == pytest.approx(layer.clamp_gripper(0.08))  # no gripper dim: the task's width
    inside = safe_command(_pose([0.45, 0.0, 0.3]), np.zeros(3), ActionSpaceConfig(), layer, None)
    assert not inside.clamped and inside.gripper is None
    with pytest.raises(NonFiniteActionError):
        safe_command(at_corner, np.array([np.nan, 0, 0]), ActionSpaceConfig(), layer)
    with pytest.raises(ValueError):
        safe_command(at_corner, np.zeros(2), ActionSpaceConfig(), layer)
