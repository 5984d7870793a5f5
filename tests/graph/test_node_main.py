"""The node main loop (``mentor.common.run_node``): how an executor error is classified."""
from __future__ import annotations

import pytest
import rclpy
from rclpy.executors import ExternalShutdownException

from mentor.common import _spin_once


class _ExecutorThatFailsToTake:
    """Raises what rclpy raised in ``take_message`` when SIGINT invalidated the context mid-take."""

    def spin_once(self, timeout_sec: float) -> None:
        raise RuntimeError("Unable to convert call argument '0' to Python object")


def test_an_executor_error_after_the_context_shut_down_is_a_stop():
    rclpy.init()
    rclpy.shutdown()  # what rclpy's SIGINT/SIGTERM handler does
    assert not rclpy.ok()
    with pytest.raises(ExternalShutdownException):
        _spin_once(_ExecutorThatFailsToTake())


def test_an_executor_error_with_a_live_context_propagates():
    rclpy.init()
    try:
        with pytest.raises(RuntimeError, match="Unable to convert"):
            _spin_once(_ExecutorThatFailsToTake())
    finally:
        rclpy.shutdown()


def test_repeat_throttle_logs_each_kind_once_per_period_with_the_held_back_count():
    from mentor.common import RepeatThrottle
    lines, now = [], [0.0]
    throttle = RepeatThrottle(lines.append, period_s=2.0, clock=lambda: now[0])
    storm = [f"rejected policy action: NaN/inf: [{v}, 0.0, 0.0]; holding position ({i + 1} rejected so far)"
             for i, v in enumerate(["nan", "inf", "-inf"] * 300)]
    for i, text in enumerate(storm):  # 900 rejections in 4.5 s
        now[0] = i * 0.005
        throttle.log(text)
    assert len(lines) == 3  # t = 0, 2, 4 s
    assert lines[0] == storm[0] and "(399 more like it in the 2.0 s before)" in lines[1]
    assert throttle.log("rejected policy action: 2 values, expected 3; holding position (901 rejected so far)")
    assert len(lines) == 4 and "2 values" in lines[-1]  # another kind is not held back by the first
    now[0] = 10.0
    assert throttle.log(storm[5]) and lines[-1].endswith("(99 more like it in the 6.0 s before)")
    with pytest.raises(ValueError):
        RepeatThrottle(lines.append, period_s=0)


def test_throttles_of_two_severities_on_one_rclpy_logger_both_log():
    """The robot node once died on its first watchdog warning: rclpy refuses a second severity at one call site,
    and the warning and error RepeatThrottles shared the call inside RepeatThrottle.log."""
    from mentor.common import RepeatThrottle, log_function
    logger = rclpy.logging.get_logger("throttle_severity_test")
    with pytest.raises(ValueError, match="severity cannot be changed"):
        for throttle in (RepeatThrottle(logger.warning), RepeatThrottle(logger.error)):  # the old way: bound methods
            throttle.log("text")
    logger = rclpy.logging.get_logger("throttle_severity_test_2")
    own = [RepeatThrottle(log_function(logger, level)) for level in ("info", "warning", "error")]
    assert all(throttle.log(f"{i}: text") for i, throttle in enumerate(own))
    with pytest.raises(ValueError, match="severity"):
        log_function(logger, "fatal")
