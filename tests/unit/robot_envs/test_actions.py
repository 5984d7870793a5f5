"""actions.py: normalised actions -> base-frame targets and gripper widths."""
import numpy as np
import pytest

from robot_envs import transforms as tf
from robot_envs.actions import ActionSpaceConfig, action_to_target, with_gripper_command
from robot_envs.safety import NonFiniteActionError

POSE = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


def test_translation_only():
    cfg = ActionSpaceConfig(translation_scale=0.02)
    assert cfg.action_dim == 3
    target, width = action_to_target(POSE, [1.0, -0.5, 0.0], cfg)
    np.testing.assert_allclose(target[:3], [0.52, -0.01, 0.3])
    np.testing.assert_allclose(target[3:], POSE[3:])
    assert width is None


def test_out_of_range_actions_are_clipped():
    cfg = ActionSpaceConfig(translation_scale=0.02)
    target, _ = action_to_target(POSE, [50.0, -1e9, 0.0], cfg)
    np.testing.assert_allclose(target[:3], [0.52, -0.02, 0.3])


def test_rotation_and_gripper_layout():
    cfg = ActionSpaceConfig(rotation=True, rotation_scale=0.1, gripper=True, gripper_mode="continuous",
                            gripper_open_width=0.08, gripper_closed_width=0.0)
    assert cfg.action_dim == 7
    target, width = action_to_target(POSE, [0, 0, 0, 0, 0, 1.0, -1.0], cfg)
    np.testing.assert_allclose(target[:3], POSE[:3])
    assert tf.quat_angle(POSE[3:], target[3:]) == pytest.approx(0.1, abs=1e-9)
    assert width == pytest.approx(0.0)
    _, width = action_to_target(POSE, [0, 0, 0, 0, 0, 0, 1.0], cfg)
    assert width == pytest.approx(0.08)
    _, width = action_to_target(POSE, [0, 0, 0, 0, 0, 0, 0.0], cfg)
    assert width == pytest.approx(0.04)


def test_binary_gripper():
    cfg = ActionSpaceConfig(gripper=True, gripper_mode="binary", gripper_open_width=0.08, gripper_closed_width=0.01)
    assert action_to_target(POSE, [0, 0, 0, 0.3], cfg)[1] == pytest.approx(0.01)
    assert action_to_target(POSE, [0, 0, 0, -0.3], cfg)[1] == pytest.approx(0.08)


def test_bad_actions_are_rejected_with_clear_errors():
    cfg = ActionSpaceConfig(gripper=True)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        action_to_target(POSE, [0.0, 0.0, 0.0], cfg)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        action_to_target(POSE, np.zeros((1, 4)), cfg)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.uniform(-1, 1, size=4)
        a[rng.integers(4)] = rng.choice([np.nan, np.inf, -np.inf])
        with pytest.raises(NonFiniteActionError, match="NaN/inf"):
            action_to_target(POSE, a, cfg)


def test_random_actions_stay_within_scales():
    cfg = ActionSpaceConfig(rotation=True, translation_scale=0.03, rotation_scale=0.2)
    rng = np.random.default_rng(1)
    for _ in range(500):
        a = rng.normal(size=6) * 10
        target, _ = action_to_target(POSE, a, cfg)
        assert np.all(np.abs(target[:3] - POSE[:3]) <= 0.03 + 1e-12)
        assert tf.quat_angle(POSE[3:], target[3:]) <= 0.2 * np.sqrt(3) + 1e-9


def test_config_validation():
    with pytest.raises(ValueError, match="translation_scale"):
        ActionSpaceConfig(translation_scale=-1.0)
    with pytest.raises(ValueError, match="gripper_mode"):
        ActionSpaceConfig(gripper_mode="toggle")
    with pytest.raises(ValueError, match="gripper_closed_width"):
        ActionSpaceConfig(gripper_open_width=0.01, gripper_closed_width=0.05)


def test_teleop_gripper_command_only_writes_the_gripper_slot():
    """The teleop node's gripper command (with_gripper_command) never lands in a translation/rotation dim."""
    for rotation in (False, True):  # no gripper dim: nothing is written, the last dim may be a rotation (drz)
        cfg = ActionSpaceConfig(rotation=rotation)
        cmd = np.linspace(-0.5, 0.5, cfg.action_dim).astype(np.float32)
        for closed in (False, True):
            out = with_gripper_command(cmd, closed, cfg)
            np.testing.assert_array_equal(out, cmd)
            assert out.dtype == np.float32
    for rotation in (False, True):  # gripper dim: only index 3 (xyz + g) or 6 (xyz + rotation + g) changes
        for mode in ("binary", "continuous"):
            cfg = ActionSpaceConfig(rotation=rotation, gripper=True, gripper_mode=mode,
                                    gripper_open_width=0.08, gripper_closed_width=0.01)
            g = 6 if rotation else 3
            assert cfg.gripper_index == g
            cmd = np.linspace(-0.5, 0.5, cfg.action_dim).astype(np.float32)
            for closed, width in ((True, 0.01), (False, 0.08)):
                out = with_gripper_command(cmd, closed, cfg)
                np.testing.assert_array_equal(np.delete(out, g), np.delete(cmd, g))
                assert action_to_target(POSE, out, cfg)[1] == pytest.approx(width)
            np.testing.assert_array_equal(cmd, np.linspace(-0.5, 0.5, cfg.action_dim).astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        with_gripper_command(np.zeros(3), True, ActionSpaceConfig(gripper=True))
