"""Tracked objects in zones and across lines (``supervision``'s PolygonZone and LineZone).

Input: :class:`~gtvision.operators.tracking.TrackedObjects` from
:func:`~gtvision.operators.tracking.track` (one tracking step can feed both operators).

* :func:`zone_entries`: one :class:`~gtvision.events.ZoneEntered` when a track's anchor (bottom
  centre of its box) is inside a zone and was not on the track's previous frame (first seen
  inside counts as entering). A track missing from a frame that the tracker still holds (a
  missed detection, ``TrackedObjects.held``) stays inside: it does not enter again when it
  comes back.
* :func:`line_crossings`: one :class:`~gtvision.events.LineCrossed` per crossing of a line by a
  track's anchor, with its direction (see :class:`~gtvision.operators.geometry.Line`); the
  anchor must stay two frames on the new side (no crossings from jitter on the line).

Per camera a ``StatefulLogic`` keeps the zones' membership and the lines' per-track side
memory; both are in the recovery snapshots. Zones and lines are normalised; they are turned
into pixels of each camera's frame size, and rebuilt when the camera's geometry
(``shapes_for(camera_id)``) or frame size changes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bytewax.operators as op
import supervision as sv
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulLogic

from gtvision.events import LineCrossed, ZoneEntered
from gtvision.operators.geometry import Line, Zone, lines_of, zones_of
from gtvision.operators.tracking import TrackedObjects, camera_key

ShapesFor = Callable[[int], Sequence[Zone | Line]]
_ANCHOR = sv.Position.BOTTOM_CENTER


@dataclass
class CameraShapes:
    """One camera's zones/lines in pixels, line memories and zone membership (the snapshot)."""

    geometry: tuple[Zone | Line, ...] = ()
    size: tuple[int, int] = (0, 0)
    lines: dict[str, Any] = field(default_factory=dict)
    polygons: dict[str, Any] = field(default_factory=dict)
    inside: dict[str, set[int]] = field(default_factory=dict)


class _Logic(StatefulLogic[TrackedObjects, ZoneEntered | LineCrossed, CameraShapes]):
    def __init__(self, shapes_for: ShapesFor, want: str, resume: CameraShapes | None) -> None:
        self.shapes_for, self.want = shapes_for, want
        self.state = CameraShapes()
        if resume is not None:
            # LineZone does not pickle (a lambda inside): snapshots carry the line memories,
            # restored into fresh lines built from the snapshot's geometry and frame size
            self.state = copy.deepcopy(resume)
            memories, self.state.lines = self.state.lines, {}
            self._build()
            for name, (history, absent) in memories.items():
                if name in self.state.lines:
                    _restore_line(self.state.lines[name], history, absent)

    def _refresh(self, item: TrackedObjects) -> None:
        st = self.state
        geometry = tuple(self.shapes_for(item.camera_id))
        size = (item.width, item.height)
        if geometry == st.geometry and size == st.size:
            return
        st.geometry, st.size = geometry, size
        self._build()

    def _build(self) -> None:
        st = self.state
        geometry, size = list(st.geometry), st.size
        st.lines = {
            ln.name: sv.LineZone(
                start=sv.Point(*ln.pixels(*size)[0]),
                end=sv.Point(*ln.pixels(*size)[1]),
                triggering_anchors=(_ANCHOR,),
                minimum_crossing_threshold=2,  # two frames on the new side: no jitter crossings
            )
            for ln in lines_of(geometry)
        }
        zones = zones_of(geometry)
        st.polygons = {
            z.name: sv.PolygonZone(z.pixels(*size), triggering_anchors=(_ANCHOR,)) for z in zones
        }
        st.inside = {z.name: st.inside.get(z.name, set()) for z in zones}

    def on_item(self, value: TrackedObjects) -> tuple[Iterable[ZoneEntered | LineCrossed], bool]:
        self._refresh(value)
        st, ids, held = self.state, value.track_ids, set(value.held)
        found = value.detections()
        boxes = dict(zip(ids, value.boxes, strict=True))
        city, cam, ts = value.city_id, value.camera_id, value.ts
        out: list[ZoneEntered | LineCrossed] = []
        if self.want == "zone":
            for name, poly in st.polygons.items():
                hits = poly.trigger(found) if ids else []
                now = {tid for tid, hit in zip(ids, hits, strict=True) if hit}
                for tid in sorted(now - st.inside[name]):
                    out.append(
                        ZoneEntered(
                            city_id=city, camera_id=cam, ts=ts, zone=name, track_id=tid,
                            box=boxes[tid], label=value.label, plate=value.text_of(tid),
                        )
                    )  # fmt: skip
                st.inside[name] = now | (st.inside[name] & held)
        else:
            for name, zone_line in st.lines.items():
                if not ids:
                    continue
                crossed_in, crossed_out = zone_line.trigger(found)
                for tid, cin, cout in zip(ids, crossed_in, crossed_out, strict=True):
                    if cin or cout:
                        out.append(
                            LineCrossed(
                                city_id=city, camera_id=cam, ts=ts, line=name,
                                direction="in" if cin else "out", track_id=tid,
                                box=boxes[tid], label=value.label, plate=value.text_of(tid),
                            )
                        )  # fmt: skip
        return out, StatefulLogic.RETAIN

    def snapshot(self) -> CameraShapes:
        st = self.state
        return CameraShapes(
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


def _shaped(step_id: str, up: Stream[TrackedObjects], shapes_for: ShapesFor, want: str) -> Any:
    keyed = op.key_on("by_camera", up, camera_key)

    def build(resume: CameraShapes | None) -> _Logic:
        return _Logic(shapes_for, want, resume)

    return op.key_rm("unkey", op.stateful(want, keyed, build))


@operator
def zone_entries(
    step_id: str, up: Stream[TrackedObjects], shapes_for: ShapesFor
) -> Stream[ZoneEntered]:
    """One ``zone.entered`` per track entering one of its camera's zones."""
    entries: Stream[ZoneEntered] = _shaped(step_id, up, shapes_for, "zone")
    return entries


@operator
def line_crossings(
    step_id: str, up: Stream[TrackedObjects], shapes_for: ShapesFor
) -> Stream[LineCrossed]:
    """One ``line.crossed`` per track crossing one of its camera's lines, with direction."""
    crossings: Stream[LineCrossed] = _shaped(step_id, up, shapes_for, "line")
    return crossings
