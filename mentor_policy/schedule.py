"""Exploration-noise schedules parsed from config strings (no torch: the ONNX-only path loads configs)."""
from __future__ import annotations

import math
import re
from typing import Callable

_NUM = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_LINEAR = re.compile(rf"^linear\({_NUM},{_NUM},{_NUM}\)$")
_STEP_LINEAR = re.compile(rf"^step_linear\({_NUM},{_NUM},{_NUM},{_NUM},{_NUM}\)$")


def parse_schedule(text: str | float) -> Callable[[int], float]:
    """Parse a DrQ-v2 schedule string without ``eval``.

    Accepted: a constant (``"0.2"``), ``"linear(init, final, duration)"`` and
    ``"step_linear(init, final1, duration1, final2, duration2)"``; ``step`` is the agent step.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
        return lambda step: value
    s = str(text).strip()
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"schedule constant must be finite, got {text!r}")
        return lambda step: value
    m = _LINEAR.match(s)
    if m:
        init, final, duration = (float(g) for g in m.groups())
        if duration <= 0:
            raise ValueError(f"schedule duration must be > 0 in {text!r}")
        return lambda step: init + (final - init) * min(max(step / duration, 0.0), 1.0)
    m = _STEP_LINEAR.match(s)
    if m:
        init, final1, dur1, final2, dur2 = (float(g) for g in m.groups())
        if dur1 <= 0 or dur2 <= 0:
            raise ValueError(f"schedule durations must be > 0 in {text!r}")

        def step_linear(step: int) -> float:
            if step <= dur1:
                return init + (final1 - init) * max(step / dur1, 0.0)
            return final1 + (final2 - final1) * min((step - dur1) / dur2, 1.0)
        return step_linear
    raise ValueError(f"cannot parse schedule {text!r}: expected a number, 'linear(a,b,n)' or 'step_linear(a,b,n,c,m)'")
