"""Typed domain events shared by every stage of the dataflow.

Each event is a frozen, validated pydantic model with:

* a deterministic ``id`` (UUID5 over the event type and its identity fields), so a replay of the
  same input yields the same ids and idempotent sinks absorb re-emitted events;
* ``city_id`` and ``camera_id``;
* timezone-aware UTC times (naive datetimes are rejected, other zones converted to UTC);
* a ``schema_version``;
* a JSON round-trip: ``parse_event(e.to_json()) == e``.

``Frame`` is the exception: it carries pixels, lives in memory only and never becomes JSON.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

SCHEMA_VERSION = 1
EVENT_NAMESPACE = uuid.UUID("6f1c7a52-4d2b-4c1e-9a51-2b7d3f0e9c11")


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Confidence = Annotated[float, Field(ge=0.0, le=1.0)]


def _fmt(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return str(value)


def deterministic_id(event_type: str, *parts: object) -> str:
    """Return the UUID5 of ``event_type`` and ``parts`` (same input, same id)."""
    name = "|".join([event_type, *(_fmt(p) for p in parts)])
    return str(uuid.uuid5(EVENT_NAMESPACE, name))


class Box(BaseModel):
    """Axis-aligned box in pixels of the full-resolution frame: ``x1 <= x2``, ``y1 <= y2``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x1: float
    y1: float
    x2: float
    y2: float

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if self.x2 < self.x1 or self.y2 < self.y1:
            msg = f"box corners out of order: ({self.x1}, {self.y1}, {self.x2}, {self.y2})"
            raise ValueError(msg)
        return self

    @property
    def area(self) -> float:
        """Area in square pixels."""
        return (self.x2 - self.x1) * (self.y2 - self.y1)

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0 when disjoint)."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def union(self, other: Box) -> Box:
        """Smallest box holding both boxes."""
        return Box(
            x1=min(self.x1, other.x1),
            y1=min(self.y1, other.y1),
            x2=max(self.x2, other.x2),
            y2=max(self.y2, other.y2),
        )

    def as_list(self) -> list[float]:
        """``[x1, y1, x2, y2]``."""
        return [self.x1, self.y1, self.x2, self.y2]


