"""Tick times of the policy's control thread: a fixed-period grid, optionally locked to the camera.

A control loop that waits for frames inherits the camera's jitter (frame mode); a free-running
timer is regular but acts on a frame up to one period old. ``TickClock`` keeps the regular grid
and, when locked to the camera, slides its phase so that each tick falls just after the frame it
should use has arrived: the tick runs ``offset`` after the frame's capture stamp, where the offset
is either fixed or learned as a high quantile of the observed capture-to-arrival delay. Then the
period is as regular as the timer and the frame-to-command latency is about ``offset`` + one
inference, the same on every tick.

All times are wall-clock seconds (``time.time()``, the clock of ROS header stamps). Capture
stamps may come from another machine's clock: only ``arrival - stamp`` is used, so a constant
clock offset cancels out. Pure Python (no rclpy), unit tested on synthetic frame streams.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class TickClockConfig:
    period_s: float  # control period [s] (1 / control_hz)
    lock_to_frames: bool = False  # slide the grid's phase to the camera's frame clock
    offset_s: float = -1.0  # tick this long after a frame's capture stamp [s]; < 0 = learn it (delay_quantile)
    delay_quantile: float = 0.99  # learned offset: this quantile of the capture -> arrival delay ...
    margin_s: float = 0.001  # ... plus this margin [s]
    window: int = 200  # capture -> arrival delays kept for the quantile (10 s at 20 Hz)
    gain: float = 0.1  # fraction of the phase error corrected per frame (small: stamp jitter is averaged out)

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError(f"period_s must be > 0, got {self.period_s}")
        if self.offset_s >= self.period_s:
            raise ValueError(f"offset_s must be < the control period {self.period_s} s, got {self.offset_s}")
        if not 0.5 <= self.delay_quantile <= 1.0 or self.margin_s < 0 or self.window < 10:
            raise ValueError("need 0.5 <= delay_quantile <= 1, margin_s >= 0 and window >= 10")
        if not 0.0 < self.gain <= 1.0:
            raise ValueError(f"gain must be in (0, 1], got {self.gain}")


class TickClock:
    """Next tick times on a grid of period ``period_s``; see the module docstring.

    Not thread-safe: the caller serialises ``on_frame`` and ``next_tick`` (the policy node holds its lock).
    """

    def __init__(self, cfg: TickClockConfig, start: float) -> None:
        self.cfg = cfg
        self.grid = start  # a tick time of the grid [wall s]; ticks at grid + k * period
        self.last_tick = -math.inf
        self.locked = False  # the grid follows the camera (a frame has been seen and the rates fit)
        self.rate_mismatch = False  # the camera interval is no integer fraction of the period: not locked
        self._delays: deque[float] = deque(maxlen=cfg.window)
        self._intervals: deque[float] = deque(maxlen=50)  # recent capture-stamp differences [s]
        self._last_stamp: float | None = None
        # derived from the deques once per frame (the control loop reads them every tick)
        self._offset = cfg.offset_s if cfg.offset_s >= 0 else 0.5 * cfg.period_s
        self._interval = cfg.period_s  # camera frame interval [s]
        self._slot = cfg.period_s  # interval between valid tick phases: period / k for a camera at k x the rate

    def offset(self) -> float:
        """Capture stamp -> tick [s]: the configured offset, or the learned delay quantile + margin
        (half a period before any frame)."""
        return self._offset

    def frame_interval(self) -> float:
        """The camera's frame interval [s]: median of recent stamp differences (the period before any)."""
        return self._interval

    def on_frame(self, stamp: float, arrival: float) -> None:
        """A frame captured at ``stamp`` arrived at ``arrival`` (wall s; frames of one camera, in order).

        With a camera at k x the control rate any of its frame times is a valid phase, so the phase error
        is taken modulo the frame interval. Other rates cannot be locked: the grid stays free-running.
        """
        if not self.cfg.lock_to_frames:
            return
        if self._last_stamp is not None and 0.0 < stamp - self._last_stamp < 1.0:
            self._intervals.append(stamp - self._last_stamp)
            self._interval = float(np.median(np.fromiter(self._intervals, float)))
        self._last_stamp = stamp
        self._delays.append(arrival - stamp)
        if self.cfg.offset_s < 0:  # no clamping: a camera on another machine adds its clock offset (any sign)
            self._offset = float(np.quantile(np.fromiter(self._delays, float), self.cfg.delay_quantile)) \
                + self.cfg.margin_s
        if len(self._intervals) < 3:  # the camera rate is not known yet
            return
        ratio = self.cfg.period_s / self._interval
        self.rate_mismatch = ratio < 0.85 or abs(ratio - round(ratio)) > 0.15
        if self.rate_mismatch:
            self.locked = False  # the grid runs on freely from its current phase
            return
        self._slot = self.cfg.period_s / round(ratio)
        target = stamp + self._offset  # where a tick of the grid should be
        # any frame of a camera at k x the control rate will do: the error to the nearest valid phase
        error = _wrap(target - self.grid, self._slot)
        self.grid += error if not self.locked else self.cfg.gain * error
        self.locked = True

    def frame_stamp_due(self, tick: float) -> float:
        """Locked: the tick at ``tick`` should act on a frame captured after the returned stamp [wall s]
        (half a frame interval before its slot); -inf when not locked (any frame will do)."""
        if not self.locked:  # also after a rate mismatch, which unlocks
            return -math.inf
        return tick - self._offset - 0.5 * self._slot

    def next_tick(self, now: float) -> float:
        """The first grid time after ``now`` that is at least half a period after the previous tick."""
        period = self.cfg.period_s
        k = math.floor((now - self.grid) / period) + 1
        t = self.grid + k * period
        if t - self.last_tick < 0.5 * period:  # the phase moved back: never two ticks within half a period
            t += period
        self.last_tick = t
        return t


def _wrap(x: float, interval: float) -> float:
    """``x`` modulo ``interval``, in [-interval / 2, interval / 2)."""
    return (x + 0.5 * interval) % interval - 0.5 * interval
