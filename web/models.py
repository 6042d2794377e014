"""Request models (pydantic): every body and query the API accepts, validated per field."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from gtvision.operators.geometry import ZoneList
from gtvision.web.auth import Role
from gtvision.web.hub import check_stream_id
from gtvision.web.ssrf import UnsafeUrl, normalise

Name = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
OptName = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
Password = Field(min_length=1, max_length=1000)
Id = Field(default=None, ge=1, le=2**62)
PLATE_SEPARATORS = " -.·"


def normalise_plate_query(value: str) -> str:
    """A plate or plate pattern as typed → stored form: ``KLM-3907``, ``klm 3907`` → ``KLM3907``.

    Separators (space, ``-``, ``.``, ``·``) are dropped, letters upper-cased, the wildcards
    ``*`` and ``?`` kept. Raises ``ValueError`` when nothing is left.
    """
    text = "".join(ch for ch in value.upper() if ch not in PLATE_SEPARATORS)
    if not text:
        msg = f"plate {value!r} holds no letter, digit or wildcard"
        raise ValueError(msg)
    return text


# As printed or typed: letters, digits, wildcards and separators; normalised on validation.
PlateText = Annotated[
    str,
    Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9*? .·-]+$"),
    AfterValidator(normalise_plate_query),
]


#: the words a boolean query parameter takes (pydantic's own list)
FLAG_WORDS = frozenset({"true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"})


def _flag(value: object) -> object:
    """A boolean query parameter as typed; anything but :data:`FLAG_WORDS` names itself."""
    if isinstance(value, str) and value.strip().lower() not in FLAG_WORDS:
        msg = f"{value[:40]!r} is not a boolean: expected true or false"
        raise ValueError(msg)
    return value.strip() if isinstance(value, str) else value


# A boolean query flag whose error names the value given (``equivalent=maybe``).
Flag = Annotated[bool, BeforeValidator(_flag)]


def _timezone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {value!r}: expected an IANA name like 'America/Sao_Paulo'"
            raise ValueError(msg) from None
    return value


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoginIn(_In):
    """Username and password; ``cookie`` puts the refresh token in an HttpOnly cookie instead."""

    username: str = Name
    password: str = Password
    cookie: bool = False


class RefreshIn(_In):
    """A refresh token from ``/auth/login`` or ``/auth/refresh``; ``{}`` = the session cookie."""

    refresh_token: str | None = Field(default=None, min_length=10, max_length=200)


class CityIn(_In):
    """A city."""

    name: str = Name
    timezone: TimeZoneName = "America/Sao_Paulo"


class CityPatch(_In):
    """Fields of a city to change."""

    name: str | None = OptName
    timezone: TimeZoneName | None = None


class UserIn(_In):
    """A new user; ``city_id`` is required for every role but ``admin``."""

    username: str = Name
    password: str = Field(min_length=8, max_length=1000)
    role: Role
    city_id: int | None = Id


class UserPatch(_In):
    """Fields of a user to change."""

    password: str | None = Field(default=None, min_length=8, max_length=1000)
    role: Role | None = None
    disabled: bool | None = None


class CityQuery(_In):
    """Optional city filter (honoured for ``admin`` only; others always see their city)."""

    city_id: int | None = Id


def _stream_url(value: str) -> str:
    """The normal form of a stream URL (stored, checked and opened as is); see ``streamurl``."""
    try:
        return normalise(value)
    except UnsafeUrl as err:
        raise ValueError(str(err)) from None


# A camera stream URL: strict syntax, scheme and host lower-cased; the address check (DNS) is
# the route's. ``format: uri`` marks it for the security suite's URL-field matrix.
StreamUrl = Annotated[
    str,
    Field(min_length=8, max_length=2000, json_schema_extra={"format": "uri"}),
    AfterValidator(_stream_url),
]


class CameraIn(_In):
    """A camera. ``stream_url`` must be ``rtsp://`` or ``rtsps://``."""

    name: str = Name
    stream_url: StreamUrl
    city_id: int | None = Id
    enabled: bool = True
    lpr_enabled: bool = True
    motion_enabled: bool = True
    analysis_fps: float = Field(default=5.0, gt=0, le=60)
    retention_days: int = Field(default=30, ge=1, le=3650)
    zones: ZoneList = Field(
        default_factory=list,
        description="polygons {kind: zone} and directed lines {kind: line}, coordinates 0..1",
    )


class CameraPatch(_In):
    """Fields of a camera to change."""

    name: str | None = OptName
    stream_url: StreamUrl | None = None
    enabled: bool | None = None
    lpr_enabled: bool | None = None
    motion_enabled: bool | None = None
    analysis_fps: float | None = Field(default=None, gt=0, le=60)
    retention_days: int | None = Field(default=None, ge=1, le=3650)
    zones: ZoneList | None = None


