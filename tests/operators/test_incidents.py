"""Incident sessions follow each camera's analysis interval (keyframe-only cameras)."""

from __future__ import annotations

import pickle
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
import numpy as np
import pytest
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import Clock, SessionWindower, fold_window
from bytewax.testing import TestingSink, TestingSource, run_main

from gtvision.events import Box, Frame, MotionIncident
from gtvision.operators.clocks import window_clock
from gtvision.operators.incidents import IncidentAcc, motion_incidents
from gtvision.operators.motion import MotionDetector, MotionResult, MotionSettings
from gtvision.operators.motionstats import Cadence

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
BOX = (Box(x1=0, y1=0, x2=10, y2=10),)
PERIODS = [(10.0, 30.0), (50.0, 62.0), (80.0, 110.0), (130.0, 136.0), (160.0, 190.0)]


def _stream(
    step_s: float, *, jitter_s: float = 0.0, miss: float = 0.0, seed: int = 0
) -> Iterator[MotionResult]:
    """Results every ``step_s`` (± ``jitter_s``) over 200 s with motion in :data:`PERIODS`;
    inside a period a fraction ``miss`` of the frames shows no motion (a blob under
    ``min_area``), never two in a row: the gap (2.5 intervals) bridges one missed frame."""
    rng = random.Random(seed)
    cadence = Cadence()
    t, index, moving = 0.0, 0, False
    while t < 200:
        ts = T0 + timedelta(seconds=t)
        interval = cadence.update(ts)
        missed = moving and rng.random() < miss
        moving = any(a <= t <= b for a, b in PERIODS) and not missed
        yield MotionResult(1, 7, index, ts, BOX if moving else (), score=0.5, interval=interval)
        index += 1
        t += step_s + rng.uniform(0, jitter_s)


def _incidents(results: list[MotionResult], interval_factor: float = 2.5) -> list[MotionIncident]:
    out: list[MotionIncident] = []
    flow = Dataflow("incidents")
    up = op.input("in", flow, TestingSource(results))
    inc = motion_incidents("inc", up, replay=True, interval_factor=interval_factor)
    op.output("out", inc, TestingSink(out))
    run_main(flow)
    return out


def _bytewax_sessions(results: list[MotionResult]) -> list[MotionIncident]:
    """The step before per-camera gaps: Bytewax's fixed-gap session windows (2 s)."""
    out: list[MotionIncident | None] = []
    flow = Dataflow("reference")
    up = op.input("in", flow, TestingSource(results))
    moving = op.key_on("key", op.filter("moving", up, lambda r: r.motion), lambda r: "7")
    clock: Clock[MotionResult, Any] = window_clock(lambda r: r.ts, replay=True)
    windows = fold_window(
        "w",
        moving,
        clock,
        SessionWindower(gap=timedelta(seconds=2)),
        IncidentAcc,
        IncidentAcc.add,
        IncidentAcc.merge,
    )
    op.output("out", op.map("acc", windows.down, lambda kv: kv[1][1].incident()), TestingSink(out))
    run_main(flow)
    return [x for x in out if x is not None]


def _spans(incidents: list[MotionIncident]) -> list[tuple[float, float]]:
    return [((i.start - T0).total_seconds(), (i.end - T0).total_seconds()) for i in incidents]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keyframe_only_camera_gives_one_incident_per_motion_period(seed: int) -> None:
    results = list(_stream(2.0, jitter_s=0.15, miss=0.15, seed=seed))
    assert results[-1].interval == pytest.approx(2.07, abs=0.1)
    incidents = _incidents(results)
    assert len(incidents) == len(PERIODS), _spans(incidents)
    for (start, end), (a, b) in zip(_spans(incidents), PERIODS, strict=True):
        assert a <= start <= a + 6.5  # a missed first keyframe starts it one frame late
        assert b - 6.5 <= end <= b
    # the fixed 2 s gap (interval factor 0, and Bytewax's session windows) splits them
    assert len(_incidents(results, interval_factor=0.0)) > len(PERIODS)
    assert len(_bytewax_sessions(results)) > len(PERIODS)


@pytest.mark.parametrize("miss", [0.0, 0.3])
def test_five_fps_incidents_are_those_of_fixed_two_second_sessions(miss: float) -> None:
    # at 5 fps the interval is 0.2 s: 2.5 × 0.2 < 2 s, the configured gap stays in force, and
    # the incidents are exactly those of Bytewax's session windows (start, end, frames, peak)
    results = list(_stream(0.2, jitter_s=0.02, miss=miss, seed=4))
    ours = _incidents(results)
    assert ours == _bytewax_sessions(results)
    assert len(ours) == len(PERIODS)


def test_gap_and_factor_are_checked() -> None:
    with pytest.raises(ValueError, match=r"interval_factor >= 0, got .* and -1$"):
        motion_incidents("x", op.input("in", Dataflow("f"), TestingSource([])), interval_factor=-1)


def test_cadence_is_the_median_of_recent_intervals() -> None:
    cad = Cadence()
    assert cad.update(T0) == 0.0
    for i in range(1, 12):
        cad.update(T0 + timedelta(seconds=2 * i))
    assert cad.interval == 2.0
    cad.update(T0 + timedelta(seconds=22 + 300))  # an outage: one long interval
    assert cad.interval == 2.0
    cad.update(T0)  # a frame from the past is not counted
    assert cad.interval == 2.0
    assert len(cad.deltas) == 9


def test_detector_reports_the_interval_and_keeps_it_in_its_state() -> None:
    det = MotionDetector(MotionSettings())
    gray = np.full((360, 640), 90, np.uint8)
    results = [
        det.detect(Frame(1, 2, i, T0 + timedelta(seconds=2 * i), gray, 640, 360)) for i in range(4)
    ]
    assert [r.interval for r in results] == [0.0, 2.0, 2.0, 2.0]
    state = pickle.loads(pickle.dumps(det.state()))
    again = MotionDetector.from_state(state)
    assert again.detect(Frame(1, 2, 4, T0 + timedelta(seconds=8), gray, 640, 360)).interval == 2.0
