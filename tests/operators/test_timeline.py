"""``ObservedClock``: snapshots (deep copies) equal the clock and are independent of it."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta

from gtvision.operators.timeline import ObservedClock

T0 = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)


def _clock(frames: int) -> ObservedClock:
    clock = ObservedClock()
    for i in range(frames):
        clock.advance(T0 + timedelta(seconds=0.2 * i + (1.6 if i > frames // 2 else 0)), tick=True)
    return clock


def test_a_deep_copy_equals_the_clock_and_maps_times_alike() -> None:
    clock = _clock(600)  # more frames than anchors kept
    snap = copy.deepcopy(clock)
    assert snap == clock
    assert snap.anchors.maxlen == clock.anchors.maxlen
    assert snap.deltas.maxlen == clock.deltas.maxlen
    for s in (-5.0, 0.3, 50.0, 60.1, 119.9, 125.0):
        ts = T0 + timedelta(seconds=s)
        assert snap.at(ts) == clock.at(ts)
    assert pickle.loads(pickle.dumps(snap)) == clock


def test_a_deep_copy_does_not_change_with_the_clock() -> None:
    clock = _clock(20)
    snap = copy.deepcopy(clock)
    frozen = (snap.observed, list(snap.anchors), list(snap.deltas), snap.last_ts)
    clock.advance(T0 + timedelta(seconds=30), tick=True)
    assert (snap.observed, list(snap.anchors), list(snap.deltas), snap.last_ts) == frozen
    assert clock.observed > snap.observed
