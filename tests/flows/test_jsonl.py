"""The JSON-lines sink's ordered mode (``gtvision replay``): spool, resume, sorted output."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gtvision.events import MotionIncident, parse_event
from gtvision.flows.jsonl import JsonlSink


def _incident(second: int, camera: int = 1) -> MotionIncident:
    t = datetime(2026, 5, 1, 8, 0, second, tzinfo=UTC)
    return MotionIncident(
        city_id=0, camera_id=camera, ts=t, start=t, end=t, peak_score=0.5, frames=1
    )


def _write(sink: JsonlSink, *events: MotionIncident) -> None:
    sink.build("out", 0, 1).write_batch(list(events))
    sink.close()


def test_ordered_output_is_sorted_by_time_with_each_id_once(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sink = JsonlSink(out, ordered=True)
    _write(sink, _incident(3), _incident(1, camera=2), _incident(1), _incident(3))
    sink.finish()
    events = [parse_event(line) for line in out.read_text().splitlines()]
    assert [(e.ts.second, e.camera_id) for e in events] == [(1, 1), (1, 2), (3, 1)]
    assert sink.count == 3
    assert not out.with_name("out.jsonl.partial").exists()


@pytest.mark.parametrize("cut", [1, 40, 200])
def test_a_resumed_replay_drops_the_line_the_interrupted_run_left_half_written(
    tmp_path: Path, cut: int
) -> None:
    out = tmp_path / "out.jsonl"
    _write(JsonlSink(out, ordered=True), _incident(1), _incident(2))
    spool = out.with_name("out.jsonl.partial")
    text = spool.read_bytes()
    spool.write_bytes(text[:-cut])  # the process died while writing the second event
    resumed = JsonlSink(out, ordered=True, resume=True)
    _write(resumed, _incident(2), _incident(3))  # re-emitted after the last snapshot, then new
    resumed.finish()
    events = [parse_event(line) for line in out.read_text().splitlines()]
    assert [e.ts.second for e in events] == [1, 2, 3]
    assert [e.id for e in events] == [_incident(s).id for s in (1, 2, 3)]
