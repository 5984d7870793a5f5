"""Action repeat, the one rule: an agent action is applied for up to ``repeat`` steps; the rewards are
summed, success counts when any repeated step succeeded, and the repeat stops early when the episode
ends. The training loop repeats env steps with it; the DMC and Meta-World adapters repeat simulator
steps with it (rendering once, after the last)."""
from __future__ import annotations

from typing import Any, Callable

#: one step: ``() -> (result, reward, terminated, truncated, success)``; ``result`` is the caller's (an obs, a TimeStep)
Step = Callable[[], tuple[Any, float, bool, bool, bool]]


def repeat_action(step: Step, repeat: int) -> tuple[Any, float, bool, bool, bool]:
    """Call ``step`` up to ``repeat`` times; ``(last result, summed reward, terminated, truncated, success)``."""
    if repeat < 1:
        raise ValueError(f"action repeat must be >= 1, got {repeat}")
    result, total, terminated, truncated, success = None, 0.0, False, False, False
    for _ in range(int(repeat)):
        result, reward, terminated, truncated, ok = step()
        total += float(reward)
        success = success or bool(ok)
        if terminated or truncated:
            break
    return result, total, bool(terminated), bool(truncated), success