class PlateCandidate(BaseModel):
    """One reading hypothesis of a plate with per-character confidences."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    confidence: Confidence
    char_confidences: tuple[Confidence, ...] = ()


class EventBase(BaseModel):
    """Fields every domain event carries. Subclasses name their identity fields."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )
    identity: ClassVar[tuple[str, ...]] = ()

    id: str = ""
    type: str
    schema_version: int = SCHEMA_VERSION
    city_id: int = Field(ge=0)
    camera_id: int = Field(ge=0)
    ts: UtcDatetime

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse an event class whose ids could collide: it must name its identity fields."""
        super().__pydantic_init_subclass__(**kwargs)
        example = "identity: ClassVar[tuple[str, ...]] = ('ts',)"
        if not cls.identity:
            msg = (
                f"event class {cls.__name__} has no identity: add {example} naming the fields "
                "that tell two of its events apart (the id is the UUID5 of the type, city, "
                "camera and these fields; without them every event of a camera gets the same "
                "id and the sinks keep only the first)"
            )
            raise TypeError(msg)
        unknown = [name for name in cls.identity if name not in cls.model_fields]
        if unknown:
            fields = ", ".join(sorted(cls.model_fields))
            msg = (
                f"event class {cls.__name__}: identity names {unknown!r}, which are not fields "
                f"(fields: {fields})"
            )
            raise TypeError(msg)

    @model_validator(mode="after")
    def _fill_id(self) -> EventBase:
        if not self.id:
            parts = [getattr(self, name) for name in ("city_id", "camera_id", *self.identity)]
            object.__setattr__(self, "id", deterministic_id(self.type, *parts))
        return self

    def to_json(self) -> str:
        """Serialise to compact JSON (the wire format of RabbitMQ, SSE and ``--jsonl``)."""
        return self.model_dump_json()


class Detection(EventBase):
    """One object found by a detector in one frame."""

    identity: ClassVar[tuple[str, ...]] = ("ts", "frame_index", "label", "box")
    type: Literal["detection"] = "detection"
    frame_index: int = Field(ge=0)
    label: str
    confidence: Confidence
    box: Box
    model: str = ""


class PlateRead(EventBase):
    """One plate read in one frame: detector box plus OCR text after plate rules."""

    identity: ClassVar[tuple[str, ...]] = ("ts", "frame_index", "box")
    type: Literal["plate.read"] = "plate.read"
    frame_index: int = Field(ge=0)
    text: str
    confidence: Confidence
    detector_confidence: Confidence = 0.0
    box: Box
    candidates: tuple[PlateCandidate, ...] = ()
    crop_jpeg: bytes | None = None
    models: dict[str, str] = Field(default_factory=dict)
    frame_size: tuple[int, int] | None = None
    """Width and height of the frame ``box`` is in."""


class PlatePass(EventBase):
    """One vehicle pass on one camera (``lpr.detected``): many reads voted into one plate.

    Identity: camera, ``first_seen`` and ``plate`` -- two vehicles first seen in the same frame
    are two events; a replay of the same video votes the same plate, so ids repeat.
    """

    identity: ClassVar[tuple[str, ...]] = ("first_seen", "plate")
    type: Literal["lpr.detected"] = "lpr.detected"
    plate: str
    confidence: Confidence
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    reads: int = Field(ge=1)
    box: Box | None = None
    candidates: tuple[PlateCandidate, ...] = ()
    crop_jpeg: bytes | None = None
    crop_key: str | None = None
    clip_key: str | None = None
    models: dict[str, str] = Field(default_factory=dict)
    first_box: Box | None = None
    last_box: Box | None = None
    frame_size: tuple[int, int] | None = None
    """Width and height of the frames the boxes are in."""
    direction: Literal["in", "out", "toward", "away"] | None = None
    """When the camera has a line: ``in``/``out`` if the plate crossed it during the pass, else
    ``toward``/``away`` (the plate grew or shrank in the picture); ``None`` without a line."""


class MotionIncident(EventBase):
    """A span of motion on one camera (``motion.incident``)."""

    identity: ClassVar[tuple[str, ...]] = ("start",)
    type: Literal["motion.incident"] = "motion.incident"
    start: UtcDatetime
    end: UtcDatetime
    peak_score: Confidence
    box: Box | None = None
    frames: int = Field(default=0, ge=0)
    clip_key: str | None = None


class HotlistMatch(BaseModel):
    """The hotlist entry an alert matched and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry_id: int
    pattern: str
    kind: Literal["exact", "wildcard", "fuzzy"]
    distance: float = 0.0
    priority: int = 0
    reason: str = ""
    #: Brazilian form of the plate as read: ``old`` (LLL9999), ``mercosul`` (LLL9L99) or null
    plate_form: Literal["old", "mercosul"] | None = None
    #: the entry matched the read plate's other form (old ↔ Mercosul, one vehicle)
    equivalent: bool = False


class Alert(EventBase):
    """A plate pass that matched a hotlist entry (``alert.triggered``)."""

    identity: ClassVar[tuple[str, ...]] = ("pass_id", "match")
    type: Literal["alert.triggered"] = "alert.triggered"
    pass_id: str
    plate: str
    match: HotlistMatch
    crop_key: str | None = None


class AlertAcknowledged(EventBase):
    """An operator acknowledged an alert, or added a note to it (``alert.acknowledged``).

    Written by the web API with the acknowledgement (outbox, so RabbitMQ gets it) and put on
    the city's live feed, so every open console marks the alert at once. ``action`` is ``ack``
    for the first acknowledgement (it sets the alert's who/when) and ``note`` for a later note;
    ``entry`` numbers the alert's acknowledgement history; ``ts`` is when it was written.
    """

    identity: ClassVar[tuple[str, ...]] = ("alert_id", "entry")
    type: Literal["alert.acknowledged"] = "alert.acknowledged"
    alert_id: str
    action: Literal["ack", "note"]
    entry: int = Field(ge=0)
    user_id: int = Field(ge=0)
    username: str
    note: str = ""


class ZoneEntered(EventBase):
    """A tracked object entered a zone of the camera picture (``zone.entered``).

    ``track_id`` is the tracker's id of the object on this camera (ByteTrack, deterministic for
    the same frames); ``box`` is where it was, in pixels of the frame, when it entered.
    ``label`` says what was tracked (``motion``, ``plate``, your detector's label); for plate
    boxes (``LprFront.plates``) ``plate`` is the most confident read of the track so far.
    """

    identity: ClassVar[tuple[str, ...]] = ("ts", "zone", "track_id")
    type: Literal["zone.entered"] = "zone.entered"
    zone: str
    track_id: int = Field(ge=0)
    box: Box
    label: str = ""
    plate: str | None = None


