"""Objects in zones and across lines: ByteTrack tracking (``supervision``) per camera.

Input: :class:`FrameObjects`, the boxes seen in one analysed frame of one camera (motion blobs
via :func:`motion_objects`, or any detector's boxes) -- light values, safe to key and exchange.
Every analysed frame should come, also those without boxes, so tracks age out in time.

Per camera a ``StatefulLogic`` keeps a ``supervision.ByteTrack`` tracker and, for lines, one
``supervision.LineZone`` per line (its per-track side memory), plus which tracks are inside which
zone. The whole state is the recovery snapshot, so a resumed replay tracks on with the same ids.
Track ids are deterministic: the same frames give the same ids.

* :func:`zone_entries`: one :class:`~gtvision.events.ZoneEntered` when a track's anchor (bottom
  centre of its box) is inside a zone and was not on the track's previous frame (first seen
  inside counts as entering).
* :func:`line_crossings`: one :class:`~gtvision.events.LineCrossed` per crossing of a line by a
  track's anchor (bottom centre of its box), with its direction (see
  :class:`~gtvision.operators.geometry.Line`).

Zones and lines are normalised; they are turned into pixels of each camera's frame size, and
rebuilt when the camera's geometry (``shapes_for(camera_id)``) or frame size changes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import bytewax.operators as op
import numpy as np
import supervision as sv
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulLogic

from gtvision.events import Box, LineCrossed, ZoneEntered
from gtvision.operators.geometry import Line, Zone, lines_of, zones_of
from gtvision.operators.motion import MotionResult

ShapesFor = Callable[[int], Sequence[Zone | Line]]
_ANCHOR = sv.Position.BOTTOM_CENTER


@dataclass(frozen=True, slots=True)
class FrameObjects:
    """Boxes (pixels) seen in one analysed frame of one camera."""

    city_id: int
    camera_id: int
    ts: datetime
    width: int
    height: int
    boxes: tuple[Box, ...] = ()
    label: str = "motion"


def merge_boxes(boxes: Sequence[Box], margin: float) -> tuple[Box, ...]:
    """Boxes closer than ``margin`` pixels to each other merged into their union.

    A moving object often shows up as several motion blobs (uniform areas of it do not change
    from frame to frame); tracked apart they would be several objects.
    """
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                if (
                    a.x1 - margin <= b.x2
                    and b.x1 - margin <= a.x2
                    and a.y1 - margin <= b.y2
                    and b.y1 - margin <= a.y2
                ):
                    merged[i] = a.union(b)
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return tuple(sorted(merged, key=lambda b: (b.x1, b.y1)))


def motion_objects(result: MotionResult, merge: float = 0.05) -> FrameObjects:
    """The motion blobs of a frame as objects to track.

    Blobs closer than ``merge`` × the picture's larger side are merged into one object.
    """
    margin = merge * max(result.width, result.height)
    return FrameObjects(
        result.city_id,
        result.camera_id,
        result.ts,
        result.width,
        result.height,
        merge_boxes(result.boxes, margin),
    )


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """ByteTrack tuning: analysis rate, how long a lost track is kept, matching IoU."""

    fps: float = 5.0
    lost_s: float = 2.0
    min_iou: float = 0.1

    def tracker(self) -> sv.ByteTrack:
        """A fresh tracker (supervision 0.30's ByteTrack; it moves to ``trackers`` in 0.31)."""
        fps = max(self.fps, 1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return self._build(fps)

    def _build(self, fps: float) -> sv.ByteTrack:
        return sv.ByteTrack(
            track_activation_threshold=0.25,
            lost_track_buffer=max(1, round(self.lost_s * 30)),  # ByteTrack scales it by fps/30
            minimum_matching_threshold=1.0 - self.min_iou,
            frame_rate=fps,
            minimum_consecutive_frames=1,
        )


@dataclass
class CameraTracks:
    """One camera's tracker, line memories and zone membership (the recovery snapshot)."""

    tracker: Any
    geometry: tuple[Zone | Line, ...] = ()
    size: tuple[int, int] = (0, 0)
    lines: dict[str, Any] = field(default_factory=dict)
    polygons: dict[str, Any] = field(default_factory=dict)
    inside: dict[str, set[int]] = field(default_factory=dict)


def _detections(item: FrameObjects) -> sv.Detections:
    if not item.boxes:
        return sv.Detections.empty()
    xyxy = np.array([b.as_list() for b in item.boxes], dtype=float)
    return sv.Detections(
        xyxy=xyxy,
        confidence=np.full(len(item.boxes), 0.9),
        class_id=np.zeros(len(item.boxes), dtype=int),
    )


def _box(row: Any) -> Box:
    x1, y1, x2, y2 = (float(v) for v in row)
    return Box(x1=x1, y1=y1, x2=max(x1, x2), y2=max(y1, y2))


class _Logic(StatefulLogic[FrameObjects, ZoneEntered | LineCrossed, CameraTracks]):
    def __init__(
        self, shapes_for: ShapesFor, config: TrackerConfig, want: str, resume: CameraTracks | None
    ) -> None:
        self.shapes_for, self.want = shapes_for, want
        self.state = CameraTracks(config.tracker())
        if resume is not None:
            # supervision objects are not picklable as they are (ByteTrack's deprecation
            # wrapper, LineZone's lambda): snapshots carry their attributes / line memories,
            # restored into fresh objects built from the snapshot's geometry and frame size
            tracker = self.state.tracker
            tracker.__dict__.update(copy.deepcopy(resume.tracker))
            self.state = copy.deepcopy(resume)
            self.state.tracker = tracker
            memories, self.state.lines = self.state.lines, {}
            self._build()
            for name, (history, absent) in memories.items():
                if name in self.state.lines:
                    _restore_line(self.state.lines[name], history, absent)

    def _refresh(self, item: FrameObjects) -> None:
        st = self.state
        geometry = tuple(self.shapes_for(item.camera_id))
        size = (item.width, item.height)
        if geometry == st.geometry and size == st.size:
            return
        st.geometry, st.size = geometry, size
        self._build()

    def _build(self) -> None:
        st = self.state
        geometry, size = st.geometry, st.size
        st.lines = {
            ln.name: sv.LineZone(
                start=sv.Point(*ln.pixels(*size)[0]),
                end=sv.Point(*ln.pixels(*size)[1]),
                triggering_anchors=(_ANCHOR,),
                minimum_crossing_threshold=2,  # two frames on the new side: no jitter crossings
            )
            for ln in lines_of(list(geometry))
        }
        zones = zones_of(list(geometry))
        st.polygons = {
            z.name: sv.PolygonZone(z.pixels(*size), triggering_anchors=(_ANCHOR,)) for z in zones
        }
        st.inside = {z.name: st.inside.get(z.name, set()) for z in zones}

    def on_item(self, value: FrameObjects) -> tuple[Iterable[ZoneEntered | LineCrossed], bool]:
        self._refresh(value)
        st = self.state
        tracked = st.tracker.update_with_detections(_detections(value))
        ids = [int(t) for t in (tracked.tracker_id if tracked.tracker_id is not None else [])]
        boxes = {tid: _box(row) for tid, row in zip(ids, tracked.xyxy, strict=True)}
        city, cam, ts = value.city_id, value.camera_id, value.ts
        out: list[ZoneEntered | LineCrossed] = []
        if self.want == "zone":
            for name, poly in st.polygons.items():
                hits = poly.trigger(tracked) if ids else []
                now = {tid for tid, hit in zip(ids, hits, strict=True) if hit}
                for tid in sorted(now - st.inside[name]):
                    out.append(
                        ZoneEntered(
                            city_id=city, camera_id=cam, ts=ts, zone=name, track_id=tid,
                            box=boxes[tid], label=value.label,
                        )
                    )  # fmt: skip
                st.inside[name] = now
        else:
            for name, zone_line in st.lines.items():
                if not ids:
                    continue
                crossed_in, crossed_out = zone_line.trigger(tracked)
                for tid, cin, cout in zip(ids, crossed_in, crossed_out, strict=True):
                    if cin or cout:
                        out.append(
                            LineCrossed(
                                city_id=city, camera_id=cam, ts=ts, line=name,
                                direction="in" if cin else "out", track_id=tid,
                                box=boxes[tid], label=value.label,
                            )
                        )  # fmt: skip
        return out, StatefulLogic.RETAIN

    def snapshot(self) -> CameraTracks:
        st = self.state
        return CameraTracks(
            tracker=copy.deepcopy(st.tracker.__dict__),
            geometry=st.geometry,
            size=st.size,
            lines={name: _line_memory(lz) for name, lz in st.lines.items()},
            inside=copy.deepcopy(st.inside),
        )


def _line_memory(zone_line: Any) -> tuple[dict[int, list[bool]], dict[int, int]]:
    history = {int(k): list(v) for k, v in zone_line.crossing_state_history.items()}
    return history, dict(zone_line._tracker_frames_absent)


def _restore_line(zone_line: Any, history: dict[int, list[bool]], absent: dict[int, int]) -> None:
    for key, sides in history.items():
        zone_line.crossing_state_history[key].extend(sides)
    zone_line._tracker_frames_absent.update(absent)


def _camera_key(item: FrameObjects) -> str:
    return f"{item.city_id}/{item.camera_id}"


def _tracked(
    step_id: str, up: Stream[FrameObjects], shapes_for: ShapesFor, config: TrackerConfig, want: str
) -> Stream[Any]:
    keyed = op.key_on("by_camera", up, _camera_key)

    def build(resume: CameraTracks | None) -> _Logic:
        return _Logic(shapes_for, config, want, resume)

    return op.key_rm("unkey", op.stateful("track", keyed, build))


@operator
def zone_entries(
    step_id: str,
    up: Stream[FrameObjects],
    shapes_for: ShapesFor,
    config: TrackerConfig | None = None,
) -> Stream[ZoneEntered]:
    """One ``zone.entered`` per track entering one of its camera's zones."""
    return _tracked(step_id, up, shapes_for, config or TrackerConfig(), "zone")


@operator
def line_crossings(
    step_id: str,
    up: Stream[FrameObjects],
    shapes_for: ShapesFor,
    config: TrackerConfig | None = None,
) -> Stream[LineCrossed]:
    """One ``line.crossed`` per track crossing one of its camera's lines, with direction."""
    return _tracked(step_id, up, shapes_for, config or TrackerConfig(), "line")
