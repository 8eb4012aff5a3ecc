"""Input stamps that jump: detection relative to the frame period, resync, lost frames.

Pure Python (:class:`vis_node.ros.stamps.StampClock` and
:meth:`StampMatcher.discard_outside`); the node-level behaviour (a +1 h frame, then
normal frames, gives output again) is in ``tests/test_ros_crash_inputs.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.ros.stamps import StampClock, StampMatcher, StampVerdict

PERIOD = 33_333_333
"""30 fps in nanoseconds."""
HOUR = 3_600_000_000_000


def _stream(clock: StampClock, stamps: list[int]) -> list[str]:
    return [clock.check(s).verdict.value for s in stamps]


def _normal(count: int, start: int = 0) -> list[int]:
    return [start + k * PERIOD for k in range(count)]


def test_in_order_stream_learns_its_period():
    clock = StampClock()
    assert _stream(clock, _normal(10)) == ["next"] * 10
    assert clock.period_ns == PERIOD
    assert clock.jump_ns == 30 * PERIOD


def test_repeated_and_slightly_late_stamps_are_skipped():
    clock = StampClock()
    _stream(clock, _normal(5))
    last = 4 * PERIOD
    assert clock.check(last).verdict is StampVerdict.REPEATED
    assert clock.check(last - PERIOD).verdict is StampVerdict.LATE
    assert clock.last_ns == last
    assert clock.check(last + PERIOD).verdict is StampVerdict.NEXT


def test_a_stamp_far_ahead_then_normal_frames_resynchronises():
    # The +1 h camera-clock glitch: one frame far ahead, then the normal time line.
    clock = StampClock()
    _stream(clock, _normal(10))
    glitch = clock.check(10 * PERIOD + HOUR)
    assert glitch.verdict is StampVerdict.JUMP_AHEAD and glitch.jumped and glitch.missing == 0
    back = clock.check(10 * PERIOD)
    assert back.verdict is StampVerdict.JUMP_BACK and back.accepted
    assert _stream(clock, _normal(5, 11 * PERIOD)) == ["next"] * 5


def test_sim_time_reset_to_zero_is_a_jump_back():
    clock = StampClock()
    _stream(clock, _normal(20, start=500 * 10**9))
    assert _stream(clock, _normal(3)) == ["clock_jump_back", "next", "next"]


def test_looping_bag_restarts_are_followed_however_short_the_loop():
    # A 100-frame loop jumps back by more than 30 periods: followed at once. An 8-frame
    # loop goes back by only 7 periods: its first stamps are late, and the clock follows
    # after resync_after late stamps in a row (two frames lost per restart, not all).
    long = StampClock()
    assert _stream(long, _normal(100)) == ["next"] * 100
    assert _stream(long, _normal(3)) == ["clock_jump_back", "next", "next"]
    short = StampClock(resync_after=3)
    assert _stream(short, _normal(8)) == ["next"] * 8
    assert _stream(short, _normal(8)) == ["stamp_out_of_order"] * 2 + ["clock_jump_back"] + [
        "next"
    ] * 5
    assert short.check(8 * PERIOD).verdict is StampVerdict.NEXT


def test_frames_that_never_arrived_are_counted_from_the_gaps():
    clock = StampClock()
    _stream(clock, _normal(5))
    gaps = [clock.check(s).missing for s in (7 * PERIOD, 8 * PERIOD, 12 * PERIOD)]
    assert gaps == [2, 0, 3]
    assert clock.check(12 * PERIOD + 40 * PERIOD).verdict is StampVerdict.JUMP_AHEAD


def test_heavy_loss_is_counted_from_the_shortest_gap():
    # 70 % of a 200-frame stream lost (as best-effort 1280x720 frames on localhost):
    # most gaps span several frames, yet every loss between the first and the last
    # arrival is counted once two consecutive frames have shown the period.
    rng = np.random.default_rng(3)
    arrived = [k for k in range(200) if k < 3 or rng.random() < 0.3]
    clock = StampClock()
    counted = sum(clock.check(k * PERIOD).missing for k in arrived)
    assert len(arrived) == 58
    assert counted == arrived[-1] + 1 - len(arrived) == 132
    assert clock.period_ns == PERIOD


def test_threshold_follows_the_observed_period():
    # At 2 fps a 5 s step is 10 periods (a gap with 9 lost frames); at 30 fps it is a jump.
    slow = StampClock()
    half_second = 500_000_000
    _stream(slow, [k * half_second for k in range(5)])
    gap = slow.check(4 * half_second + 5_000_000_000)
    assert (gap.verdict, gap.missing) == (StampVerdict.NEXT, 9)
    fast = StampClock()
    _stream(fast, _normal(5))
    assert fast.check(4 * PERIOD + 5_000_000_000).verdict is StampVerdict.JUMP_AHEAD


def test_bursts_of_close_stamps_do_not_become_the_period():
    # Messages 10 ns apart (a burst, or test traffic) must not shrink the period to
    # 10 ns, which would make the next normal frame a "jump" and count millions lost.
    clock = StampClock()
    _stream(clock, _normal(3))
    burst = [2 * PERIOD + 10 * k for k in range(1, 8)]
    assert _stream(clock, burst) == ["next"] * 7
    assert clock.period_ns == PERIOD
    check = clock.check(3 * PERIOD)
    assert (check.verdict, check.missing) == (StampVerdict.NEXT, 0)


def test_before_the_period_is_known_the_initial_threshold_applies():
    clock = StampClock(initial_jump_ns=10**9)
    assert _stream(clock, [0, 2 * 10**9]) == ["next", "clock_jump_ahead"]
    assert clock.check(10**9 + 1).verdict is StampVerdict.LATE
    assert clock.check(10**9 - 1).verdict is StampVerdict.JUMP_BACK


def test_matcher_drops_the_old_time_line_on_a_jump():
    matcher: StampMatcher[str, str] = StampMatcher(capacity=8)
    for stamp in (HOUR, HOUR + 1, 5):
        matcher.add_left(stamp, f"l{stamp}")
    matcher.add_right(HOUR + 2, "r")
    matcher.discard_outside(5, newer=True)
    assert len(matcher) == 1 and matcher.discarded == 3
    assert matcher.add_right(5, "image@5") == [(5, "l5", "image@5")]
    ahead: StampMatcher[str, str] = StampMatcher()
    ahead.add_left(1, "old")
    ahead.add_left(HOUR, "new")
    ahead.discard_outside(HOUR, newer=False)
    assert ahead.add_right(HOUR, "image") == [(HOUR, "new", "image")]
    assert ahead.discarded == 1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"jump_periods": 1.0}, "jump_periods"),
        ({"initial_jump_ns": 0}, "initial_jump_ns"),
        ({"min_period_ns": 0}, "min_period_ns"),
        ({"resync_after": 0}, "resync_after"),
        ({"history": 1}, "history"),
    ],
)
def test_clock_validates_its_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        StampClock(**kwargs)