class LineCrossed(EventBase):
    """A tracked object crossed a directed line of the camera picture (``line.crossed``).

    ``direction`` is ``in`` (from the right-hand side of the line, looking from its first point
    to its second, to the left-hand side) or ``out`` (the other way). ``plate``: as in
    ``zone.entered``, for plate boxes.
    """

    identity: ClassVar[tuple[str, ...]] = ("ts", "line", "track_id")
    type: Literal["line.crossed"] = "line.crossed"
    line: str
    direction: Literal["in", "out"]
    track_id: int = Field(ge=0)
    box: Box
    label: str = ""
    plate: str | None = None


class PlateSighting(BaseModel):
    """One camera's pass of a plate, as part of a trajectory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    camera_id: int = Field(ge=0)
    ts: UtcDatetime
    plate: str
    pass_id: str


class PlateTrajectory(EventBase):
    """A plate seen at several cameras of a city within a time window (``plate.trajectory``).

    ``rule`` names the rule that matched (``A then B within T`` or ``N cameras within T``);
    ``sightings`` are the passes, in time order. ``camera_id`` and ``ts`` are the last
    sighting's (when the trajectory was complete); ``plate`` is the plate's canonical key
    (the Mercosul form of an old plate), so old and Mercosul reads of one car join.
    """

    identity: ClassVar[tuple[str, ...]] = ("rule", "plate", "first_pass")
    type: Literal["plate.trajectory"] = "plate.trajectory"
    rule: str
    plate: str
    first_pass: str
    sightings: tuple[PlateSighting, ...] = Field(min_length=2)


CameraEventType = Literal[
    "camera.created", "camera.deleted", "camera.online", "camera.offline", "camera.stalled"
]


class CameraEvent(EventBase):
    """Camera lifecycle and health (``camera.created|deleted|online|offline|stalled``)."""

    identity: ClassVar[tuple[str, ...]] = ("ts", "reason")
    type: CameraEventType
    reason: str = ""
    detail: str = ""
    name: str = ""


class RecordingEvent(EventBase):
    """A recording segment started or stopped (``recording.started|stopped``)."""

    identity: ClassVar[tuple[str, ...]] = ("recording_id",)
    type: Literal["recording.started", "recording.stopped"]
    recording_id: str
    object_key: str | None = None
    started_at: UtcDatetime
    ended_at: UtcDatetime | None = None


Event = Annotated[
    Detection
    | PlateRead
    | PlatePass
    | MotionIncident
    | Alert
    | AlertAcknowledged
    | CameraEvent
    | RecordingEvent
    | ZoneEntered
    | LineCrossed
    | PlateTrajectory,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Parse JSON text or a decoded mapping into the typed event named by its ``type``."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """A decoded video frame, in memory only (never JSON, never pickled across workers).

    ``gray`` is the luma plane (H×W uint8), read straight from the decoder's Y plane.
    ``bgr`` is the full-resolution colour picture, produced lazily by ``picture()`` where the
    source gave a decoder frame (``av.VideoFrame``) instead of pixels.
    """

    city_id: int
    camera_id: int
    index: int
    ts: datetime
    gray: NDArray[np.uint8]
    width: int
    height: int
    keyframe: bool = False
    pts_seconds: float = 0.0
    source: Any = field(default=None, repr=False)
    analysis: Any = field(default=None, repr=False)
    """What the source's frame analyzer computed for this frame (e.g. its ``MotionResult``)."""

    def __post_init__(self) -> None:
        """Reject naive times: every time in gtvision is aware UTC."""
        if self.ts.tzinfo is None:
            msg = f"Frame.ts must be timezone-aware, got naive {self.ts!r}"
            raise ValueError(msg)

    def picture(self) -> NDArray[np.uint8]:
        """Full-resolution BGR picture (H×W×3 uint8)."""
        src = self.source
        if src is None:
            return np.repeat(self.gray[:, :, None], 3, axis=2)
        if isinstance(src, np.ndarray):
            return src
        arr: NDArray[np.uint8] = src.to_ndarray(format="bgr24")
        return arr

    def __reduce__(self) -> tuple[Any, ...]:
        """Refuse pickling: full-resolution frames must stay on the worker that decoded them."""
        msg = (
            f"Frame of camera {self.camera_id} (index {self.index}) must not be pickled: "
            "keep frame steps on the source worker and exchange only light events"
        )
        raise TypeError(msg)
