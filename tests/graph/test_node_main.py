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
