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
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

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


TICK_SOURCES = ("frame", "camera", "timer")


class TickScheduler:
    """When the policy ticks, for all three tick sources (see :mod:`mentor.policy_node`).

    - ``frame``: :meth:`on_frame` returns True when every camera has a frame newer than the last tick's
      and a control period has passed on the camera clock (frame stamps; with a camera at k x the
      control rate every k-th frame set ticks; half a frame interval of slack absorbs stamp jitter).
      :meth:`fallback_due` covers for stopped cameras (a timer tick after two periods without one).
    - ``camera`` / ``timer``: :meth:`run` is the control thread: it ticks at :class:`TickClock` times
      (phase-locked to the first camera, or free-running); in camera mode a tick whose frame is late
      waits for it up to a quarter period.
    Thread-safe: frames arrive on the executor thread, ticks run on it (frame) or on the control thread.
    """

    def __init__(self, source: str, period_s: float, cameras: list[str] | tuple[str, ...],
                 offset_s: float = -1.0, start: float | None = None) -> None:
        if source not in TICK_SOURCES:
            raise ValueError(f"tick_source must be one of {TICK_SOURCES}, got {source!r}")
        if not cameras:
            raise ValueError("the tick scheduler needs at least one camera")
        self.source, self.period, self.cameras = source, float(period_s), tuple(cameras)
        self.clock = TickClock(TickClockConfig(self.period, lock_to_frames=source == "camera", offset_s=offset_s),
                               start=time.time() if start is None else start)
        self.frame_interval = self.period  # frame mode: running estimate of the first camera's frame interval [s]
        self.frame_arrived = threading.Event()  # camera mode: wakes a tick that waits for its late frame
        self._lock = threading.Lock()
        self._stamps: dict[str, float] = {}  # camera -> capture stamp of its newest frame [wall s]
        self._ticked: dict[str, float] = {}  # camera -> stamp of the frame the last tick could use
        self._last_tick = -math.inf  # time.monotonic() of the last tick

    @property
    def threaded(self) -> bool:
        """True when ticks come from :meth:`run` on a thread of their own (camera and timer sources)."""
        return self.source != "frame"

    def on_frame(self, camera: str, stamp: float, arrival: float) -> bool:
        """A frame of ``camera`` captured at ``stamp`` arrived at ``arrival`` (wall s). Frame source: True
        when a tick is due now (the caller runs it)."""
        with self._lock:
            previous = self._stamps.get(camera)
            self._stamps[camera] = stamp
            first = camera == self.cameras[0]
            if self.source == "camera":
                if first:
                    self.clock.on_frame(stamp, arrival)
                self.frame_arrived.set()
                return False
            if self.source != "frame":
                return False
            if first and previous is not None and 0.0 < stamp - previous < 1.0:
                self.frame_interval += 0.2 * (min(stamp - previous, self.period) - self.frame_interval)
            return self._frame_set_due()

    def _frame_set_due(self) -> bool:
        if len(self._stamps) < len(self.cameras):
            return False
        if any(self._stamps[c] <= self._ticked.get(c, -math.inf) for c in self.cameras):
            return False
        last = max(self._ticked.values(), default=-math.inf)
        return min(self._stamps[c] for c in self.cameras) - last >= self.period - 0.5 * self.frame_interval

    def mark_ticked(self) -> None:
        """A tick starts: the frames that arrived so far are its frames."""
        with self._lock:
            self._last_tick = time.monotonic()
            self._ticked = dict(self._stamps)

    def fallback_due(self) -> bool:
        """Frame source: no tick for two control periods (the cameras stopped)."""
        with self._lock:
            return time.monotonic() - self._last_tick > 2.0 * self.period

    def run(self, tick: Callable[[], None], stop: threading.Event, log: Callable[[str], None]) -> None:
        """Camera and timer sources: call ``tick`` at the clock's times until ``stop`` is set (``tick`` starts
        with :meth:`mark_ticked`, as a frame-source tick does)."""
        warned = locked_logged = False
        while not stop.is_set():
            with self._lock:
                t = self.clock.next_tick(time.time())
                mismatch, locked = self.clock.rate_mismatch, self.clock.locked
                interval, offset = self.clock.frame_interval(), self.clock.offset()
            if mismatch and not warned:
                warned = True
                log(f"camera frame interval {interval * 1e3:.1f} ms is no integer fraction of the control "
                    "period: ticks are not phase-locked")
            if locked and not locked_logged:
                locked_logged = True
                log(f"ticks locked to the camera, {offset * 1e3:.1f} ms after capture")
            if stop.wait(max(0.0, t - time.time())):
                break
            self._await_late_frame(t, stop)
            tick()  # it calls mark_ticked()

    def _await_late_frame(self, tick: float, stop: threading.Event) -> None:
        """Camera source: when this tick's frame is late, wait for it up to a quarter period, then act on
        what there is (a rare late frame costs that tick some jitter instead of a period of latency)."""
        if self.source != "camera":
            return
        deadline = tick + 0.25 * self.period
        while not stop.is_set():
            with self._lock:
                due = self.clock.frame_stamp_due(tick)
                newest = self._stamps.get(self.cameras[0])
                if newest is not None and newest > due:
                    return
                self.frame_arrived.clear()
            remaining = deadline - time.time()
            if remaining <= 0:
                return
            self.frame_arrived.wait(remaining)