class EventQuery(_In):
    """Filters of ``GET /events``: plate ``ABC1234`` exact, ``ABC*`` wildcard, fuzzy on demand.

    The plate is accepted as printed or typed (``KLM-3907``, ``klm 3907``). ``equivalent`` also
    finds the plate's other form (old ``ABC1234`` ↔ Mercosul ``ABC1C34``, one vehicle).
    ``acked`` filters alerts by acknowledgement; ``total`` adds the true number of matches
    (capped).
    """

    type: str | None = Field(default=None, min_length=1, max_length=64)
    camera_id: int | None = Id
    city_id: int | None = Id
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    plate: PlateText | None = None
    fuzzy: bool = False
    equivalent: Flag = Field(
        default=False,
        description="also match the plate's other form (old LLL9D99 <-> Mercosul LLL9L99)",
    )
    acked: bool | None = None
    total: bool = False
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, min_length=1, max_length=200)


class RecordingQuery(_In):
    """Filters of ``GET /recordings``: segments overlapping ``[since, until)``, newest first."""

    camera_id: int | None = Id
    city_id: int | None = Id
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, min_length=1, max_length=200)


class ExportIn(_In):
    """``POST /cameras/{id}/exports``: the range of recordings to join (aware times)."""

    start: AwareDatetime
    end: AwareDatetime


class HotlistIn(_In):
    """A hotlist entry."""

    pattern: PlateText
    kind: Literal["exact", "wildcard", "fuzzy"] = "exact"
    max_distance: float = Field(default=1.0, ge=0, le=8)
    priority: int = Field(default=0, ge=-1000, le=1000)
    reason: str = Field(default="", max_length=500)
    expires_at: AwareDatetime | None = None
    city_id: int | None = Id

    @field_validator("pattern")
    @classmethod
    def _short(cls, value: str) -> str:
        if len(value) > 16:
            msg = f"pattern {value!r} is longer than 16 characters"
            raise ValueError(msg)
        return value


class HotlistImportIn(_In):
    """A hotlist as CSV text, checked whole, then added in one transaction.

    Header ``pattern`` and optionally ``kind, max_distance, priority, reason, expires_at``.
    """

    csv: str = Field(min_length=1, max_length=1_000_000)
    city_id: int | None = Id
    replace: bool = False
    dry_run: bool = False


class HotlistPatch(_In):
    """Fields of a hotlist entry to change."""

    priority: int | None = Field(default=None, ge=-1000, le=1000)
    reason: str | None = Field(default=None, max_length=500)
    max_distance: float | None = Field(default=None, ge=0, le=8)
    expires_at: AwareDatetime | None = None


class ErasureIn(_In):
    """A plate whose stored data must be erased; ``city_id`` ``None`` = every city (admin).

    ``equivalent`` (default) erases the plate's other form too (old ``ABC1234`` ↔ Mercosul
    ``ABC1C34``: one vehicle).
    """

    plate: str = Field(  # at least one letter or digit: "-" alone names no plate
        min_length=1, max_length=16, pattern=r"^[A-Za-z0-9 ·-]*[A-Za-z0-9][A-Za-z0-9 ·-]*$"
    )
    city_id: int | None = Id
    reference: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f]*$")
    equivalent: bool = Field(
        default=True,
        description="also erase the plate's other form (old LLL9D99 <-> Mercosul LLL9L99, one "
        "vehicle: ABC1234 and ABC1C34); false = exactly the given text",
    )


class WebRtcOffer(_In):
    """A browser's SDP offer (``RTCPeerConnection.localDescription``)."""

    type: Literal["offer"] = "offer"
    sdp: str = Field(min_length=10, max_length=20_000)


class AckIn(_In):
    """Optional note of an alert acknowledgement (or a later note on an acknowledged alert)."""

    note: str = Field(default="", max_length=1000, pattern=r"^[^\x00]*$")


class StreamQuery(_In):
    """``GET /stream/events`` filters; ``city_id`` is required for ``admin`` only.

    ``last_event_id`` resumes like the ``Last-Event-ID`` header (which wins when both are
    given), for a client that must open a new ``EventSource`` (a new stream token).
    """

    types: str | None = Field(default=None, max_length=500)
    camera: int | None = Id
    city_id: int | None = Id
    last_event_id: Annotated[str, AfterValidator(check_stream_id)] | None = Field(
        default=None, max_length=40
    )


class AuditQuery(_In):
    """``GET /audit`` filters and keyset page."""

    city_id: int | None = Id
    action: str | None = Field(default=None, max_length=64)
    plate: PlateText | None = None  # searches of this plate or pattern (by keyed reference)
    before_id: int | None = Id
    limit: int = Field(default=100, ge=1, le=1000)
