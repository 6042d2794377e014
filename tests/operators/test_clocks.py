"""Live window clocks wake up when a window can close, not before (no busy re-activation)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.operators.windowing import EventClock
from bytewax.testing import TestingSink, run_main

from gtvision.events import Box, MotionIncident
from gtvision.operators.clocks import LiveClock, window_clock
from gtvision.operators.incidents import motion_incidents
from gtvision.operators.motion import MotionResult

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
WAIT = timedelta(seconds=3)
BOX = (Box(x1=0, y1=0, x2=10, y2=10),)


class FakeNow:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _ts(d: datetime) -> datetime:
    return d


@pytest.mark.parametrize("skew_s", [-4.0, -0.3, 0.0, 2.0, 6.0])
def test_wake_up_is_when_the_watermark_reaches_the_close(skew_s: float) -> None:
    """Whatever the lag between event and wall time, the wake-up is the first due instant."""
    now = FakeNow()
    logic = LiveClock(_ts, WAIT, now_getter=now).build(None)
    now.now = T0 + timedelta(seconds=10)
    logic.before_batch()
    event = now.now + timedelta(seconds=skew_s)
    logic.on_item(event)
    close = event + timedelta(seconds=2)  # a session window's end + gap
    wake = logic.to_system_utc(close)
    assert wake is not None
    assert wake == now.now + (close - event) + WAIT + timedelta(milliseconds=1)
    now.now = wake - timedelta(milliseconds=2)
    assert logic.on_notify() < close  # one instant earlier it would not close
    now.now = wake
    assert logic.on_notify() > close  # session windows close strictly after their end


def test_watermark_matches_bytewax_event_clock() -> None:
    """Same watermark as Bytewax's EventClock for in-order, late and idle periods."""
    now = FakeNow()
    ours = LiveClock(_ts, WAIT, now_getter=now).build(None)
    theirs = EventClock(_ts, WAIT, now_getter=now).build(None)
    steps = [(0.0, 0.0), (0.5, 0.4), (1.0, 0.2), (4.0, None), (4.5, 5.0), (9.0, None)]
    for wall_s, event_s in steps:
        now.now = T0 + timedelta(seconds=wall_s)
        for logic in (ours, theirs):
            logic.before_batch()
        if event_s is None:
            assert ours.on_notify() == theirs.on_notify()
        else:
            item = T0 + timedelta(seconds=event_s)
            assert ours.on_item(item) == theirs.on_item(item)


def test_resumes_from_a_bytewax_event_clock_snapshot() -> None:
    now = FakeNow()
    theirs = EventClock(_ts, WAIT, now_getter=now).build(None)
    theirs.before_batch()
    theirs.on_item(T0)
    ours = LiveClock(_ts, WAIT, now_getter=now).build(theirs.snapshot())  # type: ignore[arg-type]
    assert ours.on_notify() == theirs.on_notify()
    assert ours.to_system_utc(T0) == T0 + WAIT + timedelta(milliseconds=1)


def test_replay_clock_never_wakes_up() -> None:
    logic = window_clock(_ts, replay=True).build(None)
    logic.before_batch()
    logic.on_item(T0)
    assert logic.to_system_utc(T0 + timedelta(hours=1)) is None


class _Moving(StatefulSourcePartition[MotionResult, None]):
    """Moving frames at 10 fps for ``moving_s`` of wall time, then nothing until ``end_s``."""

    def __init__(self, moving_s: float, end_s: float) -> None:
        self.t0 = time.monotonic()
        self.moving_s, self.end_s = moving_s, end_s
        self.index = 0

    def next_batch(self) -> list[MotionResult]:
        age = time.monotonic() - self.t0
        if age >= self.end_s:
            raise StopIteration
        if age >= self.moving_s or age < self.index / 10:
            return []
        self.index += 1
        now = datetime.now(UTC) - timedelta(seconds=0.2)  # frames arrive 0.2 s after capture
        return [MotionResult(city_id=1, camera_id=7, index=self.index, ts=now, boxes=BOX)]

    def next_awake(self) -> datetime | None:
        return datetime.now(UTC) + timedelta(milliseconds=50)

    def snapshot(self) -> None:
        return None


class _MovingSource(FixedPartitionedSource[MotionResult, None]):
    def __init__(self, moving_s: float, end_s: float) -> None:
        self.moving_s, self.end_s = moving_s, end_s

    def list_parts(self) -> list[str]:
        return ["cam"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Moving:
        return _Moving(self.moving_s, self.end_s)


def test_live_incident_closes_on_time_without_spinning() -> None:
    """Motion for 1 s, then quiet: the incident comes out ``gap + wait`` after its last frame
    while the flow still runs, and the worker sleeps meanwhile (CPU time of the worker thread:
    ``run_main`` runs the dataflow in the calling thread)."""
    got: list[tuple[float, MotionIncident]] = []

    class _Stamped(list[MotionIncident]):
        def __iadd__(self, items: Iterable[MotionIncident]) -> _Stamped:  # type: ignore[override,misc]
            got.extend((time.time(), item) for item in items)
            return self

    flow = Dataflow("live_incidents")
    results = op.input("in", flow, _MovingSource(moving_s=1.0, end_s=5.0))
    incidents = motion_incidents(
        "incidents", results, timedelta(seconds=1), wait=timedelta(seconds=1)
    )
    op.output("out", incidents, TestingSink(_Stamped()))
    cpu0 = time.thread_time()
    run_main(flow, epoch_interval=timedelta(seconds=1))
    cpu = time.thread_time() - cpu0
    assert len(got) == 1
    emitted, incident = got[0]
    late = emitted - incident.end.timestamp()
    assert 2.0 <= late < 3.0, f"closed {late:.2f} s after the last motion (want gap+wait = 2)"
    assert cpu < 0.8, f"the worker used {cpu:.2f} s of CPU in 5 s (busy re-activation)"
