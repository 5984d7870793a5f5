"""The toy point-reaching task: spec, rendering, dynamics, reward, seeding, bad input."""
import numpy as np
import pytest

from mentor_policy.toy_env import ToyReachConfig, ToyReachEnv


def test_spec_and_observation_contract():
    env = ToyReachEnv(ToyReachConfig(image_size=24))
    obs = env.reset(seed=3)
    assert env.spec.frame_channels == 3 and env.spec.image_size == (24, 24)
    assert env.spec.proprio_dim == 2 and env.spec.action_dim == 2
    assert obs["image"].shape == (3, 24, 24) and obs["image"].dtype == np.uint8
    assert obs["proprio"].shape == (2,) and obs["proprio"].dtype == np.float32
    np.testing.assert_allclose(obs["proprio"], env.point, rtol=1e-6)
    no_proprio = ToyReachEnv(ToyReachConfig(proprio_position=False))
    assert no_proprio.spec.proprio_dim == 0 and no_proprio.reset()["proprio"].shape == (0,)


def _colour_centroid(image_chw, rgb):
    mask = np.all(image_chw.transpose(1, 2, 0) == np.array(rgb, np.uint8), axis=-1)
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean(), mask.sum()


def test_render_draws_target_and_point_where_they_are():
    env = ToyReachEnv(ToyReachConfig(image_size=32, min_start_distance=0.8))
    obs = env.reset(seed=0)
    s = 32
    for rgb, pos in (((40, 220, 60), env.target), ((230, 50, 40), env.point)):
        r, c, n = _colour_centroid(obs["image"], rgb)
        assert n > 5
        assert c == pytest.approx((pos[0] + 1) / 2 * s - 0.5, abs=1.0)  # x -> column
        assert r == pytest.approx((1 - pos[1]) / 2 * s - 0.5, abs=1.0)  # y -> row from the top


def test_moving_toward_target_increases_reward_and_succeeds():
    cfg = ToyReachConfig(episode_length=40)
    env = ToyReachEnv(cfg)
    env.reset(seed=5)
    rewards, successes = [], []
    for _ in range(cfg.episode_length):
        direction = env.target - env.point
        action = np.clip(direction / cfg.max_step, -1, 1)
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        successes.append(info["success"])
        assert not terminated
    assert truncated and successes[-1] and rewards[-1] > rewards[0]
    assert 0 < min(rewards) and max(rewards) <= 1.0


def test_episode_length_and_step_after_end():
    env = ToyReachEnv(ToyReachConfig(episode_length=3))
    env.reset()
    flags = [env.step(np.zeros(2))[3] for _ in range(3)]
    assert flags == [False, False, True]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2))


def test_seeded_resets_are_reproducible_and_varied():
    a, b = ToyReachEnv(), ToyReachEnv()
    np.testing.assert_array_equal(a.reset(seed=7)["image"], b.reset(seed=7)["image"])
    pairs = set()
    for _ in range(10):
        start = a.reset()["proprio"]
        pairs.add((*np.round(start, 3), *np.round(a.target, 3)))
    assert len(pairs) == 10, "consecutive resets must vary start and target"
    first = ToyReachEnv(ToyReachConfig(seed=11)).reset()
    again = ToyReachEnv(ToyReachConfig(seed=11)).reset()
    np.testing.assert_array_equal(first["image"], again["image"])


def test_actions_are_clipped_and_bad_input_rejected():
    env = ToyReachEnv(ToyReachConfig(max_step=0.1))
    env.reset(seed=1)
    before = env.point
    env.step(np.array([5.0, -5.0]))
    moved = env.point - before
    assert np.all(np.abs(moved) <= 0.1 + 1e-9)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="image_size"):
        ToyReachConfig(image_size=8)
    with pytest.raises(ValueError, match="max_step"):
        ToyReachConfig(max_step=float("nan"))
