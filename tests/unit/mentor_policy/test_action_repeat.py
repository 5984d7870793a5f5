"""mentor_policy.action_repeat: the one action-repeat rule (sum rewards, success at any step, stop at the end)."""
import pytest

from mentor_policy.action_repeat import repeat_action


def _steps(results):
    it = iter(results)
    calls = []

    def step():
        calls.append(1)
        return next(it)
    return step, calls


def test_rewards_sum_success_is_any_and_the_repeat_stops_at_an_episode_end():
    step, calls = _steps([("o1", 1.0, False, False, True), ("o2", 2.0, False, False, False),
                          ("o3", 4.0, False, False, False)])
    assert repeat_action(step, 3) == ("o3", 7.0, False, False, True) and len(calls) == 3
    step, calls = _steps([("o1", 1.0, False, True, False), ("o2", 2.0, False, False, False)])
    assert repeat_action(step, 2) == ("o1", 1.0, False, True, False) and len(calls) == 1  # truncated: no more steps
    step, calls = _steps([("o1", 0.5, True, False, True)])
    assert repeat_action(step, 4) == ("o1", 0.5, True, False, True) and len(calls) == 1
    with pytest.raises(ValueError, match="action repeat"):
        repeat_action(step, 0)
