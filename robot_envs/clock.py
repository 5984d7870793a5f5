"""Clocks: wall time for the real robot, simulation time for franky-sim.

A control loop written against ``Clock`` (``now()``, ``sleep_until(t)``) runs at real time on the
robot and at the simulator's pace in simulation (faster than real time when the sim world runs
with ``realtime_factor=0``).
"""
from __future__ import annotations

import abc
import time
from typing import Callable


class ClockStalledError(RuntimeError):
    """The clock did not advance for too long (e.g. the simulator stopped)."""


class Clock(abc.ABC):
    """A monotonic time source in seconds."""

    @abc.abstractmethod
    def now(self) -> float:
        """Current time [s]."""

    @abc.abstractmethod
    def sleep_until(self, t: float) -> None:
        """Block until ``now() >= t`` (returns at once when t is in the past)."""

    def sleep(self, dt: float) -> None:
        """Block for ``dt`` seconds of this clock's time."""
        self.sleep_until(self.now() + float(dt))


class WallClock(Clock):
    """``time.monotonic()`` seconds."""

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        remaining = float(t) - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)


class SimClock(Clock):
    """Simulation time read from ``time_fn`` (e.g. ``SimWorld.sim_time``).

    Args:
        time_fn: returns the simulation time [s].
        poll_s: wall-clock polling period [s] while waiting.
        stall_timeout_s: raise ClockStalledError when sim time does not advance for this many
            wall-clock seconds while someone waits on it.
    """

    def __init__(self, time_fn: Callable[[], float], poll_s: float = 0.0005,
                 stall_timeout_s: float = 5.0) -> None:
        if poll_s <= 0 or stall_timeout_s <= 0:
            raise ValueError(f"poll_s and stall_timeout_s must be > 0, got {poll_s}, {stall_timeout_s}")
        self._time_fn = time_fn
        self._poll_s = float(poll_s)
        self._stall_timeout_s = float(stall_timeout_s)

    def now(self) -> float:
        return float(self._time_fn())

    def sleep_until(self, t: float) -> None:
        last = self.now()
        last_change = time.monotonic()
        while last < t:
            time.sleep(self._poll_s)
            cur = self.now()
            if cur != last:
                last, last_change = cur, time.monotonic()
            elif time.monotonic() - last_change > self._stall_timeout_s:
                raise ClockStalledError(
                    f"simulation time stuck at {cur:.3f} s for {self._stall_timeout_s} s "
                    f"while waiting for {t:.3f} s (is the sim world running?)")
