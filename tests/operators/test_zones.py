"""Zones and lines: validation, ByteTrack tracking, entries and directed crossings, snapshots."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main
from pydantic import ValidationError

from gtvision.events import Box, LineCrossed, ZoneEntered
from gtvision.operators.geometry import ZONE_LIST, Line, Zone
from gtvision.operators.tracking import (
    PLATE,
    FrameObjects,
    TrackedObjects,
    TrackerConfig,
    _TrackLogic,
    merge_boxes,
    track,
)
from gtvision.operators.zones import CameraShapes, _Logic, line_crossings, zone_entries

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
W, H = 320, 240
GATE = Zone(name="gate", points=((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)))
ENTRANCE = Line(name="entrance", points=((0.5, 0.0), (0.5, 1.0)))  # pointing down the picture


def walk(camera: int, xs: list[float], size: float = 30, t0: float = 0.0) -> list[FrameObjects]:
    """A box walking through ``xs`` (pixels, one frame every 0.2 s), then empty frames."""
    out = []
    for i, x in enumerate([*xs, None, None, None]):
        boxes = () if x is None else (Box(x1=x, y1=100, x2=x + size, y2=100 + size),)
        out.append(FrameObjects(0, camera, T0 + timedelta(seconds=t0 + 0.2 * i), W, H, boxes))
    return out


def run(items: list[FrameObjects], want: str) -> list[ZoneEntered | LineCrossed]:
    got: list[ZoneEntered | LineCrossed] = []
    flow = Dataflow("zones")
    from bytewax import operators as op

    tracked = track("track", op.input("in", flow, TestingSource(items)))
    shapes = (GATE, ENTRANCE)
    if want == "zone":
        op.output("out", zone_entries("z", tracked, lambda _cam: shapes), TestingSink(got))
    else:
        op.output("out", line_crossings("l", tracked, lambda _cam: shapes), TestingSink(got))
    run_main(flow)  # type: ignore[no-untyped-call]
    return got


def test_shapes_are_validated_with_clear_messages() -> None:
    good = [GATE.model_dump(), ENTRANCE.model_dump()]
    assert ZONE_LIST.validate_python(good) == [GATE, ENTRANCE]
    bad = [
        ({"kind": "zone", "name": "z", "points": [[0, 0], [1.5, 0], [1, 1]]}, "normalised to 0..1"),
        ({"kind": "zone", "name": "z", "points": [[0, 0], [0.5, 0.5], [1, 1]]}, "non-zero area"),
        ({"kind": "zone", "name": "z", "points": [[0, 0], [1, 1]]}, "at least 3 items"),
        ({"kind": "line", "name": "l", "points": [[0.2, 0.2], [0.2, 0.2]]}, "two different"),
        ({"kind": "circle", "name": "c", "points": []}, "does not match any of the expected"),
        ({"kind": "line", "name": "bad/name", "points": [[0, 0], [1, 1]]}, "should match"),
    ]
    for shape, message in bad:
        with pytest.raises(ValidationError, match=message):
            ZONE_LIST.validate_python([shape])
    with pytest.raises(ValidationError, match=r"unique per camera, repeated: \['gate'\]"):
        ZONE_LIST.validate_python([good[0], good[0]])


def test_crossing_a_directed_line_both_ways() -> None:
    right_to_left_of_line = walk(1, list(range(100, 200, 10)))  # screen left → right
    back = walk(1, list(range(200, 100, -10)), t0=10)
    events = [e for e in run(right_to_left_of_line + back, "line") if isinstance(e, LineCrossed)]
    assert [(e.line, e.direction, e.camera_id) for e in events] == [
        ("entrance", "in", 1),
        ("entrance", "out", 1),
    ]
    first, second = events
    assert isinstance(first, LineCrossed)
    assert isinstance(second, LineCrossed)
    assert first.track_id != second.track_id  # the first track was lost in between
    # the second frame whose box's bottom centre is past x = 160 (two frames: no jitter)
    assert first.ts == T0 + timedelta(seconds=1.2)


def test_entering_a_zone_once_per_track_and_cameras_apart() -> None:
    items = walk(1, list(range(100, 260, 10)))
    items += walk(2, [250, 260, 270], t0=0.1)  # appears inside: entering too
    events = [
        e for e in run(sorted(items, key=lambda f: f.ts), "zone") if isinstance(e, ZoneEntered)
    ]
    got = sorted((e.camera_id, e.zone, e.ts - T0) for e in events)
    assert got == [
        (1, "gate", timedelta(seconds=1.0)),
        (2, "gate", timedelta(seconds=0.1)),
    ]
    assert all(isinstance(e, ZoneEntered) and e.label == "motion" for e in events)


def _step(tracker: _TrackLogic, lines: _Logic, frame: FrameObjects) -> list[int]:
    (tracked,) = tracker.on_item(frame)[0]
    return [e.track_id for e in lines.on_item(tracked)[0]]


def test_tracker_and_line_snapshots_round_trip_and_resume_with_the_same_ids() -> None:
    frames = walk(3, list(range(100, 230, 10)))
    shapes = lambda _c: (ENTRANCE,)  # noqa: E731
    whole = _TrackLogic(TrackerConfig(), None), _Logic(shapes, "line", None)
    ids = [tid for f in frames for tid in _step(*whole, f)]
    tracker, lines = _TrackLogic(TrackerConfig(), None), _Logic(shapes, "line", None)
    for f in frames[:6]:  # the box sits on the line: the crossing is half remembered
        _step(tracker, lines, f)
    state = pickle.loads(pickle.dumps((tracker.snapshot(), lines.snapshot())))
    assert isinstance(state[1], CameraShapes)
    resumed = _TrackLogic(TrackerConfig(), state[0]), _Logic(shapes, "line", state[1])
    assert [tid for f in frames[6:] for tid in _step(*resumed, f)] == ids
    assert len(ids) == 1


def test_nearby_blobs_are_one_object_and_tracked_items_pass_through() -> None:
    a, b = Box(x1=0, y1=0, x2=10, y2=10), Box(x1=14, y1=0, x2=30, y2=10)
    far = Box(x1=100, y1=100, x2=120, y2=120)
    assert merge_boxes([far, b, a], margin=5) == (Box(x1=0, y1=0, x2=30, y2=10), far)
    done = TrackedObjects(0, 1, T0, W, H, (far,), (42,))
    assert _TrackLogic(TrackerConfig(), None).on_item(done)[0] == [done]


def test_a_box_missed_for_a_frame_inside_a_zone_does_not_enter_twice() -> None:
    """A detection gap ByteTrack bridges (the track is lost, then found again) keeps the track
    inside: one ``zone.entered``, not one per reappearance."""
    xs: list[float | None] = [200, 205, 210, None, 215, 220, None, None, 225, 230]
    items = [
        FrameObjects(0, 5, T0 + timedelta(seconds=0.2 * i), W, H, ()
                     if x is None else (Box(x1=x, y1=100, x2=x + 30, y2=130),))
        for i, x in enumerate(xs)
    ]  # fmt: skip
    events = [e for e in run(items, "zone") if isinstance(e, ZoneEntered)]
    assert [(e.zone, e.track_id, e.ts - T0) for e in events] == [("gate", 1, timedelta(0))]


def _plates(t: float, *reads: tuple[str, float, float, float]) -> FrameObjects:
    """A frame of plate reads ``(text, confidence, x, y)`` (plate boxes 40x14 px)."""
    return FrameObjects(
        0, 6, T0 + timedelta(seconds=t), W, H,
        tuple(Box(x1=x, y1=y, x2=x + 40, y2=y + 14) for _, _, x, y in reads), PLATE,
        tuple(text for text, _, _, _ in reads), tuple(conf for _, conf, _, _ in reads),
    )  # fmt: skip


def _tracked(tracker: _TrackLogic, frame: FrameObjects) -> TrackedObjects:
    (out,) = tracker.on_item(frame)[0]
    return out


def test_plate_boxes_are_followed_by_their_text_and_named_by_their_best_read() -> None:
    """Plate boxes that never overlap from frame to frame (a near car at 5 fps) keep one track
    by their text; a misread frame stays on its track by overlap; two plates in one frame are
    two tracks; a track unread for longer than the pass gap ends."""
    frames = [
        _plates(0.0, ("BRA2E19", 0.7, 10, 60), ("GTV5K42", 0.9, 200, 60)),
        _plates(0.2, ("BRA2E19", 0.95, 10, 80), ("GTV5K42", 0.9, 200, 80)),
        _plates(0.4, ("X4", 0.5, 12, 82)),  # misread, box overlaps the last one
        _plates(0.6, ("BRA2E19", 0.8, 14, 120)),  # jumped 38 px: no overlap
        _plates(0.8, ("BRA2E19", 0.8, 200, 190)),
        _plates(3.0, ("BRA2E19", 0.8, 14, 120)),  # 2.2 s later: another pass
    ]
    tracker = _TrackLogic(TrackerConfig(), None)
    out = [_tracked(tracker, f) for f in frames]
    assert [o.track_ids for o in out] == [(1, 2), (1, 2), (1,), (1,), (1,), (3,)]
    assert [o.texts for o in out][1:4] == [("BRA2E19", "GTV5K42"), ("BRA2E19",), ("BRA2E19",)]
    assert out[0].texts == ("BRA2E19", "GTV5K42")
    assert out[2].held == (2,)  # GTV5K42 not read in this frame: kept
    state = pickle.loads(pickle.dumps(tracker.snapshot()))
    resumed = _TrackLogic(TrackerConfig(), state)
    assert _tracked(resumed, _plates(3.2, ("BRA2E19", 0.9, 16, 130))).track_ids == (3,)
    # through a zone: one entry, named by the best read
    seen = run([_plates(0.2 * i, ("GTV5K42", 0.6 + i / 100, 120 + 12 * i, 100)) for i in range(8)]
               + [_plates(1.6, ("GTV5K4Z", 0.99, 216, 100))], "zone")  # fmt: skip
    entered = [e for e in seen if isinstance(e, ZoneEntered)]
    assert [(e.zone, e.label, e.plate) for e in entered] == [("gate", "plate", "GTV5K42")]
    assert len(seen) == 1
