"""TickClock on synthetic camera streams: the grid locks to the frames, learns the arrival delay, keeps its period."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mentor.tick_clock import TickClock, TickClockConfig

PERIOD = 0.05  # 20 Hz control


def camera_stream(n: int, interval: float = PERIOD, t0: float = 1000.0, clock_offset: float = 0.0, seed: int = 0):
    """(capture stamps in the camera's clock, arrival times in the local clock) [s]: jittered captures,
    delays of 8 ms + a gamma tail (render + transport)."""
    rng = np.random.default_rng(seed)
    captures = t0 + np.arange(n) * interval + rng.normal(0.0, 0.001, n)
    arrivals = captures + 0.008 + rng.gamma(2.0, 0.003, n)
    return captures + clock_offset, arrivals


def run_clock(clock: TickClock, stamps: np.ndarray, arrivals: np.ndarray, start: float):
    """Drive the clock like the policy's control thread: frames are fed as they arrive, a tick acts on the
    newest arrived frame. Returns (tick times, index of the frame each tick used)."""
    order = np.argsort(arrivals)
    ticks, used = [], []
    fed = 0
    t = clock.next_tick(start)
    while fed < len(order) and t < arrivals.max():
        while fed < len(order) and arrivals[order[fed]] <= t:
            i = order[fed]
            clock.on_frame(float(stamps[i]), float(arrivals[i]))
            fed += 1
        newest = np.searchsorted(np.sort(arrivals), t) - 1
        if newest >= 0:
            ticks.append(t)
            used.append(int(order[newest]))
        t = clock.next_tick(t + 1e-4)
    return np.array(ticks), np.array(used)


def test_locked_ticks_follow_the_frames_by_the_learned_delay():
    stamps, arrivals = camera_stream(2000)
    clock = TickClock(TickClockConfig(PERIOD, lock_to_frames=True), start=stamps[0])
    ticks, used = run_clock(clock, stamps, arrivals, start=stamps[0] + 0.013)
    ticks, used = ticks[300:], used[300:]  # after the delay window filled and the phase settled
    age = ticks - stamps[used]
    delays = arrivals[-200:] - stamps[-200:]
    assert clock.locked and not clock.rate_mismatch
    assert clock.offset() == pytest.approx(np.quantile(delays, 0.99) + 0.001, abs=1e-9)
    # ticks act on the frame of their own slot, captured about `offset` earlier (the offset follows the delay
    # window and the captures jitter, so a few ms either way); ~1% late frames leave the previous one
    assert np.median(np.abs(age - clock.offset())) < 0.002
    assert (age < clock.offset() + 0.01).mean() > 0.98
    periods = np.diff(ticks)
    assert np.percentile(np.abs(periods - PERIOD), 99) < 0.001  # a regular grid, corrected by < 1 ms


def test_a_fixed_offset_is_used_as_given():
    stamps, arrivals = camera_stream(600)
    clock = TickClock(TickClockConfig(PERIOD, lock_to_frames=True, offset_s=0.03), start=stamps[0])
    ticks, used = run_clock(clock, stamps, arrivals, start=stamps[0])
    age = (ticks - stamps[used])[100:]
    assert clock.offset() == 0.03
    assert np.median(age) == pytest.approx(0.03, abs=0.002)


def test_a_camera_clock_offset_cancels_out():
    """Stamps from a camera PC whose clock is 3 s ahead: the ticks still fall just after the arrivals."""
    stamps, arrivals = camera_stream(1000, clock_offset=3.0)
    clock = TickClock(TickClockConfig(PERIOD, lock_to_frames=True), start=arrivals[0])
    ticks, used = run_clock(clock, stamps, arrivals, start=arrivals[0])
    wait = (ticks - arrivals[used])[300:]  # tick time after the used frame arrived (local clock)
    assert np.all(wait >= 0)
    assert np.median(wait) < 0.02  # not a free-running phase: that would average half a period


def test_a_camera_at_twice_the_rate_locks_to_every_other_frame():
    stamps, arrivals = camera_stream(2000, interval=PERIOD / 2)
    clock = TickClock(TickClockConfig(PERIOD, lock_to_frames=True), start=stamps[0])
    ticks, used = run_clock(clock, stamps, arrivals, start=stamps[0])
    ticks, used = ticks[200:], used[200:]
    assert clock.locked and clock.frame_interval() == pytest.approx(PERIOD / 2, rel=0.05)
    assert np.median(np.diff(ticks)) == pytest.approx(PERIOD, abs=1e-4)
    assert np.median(ticks - stamps[used]) == pytest.approx(clock.offset(), abs=0.002)


def test_a_camera_rate_that_does_not_divide_the_period_leaves_the_grid_free_running():
    stamps, arrivals = camera_stream(300, interval=1 / 30)  # 30 fps for a 20 Hz loop
    clock = TickClock(TickClockConfig(PERIOD, lock_to_frames=True), start=1000.0)
    ticks, _used = run_clock(clock, stamps, arrivals, start=1000.0)
    assert clock.rate_mismatch and not clock.locked
    assert np.allclose(np.diff(ticks), PERIOD, atol=1e-9)
    assert clock.frame_stamp_due(ticks[-1]) == -math.inf  # any frame will do


def test_an_unlocked_clock_is_a_plain_timer():
    clock = TickClock(TickClockConfig(PERIOD), start=10.0)
    clock.on_frame(10.02, 10.03)  # ignored: not locked to frames
    ticks = [clock.next_tick(10.0)]
    for _ in range(5):
        ticks.append(clock.next_tick(ticks[-1] + 0.001))
    assert ticks == pytest.approx([10.05 + k * PERIOD for k in range(6)])
    assert not clock.locked and clock.frame_stamp_due(ticks[0]) == -math.inf


def test_a_phase_jump_never_makes_two_ticks_within_half_a_period():
    clock = TickClock(TickClockConfig(PERIOD, lock_to_frames=True, offset_s=0.01), start=0.0)
    first = clock.next_tick(0.001)  # 0.05 on the initial grid
    for k in range(4):  # the rate is known after 3 intervals, then the grid jumps to the phase 0.01 (mod period)
        clock.on_frame(k * PERIOD, k * PERIOD + 0.009)
    assert clock.locked
    # the new grid's next slot, 0.06, is only 10 ms after the last tick: the one after it is taken
    assert clock.next_tick(first) == pytest.approx(0.11)


def test_a_late_tick_skips_to_the_next_slot_instead_of_bursting():
    clock = TickClock(TickClockConfig(PERIOD), start=0.0)
    assert clock.next_tick(0.0) == pytest.approx(0.05)
    assert clock.next_tick(0.23) == pytest.approx(0.25)  # the tick at 0.05 overran to 0.23: no 0.10 ... 0.20


def test_frame_stamp_due_is_half_a_frame_before_the_ticks_slot():
    clock = TickClock(TickClockConfig(PERIOD, lock_to_frames=True, offset_s=0.02), start=0.0)
    assert clock.frame_stamp_due(1.12) == -math.inf  # not locked yet: any frame will do
    for k in range(4):
        clock.on_frame(1.0 + k * PERIOD, 1.012 + k * PERIOD)
    assert clock.frame_stamp_due(1.22) == pytest.approx(1.22 - 0.02 - 0.025)


@pytest.mark.parametrize("kwargs", [dict(period_s=0.0), dict(period_s=0.05, offset_s=0.05),
                                    dict(period_s=0.05, delay_quantile=0.2), dict(period_s=0.05, gain=0.0),
                                    dict(period_s=0.05, window=3)])
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        TickClockConfig(**kwargs)
