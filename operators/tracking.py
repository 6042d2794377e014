"""Objects per frame and their tracks: ByteTrack (``supervision``) per camera.

* :class:`FrameObjects`: the boxes seen in one analysed frame of one camera (motion blobs via
  :func:`motion_objects`, plate boxes via :func:`plate_objects`, or any detector's boxes) --
  light values, safe to key and exchange. Every analysed frame should come, also those
  without boxes, so tracks age out in time.
* :func:`track`: per camera, a ``StatefulLogic`` runs a ``supervision.ByteTrack`` tracker and
  emits :class:`TrackedObjects` (the tracked boxes with their track ids) for every frame. The
  tracker's state is the recovery snapshot, so a resumed replay tracks on with the same ids, and
  track ids are deterministic: the same frames give the same ids. Items that are already
  :class:`TrackedObjects` pass through unchanged.

Objects labelled ``plate`` (:func:`plate_objects`, ``LprFront.plates``) are followed by their
text instead (:mod:`~gtvision.operators.platetracks`: plate boxes move too far between analysed
frames for box overlap); each tracked plate carries the most confident read of its track.

One ``track`` step can feed several consumers (:mod:`gtvision.operators.zones`' zone entries
and line crossings): tracking is the expensive part (~0.7 ms per frame with one object).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import bytewax.operators as op
import numpy as np
import supervision as sv
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulLogic

from gtvision.events import Box
from gtvision.operators.motion import MotionResult
from gtvision.operators.passes import PassConfig
from gtvision.operators.platetracks import PlateTracks

if TYPE_CHECKING:
    from gtvision.operators.lpr import FrameReads


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
    texts: tuple[str, ...] = ()
    """Text read in each box (plates), else empty."""
    scores: tuple[float, ...] = ()
    """Confidence of each text (the track keeps its most confident one)."""


@dataclass(frozen=True, slots=True)
class TrackedObjects:
    """The tracked boxes of one analysed frame of one camera, ``track_ids[i]`` for ``boxes[i]``.

    ``texts[i]``: the most confident text read on track ``track_ids[i]`` so far (plates; empty
    tuple for untexted objects). ``held``: tracks not seen in this frame that the tracker still
    keeps (a missed detection): zones keep them inside rather than count a new entry.
    """

    city_id: int
    camera_id: int
    ts: datetime
    width: int
    height: int
    boxes: tuple[Box, ...] = ()
    track_ids: tuple[int, ...] = ()
    label: str = "motion"
    texts: tuple[str, ...] = ()
    held: tuple[int, ...] = ()

    def text_of(self, track_id: int) -> str | None:
        """The text of ``track_id``'s box in this frame (``None`` without texts)."""
        if not self.texts:
            return None
        return self.texts[self.track_ids.index(track_id)] or None

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


PLATE = "plate"


def plate_objects(frame: FrameReads) -> FrameObjects:
    """The plate boxes of a frame read for plates (``LprFront.plates``), with their texts."""
    return FrameObjects(
        frame.city_id,
        frame.camera_id,
        frame.ts,
        frame.width,
        frame.height,
        tuple(r.box for r in frame.reads),
        PLATE,
        tuple(r.text for r in frame.reads),
        tuple(r.confidence for r in frame.reads),
    )


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How objects are tracked.

    ByteTrack: analysis rate, how long a lost track is kept, matching IoU. ``plates``: how
    plate boxes are followed (:mod:`~gtvision.operators.platetracks`, pass-grouping values).
    """

    fps: float = 5.0
    lost_s: float = 2.0
    min_iou: float = 0.1
    plates: PassConfig = field(default_factory=PassConfig)

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


_PLATES = "gtvision_plates"  # snapshot key of the plate tracks (beside ByteTrack's own state)


class _TrackLogic(StatefulLogic[FrameObjects | TrackedObjects, TrackedObjects, dict[str, Any]]):
    def __init__(self, config: TrackerConfig, resume: dict[str, Any] | None) -> None:
        self.config = config
        self.tracker = config.tracker()
        self.plates = PlateTracks()
        if resume is not None:
            # ByteTrack itself does not pickle (supervision's deprecation wrapper replaces the
            # class): snapshots are its attributes, restored into a fresh tracker
            state = copy.deepcopy(resume)
            self.plates = state.pop(_PLATES, None) or PlateTracks()
            self.tracker.__dict__.update(state)

    def _held(self, shown: tuple[int, ...]) -> tuple[int, ...]:
        """Tracks ByteTrack still keeps (lost: not matched in this frame) but did not show."""
        lost = getattr(self.tracker, "lost_tracks", [])
        kept = {int(t.external_track_id) for t in lost if t.external_track_id >= 0}
        return tuple(sorted(kept - set(shown)))

    def on_item(
        self, value: FrameObjects | TrackedObjects
    ) -> tuple[Iterable[TrackedObjects], bool]:
        if isinstance(value, TrackedObjects):
            return [value], StatefulLogic.RETAIN
        if value.label == PLATE:
            texts = value.texts or tuple("" for _ in value.boxes)
            ids, named, held = self.plates.update(
                value.ts.timestamp(), value.boxes, texts, value.scores, self.config.plates
            )
            out = TrackedObjects(
                value.city_id, value.camera_id, value.ts, value.width, value.height,
                value.boxes, ids, PLATE, named, held,
            )  # fmt: skip
            return [out], StatefulLogic.RETAIN
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
            value.label, (), self._held(ids),
        )  # fmt: skip
        return [out], StatefulLogic.RETAIN

    def snapshot(self) -> dict[str, Any]:
        state = copy.deepcopy(self.tracker.__dict__)
        state[_PLATES] = copy.deepcopy(self.plates)
        return state


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
