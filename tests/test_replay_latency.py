"""Latency bookkeeping from header stamps."""

from __future__ import annotations

import math

import pytest

from vis_node.replay.latency import LatencyLog, summary_ms


def test_stage_and_end_to_end_latency():
    log = LatencyLog(stages=("instances", "tracked"))
    for k, stamp in enumerate((10, 20, 30)):
        t0 = float(k)
        log.publish(stamp, t0)
        log.arrive("instances", stamp, t0 + 0.010 * (k + 1))
        if stamp != 30:
            log.arrive("tracked", stamp, t0 + 0.010 * (k + 1) + 0.002)
    report = log.report()
    assert report["published"] == 3 and report["delivered"] == 2 and report["dropped"] == 1
    assert report["stages"]["instances"]["max"] == pytest.approx(30.0)
    assert report["stages"]["instances"]["median"] == pytest.approx(20.0)
    assert report["stages"]["tracked"]["median"] == pytest.approx(2.0)
    assert report["end_to_end"]["max"] == pytest.approx(22.0)
    assert report["throughput_fps"] == pytest.approx(2 / 1.022)
    assert log.complete(10) and not log.complete(30)


def test_first_arrival_wins_and_unknown_stage():
    log = LatencyLog(stages=("a",))
    log.publish(1, 0.0)
    log.arrive("a", 1, 0.5)
    log.arrive("a", 1, 0.9)
    assert log.report()["end_to_end"]["max"] == pytest.approx(500.0)
    with pytest.raises(ValueError, match="unknown stage"):
        log.arrive("b", 1, 1.0)


def test_summary_of_nothing_is_nan():
    assert math.isnan(summary_ms([])["median"])
    assert summary_ms([0.001, 0.002, 0.003])["p90"] == pytest.approx(2.8)


def test_frames_at_the_first_stage_count_those_not_yet_through_it():
    serial = LatencyLog(stages=("instances",))
    overlapped = LatencyLog(stages=("instances",))
    for k in range(4):
        serial.publish(k, float(k))
        serial.arrive("instances", k, k + 0.5)
        overlapped.publish(k, float(k))
        if k != 1:  # frame 1 never comes out: still inside when frames 2 and 3 go in
            overlapped.arrive("instances", k, k + 1.5)
    assert serial.report()["max_at_first_stage"] == 1
    assert overlapped.report()["max_at_first_stage"] == 3
    assert LatencyLog(stages=("instances",)).report()["max_at_first_stage"] == 0
