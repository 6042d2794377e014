"""Typed events: JSON round-trip of every type, deterministic ids, aware UTC times."""

from __future__ import annotations

import pickle
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gtvision.events import (
    Alert,
    AlertAcknowledged,
    Box,
    CameraEvent,
    Detection,
    Event,
    EventBase,
    Frame,
    HotlistMatch,
    LineCrossed,
    MotionIncident,
    PlateCandidate,
    PlatePass,
    PlateRead,
    PlateSighting,
    PlateTrajectory,
    RecordingEvent,
    ZoneEntered,
    deterministic_id,
    parse_event,
)

ids = st.integers(min_value=0, max_value=2**31)
conf = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
coord = st.floats(min_value=0.0, max_value=8000.0, allow_nan=False)
text = st.text(max_size=20)
zones = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
# hypothesis takes naive bounds and attaches the drawn zone
times = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=zones,
)
labels = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)


@st.composite
def boxes(draw: st.DrawFn) -> Box:
    x1, x2 = sorted((draw(coord), draw(coord)))
    y1, y2 = sorted((draw(coord), draw(coord)))
    return Box(x1=x1, y1=y1, x2=x2, y2=y2)


candidates = st.builds(
    PlateCandidate, text=text, confidence=conf, char_confidences=st.tuples(conf, conf)
)
common = {"city_id": ids, "camera_id": ids, "ts": times}

EVENTS: dict[type[EventBase], st.SearchStrategy[Any]] = {
    Detection: st.builds(
        Detection, **common, frame_index=ids, label=text, confidence=conf, box=boxes(),
        model=text,
    ),
    PlateRead: st.builds(
        PlateRead, **common, frame_index=ids, text=text, confidence=conf,
        detector_confidence=conf, box=boxes(), candidates=st.tuples(candidates),
        crop_jpeg=st.none() | st.binary(max_size=64), models=labels,
    ),
    PlatePass: st.builds(
        PlatePass, **common, plate=text, confidence=conf, first_seen=times, last_seen=times,
        reads=st.integers(1, 1000), box=st.none() | boxes(), candidates=st.tuples(candidates),
        crop_jpeg=st.none() | st.binary(max_size=64), crop_key=st.none() | text,
        clip_key=st.none() | text, models=labels,
    ),
    MotionIncident: st.builds(
        MotionIncident, **common, start=times, end=times, peak_score=conf,
        box=st.none() | boxes(), frames=ids, clip_key=st.none() | text,
    ),
    Alert: st.builds(
        Alert, **common, pass_id=text, plate=text,
        match=st.builds(
            HotlistMatch, entry_id=ids, pattern=text,
            kind=st.sampled_from(["exact", "wildcard", "fuzzy"]),
            distance=st.floats(0, 10), priority=ids, reason=text,
        ),
        crop_key=st.none() | text,
    ),
    AlertAcknowledged: st.builds(
        AlertAcknowledged, **common, alert_id=text, action=st.sampled_from(["ack", "note"]),
        entry=ids, user_id=ids, username=text, note=text,
    ),
    CameraEvent: st.builds(
        CameraEvent, **common,
        type=st.sampled_from(typing.get_args(CameraEvent.model_fields["type"].annotation)),
        reason=text, detail=text, name=text,
    ),
    RecordingEvent: st.builds(
        RecordingEvent, **common,
        type=st.sampled_from(["recording.started", "recording.stopped"]),
        recording_id=text, object_key=st.none() | text, started_at=times,
        ended_at=st.none() | times,
    ),
    ZoneEntered: st.builds(
        ZoneEntered, **common, zone=text, track_id=ids, box=boxes(), label=text,
        plate=st.none() | text,
    ),
    LineCrossed: st.builds(
        LineCrossed, **common, line=text, direction=st.sampled_from(["in", "out"]),
        track_id=ids, box=boxes(), label=text, plate=st.none() | text,
    ),
    PlateTrajectory: st.builds(
        PlateTrajectory, **common, rule=text, plate=text, first_pass=text,
        sightings=st.lists(
            st.builds(PlateSighting, camera_id=ids, ts=times, plate=text, pass_id=text),
            min_size=2, max_size=4,
        ).map(tuple),
    ),
}  # fmt: skip
any_event = st.one_of(*EVENTS.values())


def test_every_event_type_has_a_strategy() -> None:
    union = typing.get_args(typing.get_args(Event)[0])
    assert set(union) == set(EVENTS)


@settings(max_examples=300, deadline=None)
@given(any_event)
def test_json_round_trip(event: EventBase) -> None:
    back = parse_event(event.to_json())
    assert type(back) is type(event)
    assert back == event
    assert back.to_json() == event.to_json()
    assert parse_event(event.model_dump(mode="json")) == event
    assert back.ts.utcoffset() == timedelta(0)
    assert back.schema_version == 1


def _rebuild(event: EventBase, **changes: Any) -> EventBase:
    data = event.model_dump(exclude={"id"})
    data.update(changes)
    return type(event)(**data)


def _changed(value: Any) -> Any:
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, Box):
        return Box(x1=value.x1, y1=value.y1, x2=value.x2 + 1, y2=value.y2)
    if isinstance(value, HotlistMatch):
        return value.model_copy(update={"entry_id": value.entry_id + 1})
    raise AssertionError(f"no mutation for {value!r}")


@settings(max_examples=200, deadline=None)
@given(any_event)
def test_ids_are_deterministic_and_follow_identity(event: EventBase) -> None:
    again = _rebuild(event)
    assert again.id == event.id
    identity = ("city_id", "camera_id", *event.identity)
    assert event.id == deterministic_id(event.type, *(getattr(event, f) for f in identity))
    for name in identity:
        assert _rebuild(event, **{name: _changed(getattr(event, name))}).id != event.id, name
    # payload fields outside the identity (a re-scored read, say) keep the id
    if "confidence" in type(event).model_fields:
        other = 0.5 if event.model_dump()["confidence"] != 0.5 else 0.25
        assert _rebuild(event, confidence=other).id == event.id


def test_naive_times_are_rejected_and_zones_converted() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        CameraEvent(type="camera.online", city_id=1, camera_id=1, ts=datetime(2024, 1, 1))  # noqa: DTZ001
    local = datetime(2024, 1, 1, 9, tzinfo=timezone(timedelta(hours=-3)))
    event = CameraEvent(type="camera.online", city_id=1, camera_id=1, ts=local)
    assert event.ts == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert event.ts.tzinfo == UTC


def test_frame_refuses_pickling_and_naive_times() -> None:
    gray = np.zeros((2, 2), dtype=np.uint8)
    frame = Frame(1, 2, 3, datetime.now(UTC), gray, 2, 2)
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(frame)
    with pytest.raises(ValueError, match="timezone-aware"):
        Frame(1, 2, 3, datetime(2024, 1, 1), gray, 2, 2)  # noqa: DTZ001
