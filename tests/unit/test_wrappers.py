"""ActionRepeat and FrameStack over a tiny deterministic env that follows the RobotEnv interface."""
import numpy as np
import pytest

from robot_envs.wrappers import ActionRepeat, FrameStack


class CountingEnv:
    """Image channel value = step index; reward = action[0]; success at step ``succeed_at``."""

    def __init__(self, length=10, succeed_at=None, channels=3):
        self.length, self.succeed_at, self.channels = length, succeed_at, channels
        self.t = 0
        self.closed = False
        self.spec = "per-step spec"

    def _obs(self):
        return {"image": np.full((self.channels, 8, 8), self.t, np.uint8), "proprio": np.array([self.t], np.float32)}

    def reset(self):
        self.t = 0
        return self._obs()

    def step(self, action):
        self.t += 1
        success = self.t == self.succeed_at
        return self._obs(), float(action[0]), success, self.t >= self.length, {"success": success, "t": self.t}

    def close(self):
        self.closed = True


def test_action_repeat_sums_rewards_and_forwards_attributes():
    env = ActionRepeat(CountingEnv(), 3)
    env.reset()
    obs, r, term, trunc, info = env.step(np.array([0.5]))
    assert r == pytest.approx(1.5) and info["action_repeats"] == 3 and obs["proprio"][0] == 3
    assert env.spec == "per-step spec"
    env.close()
    assert env.env.closed


def test_action_repeat_stops_at_success_and_at_truncation():
    env = ActionRepeat(CountingEnv(length=10, succeed_at=2), 4)
    env.reset()
    _, r, term, _, info = env.step(np.array([1.0]))
    assert term and info["success"] and info["action_repeats"] == 2 and r == 2.0
    env = ActionRepeat(CountingEnv(length=5), 4)
    env.reset()
    env.step(np.array([1.0]))
    _, r, _, trunc, info = env.step(np.array([1.0]))
    assert trunc and info["action_repeats"] == 1 and r == 1.0
    with pytest.raises(ValueError, match="positive integer"):
        ActionRepeat(CountingEnv(), 0)


def test_frame_stack_oldest_first_and_reset_fill():
    env = FrameStack(CountingEnv(channels=6), 3)
    obs = env.reset()
    assert obs["image"].shape == (18, 8, 8) and obs["image"].dtype == np.uint8
    assert np.all(obs["image"] == 0)
    for _ in range(4):
        obs, *_ = env.step(np.array([0.0]))
    steps = obs["image"].reshape(3, 6, 8, 8)[:, 0, 0, 0]
    assert steps.tolist() == [2, 3, 4]  # oldest first
    assert obs["proprio"][0] == 4  # proprio is not stacked


def test_frame_stack_over_action_repeat_and_errors():
    env = FrameStack(ActionRepeat(CountingEnv(length=100), 2), 2)
    env.reset()
    obs, *_ = env.step(np.array([0.0]))
    assert obs["image"].reshape(2, 3, 8, 8)[:, 0, 0, 0].tolist() == [0, 2]
    with pytest.raises(RuntimeError, match="before reset"):
        FrameStack(CountingEnv(), 2).step(np.array([0.0]))

    class BadEnv(CountingEnv):
        def _obs(self):
            return {"image": np.zeros((3, 8, 8), np.float32), "proprio": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match="uint8"):
        FrameStack(BadEnv(), 2).reset()
