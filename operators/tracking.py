"""Objects per frame and their tracks: ByteTrack (``supervision``) per camera.

* :class:`FrameObjects`: the boxes seen in one analysed frame of one camera (motion blobs via
  :func:`motion_objects`, or any detector's boxes) -- light values, safe to key and exchange.
  Every analysed frame should come, also those without boxes, so tracks age out in time.
* :func:`track`: per camera, a ``StatefulLogic`` runs a ``supervision.ByteTrack`` tracker and
  emits :class:`TrackedObjects` (the tracked boxes with their track ids) for every frame. The
  tracker's state is the recovery snapshot, so a resumed replay tracks on with the same ids, and
  track ids are deterministic: the same frames give the same ids. Items that are already
  :class:`TrackedObjects` pass through unchanged.

One ``track`` step can feed several consumers (:mod:`gtvision.operators.zones`' zone entries
and line crossings): tracking is the expensive part (~0.7 ms per frame with one object).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bytewax.operators as op
import numpy as np
import supervision as sv
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulLogic

from gtvision.events import Box
from gtvision.operators.motion import MotionResult


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


@dataclass(frozen=True, slots=True)
class TrackedObjects:
    """The tracked boxes of one analysed frame of one camera, ``track_ids[i]`` for ``boxes[i]``."""

    city_id: int
    camera_id: int
    ts: datetime
    width: int
    height: int
    boxes: tuple[Box, ...] = ()
    track_ids: tuple[int, ...] = ()
    label: str = "motion"

    def detections(self) -> sv.Detections:
        """As ``supervision`` detections with tracker ids (for its zone and line tools)."""
        if not self.boxes:
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=np.array([b.as_list() for b in self.boxes], dtype=float),
            tracker_id=np.array(self.track_ids, dtype=int),
        )


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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return sv.ByteTrack(
                track_activation_threshold=0.25,
                lost_track_buffer=max(1, round(self.lost_s * 30)),  # scaled by fps/30 inside
                minimum_matching_threshold=1.0 - self.min_iou,
                frame_rate=max(self.fps, 1.0),
                minimum_consecutive_frames=1,
            )


def _box(row: Any) -> Box:
    x1, y1, x2, y2 = (float(v) for v in row)
    return Box(x1=x1, y1=y1, x2=max(x1, x2), y2=max(y1, y2))


class _TrackLogic(StatefulLogic[FrameObjects | TrackedObjects, TrackedObjects, dict[str, Any]]):
    def __init__(self, config: TrackerConfig, resume: dict[str, Any] | None) -> None:
        self.tracker = config.tracker()
        if resume is not None:
            # ByteTrack itself does not pickle (supervision's deprecation wrapper replaces the
            # class): snapshots are its attributes, restored into a fresh tracker
            self.tracker.__dict__.update(copy.deepcopy(resume))

    def on_item(
        self, value: FrameObjects | TrackedObjects
    ) -> tuple[Iterable[TrackedObjects], bool]:
        if isinstance(value, TrackedObjects):
            return [value], StatefulLogic.RETAIN
        found = sv.Detections.empty()
        if value.boxes:
            found = sv.Detections(
                xyxy=np.array([b.as_list() for b in value.boxes], dtype=float),
                confidence=np.full(len(value.boxes), 0.9),
                class_id=np.zeros(len(value.boxes), dtype=int),
            )
        got = self.tracker.update_with_detections(found)
        ids = tuple(int(t) for t in (got.tracker_id if got.tracker_id is not None else []))
        boxes = tuple(_box(row) for row in got.xyxy) if ids else ()
        out = TrackedObjects(
            value.city_id, value.camera_id, value.ts, value.width, value.height, boxes, ids,
            value.label,
        )  # fmt: skip
        return [out], StatefulLogic.RETAIN

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.tracker.__dict__)


def camera_key(item: FrameObjects | TrackedObjects) -> str:
    """``"<city>/<camera>"``: the key of per-camera steps."""
    return f"{item.city_id}/{item.camera_id}"


@operator
def track(
    step_id: str,
    up: Stream[FrameObjects] | Stream[TrackedObjects] | Stream[FrameObjects | TrackedObjects],
    config: TrackerConfig | None = None,
) -> Stream[TrackedObjects]:
    """Track each camera's objects with ByteTrack (already tracked items pass through)."""
    cfg = config or TrackerConfig()
    keyed = op.key_on("by_camera", up, camera_key)

    def build(resume: dict[str, Any] | None) -> _TrackLogic:
        return _TrackLogic(cfg, resume)

    return op.key_rm("unkey", op.stateful("track", keyed, build))
