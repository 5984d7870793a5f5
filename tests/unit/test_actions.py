"""actions.py: normalised actions -> base-frame targets and gripper widths."""
import numpy as np
import pytest

from robot_envs import transforms as tf
from robot_envs.actions import ActionSpace, ActionSpaceConfig, action_to_target
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
    _, width = ActionSpace(cfg).action_to_target(POSE, [0, 0, 0, 0, 0, 0, 1.0])
    assert width == pytest.approx(0.08)
    _, width = ActionSpace(cfg).action_to_target(POSE, [0, 0, 0, 0, 0, 0, 0.0])
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
