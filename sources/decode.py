"""Decoding helpers shared by the file and RTSP sources.

* :func:`to_frame` wraps a decoded ``av.VideoFrame`` in a :class:`~gtvision.events.Frame`, reading
  the luma plane straight from the decoder buffer (a strided view, no copy, no colour conversion).
* :class:`FrameClock` turns presentation timestamps into aware UTC capture times. The rule:
  ``ts = anchor + (pts - first_pts)``. Live streams anchor at the wall clock when the first frame
  of a connection is decoded (and re-anchor on reconnect or when PTS and wall clock drift apart by
  more than ``max_drift_s``); files anchor at a fixed instant (the container's ``creation_time``,
  else an explicit start, else 1970-01-01T00:00:00Z) so replays give identical event times and ids.
* :class:`RateLimiter` caps the analysis rate per camera (frames closer than one period to the last
  kept frame are dropped before they reach the flow).
* :func:`offline_reason` maps the errors PyAV raises on connect or read to the reasons carried by
  ``camera.offline`` events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, cast

import numpy as np

from gtvision.events import CameraEvent, Frame
from gtvision.logs import redact as _mask_url
from gtvision.sources.streamurl import UnsafeUrl, split

if TYPE_CHECKING:
    import av

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# no "fflags=nobuffer": it drops the packets read while probing, i.e. the connection's first
# keyframe, and the reader would lose the whole first GOP (and its first frame's time)
RTSP_OPTIONS: dict[str, str] = {
    "rtsp_transport": "tcp",
    "probesize": "32",
    "analyzeduration": "0",
}
OPEN_TIMEOUT: tuple[float, float] = (5.0, 3.0)
_Y_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12", "nv21"})

SourceItem = Frame | CameraEvent
"""What every gtvision source emits: decoded frames and camera health events, in order."""


class FrameAnalyzer(Protocol):
    """Per-partition frame analysis run by a source as it emits each frame.

    Its state is part of the partition's recovery snapshot, taken with the position the
    partition resumes from, so a resumed flow continues with exactly the state it had (e.g. the
    motion background of :class:`gtvision.operators.motion.MotionAnalyzer`).
    """

    def __call__(self, frame: Frame) -> Frame:
        """``frame`` with the analysis attached (``Frame.analysis``)."""

    def snapshot(self) -> object:
        """Picklable state (copied: later frames must not change it)."""

    def restore(self, state: object) -> None:
        """Continue from a :meth:`snapshot`."""

    def forget(self, camera_id: int) -> None:
        """Drop the state of a removed camera."""


AnalyzerFactory = Callable[[], FrameAnalyzer]
"""Makes one analyzer per source partition (attached with ``attach_analyzer``)."""

OfflineReason = Literal[
    "timeout", "refused", "auth", "bad_url", "not_found", "server_gone", "error", "removed"
]


def luma(frame: av.VideoFrame) -> np.ndarray[tuple[int, int], np.dtype[np.uint8]]:
    """The Y plane of ``frame`` as an H×W uint8 view of the decoder buffer (no copy)."""
    if frame.format.name not in _Y_FIRST:
        return cast(
            "np.ndarray[tuple[int, int], np.dtype[np.uint8]]", frame.to_ndarray(format="gray")
        )
    plane = frame.planes[0]
    buf = np.frombuffer(plane, dtype=np.uint8)  # type: ignore[call-overload]
    rows = buf.reshape(frame.height, plane.line_size)
    view: np.ndarray[tuple[int, int], np.dtype[np.uint8]] = rows[:, : frame.width]
    return view


def to_frame(
    frame: av.VideoFrame, *, city_id: int, camera_id: int, index: int, ts: datetime, pts_s: float
) -> Frame:
    """A gtvision :class:`Frame` over the decoder frame (``picture()`` converts lazily)."""
    return Frame(
        city_id=city_id,
        camera_id=camera_id,
        index=index,
        ts=ts,
        gray=luma(frame),
        width=frame.width,
        height=frame.height,
        keyframe=bool(frame.key_frame),
        pts_seconds=pts_s,
        source=frame,
    )


def pts_seconds(frame: av.VideoFrame, fallback_index: int, fps: float) -> float:
    """Presentation time in seconds (frame index ÷ rate when the stream carries no PTS)."""
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return fallback_index / fps if fps > 0 else float(fallback_index)


@dataclass(slots=True)
class FrameClock:
    """``ts = anchor + (pts - first_pts)``; ``anchor=None`` means "wall clock at first frame"."""

    anchor: datetime | None = None
    max_drift_s: float | None = None
    _first_pts: float | None = None
    _anchor: datetime | None = None

    def reset(self) -> None:
        """Forget the first PTS (a new connection starts a new timeline)."""
        self._first_pts = None
        self._anchor = None

    def ts(self, pts_s: float, now: datetime | None = None) -> datetime:
        """Capture time of a frame presented at ``pts_s`` seconds."""
        if self._first_pts is None or self._anchor is None or pts_s < self._first_pts:
            self._first_pts = pts_s
            self._anchor = self.anchor or now or datetime.now(UTC)
        ts = self._anchor + timedelta(seconds=pts_s - self._first_pts)
        if self.max_drift_s is not None:
            wall = now or datetime.now(UTC)
            if abs((wall - ts).total_seconds()) > self.max_drift_s:
                self._first_pts, self._anchor = pts_s, wall
                ts = wall
        return ts


@dataclass(slots=True)
class RateLimiter:
    """Keep at most ``fps`` frames per second of presentation time (``fps <= 0``: keep all)."""

    fps: float
    _last: float | None = None

    def keep(self, pts_s: float) -> bool:
        """Whether the frame at ``pts_s`` is due (a 5% tolerance absorbs PTS jitter)."""
        if self.fps <= 0:
            return True
        if self._last is not None and pts_s >= self._last and pts_s - self._last < 0.95 / self.fps:
            return False
        self._last = pts_s
        return True

    def reset(self) -> None:
        """Start afresh (new connection)."""
        self._last = None


def creation_time(metadata: dict[str, str]) -> datetime | None:
    """The container's ``creation_time`` tag as aware UTC, if present and parseable."""
    raw = metadata.get("creation_time", "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def mask_url(url: str) -> str:
    """``url`` (or any text) with every URL password replaced by ``***``."""
    return _mask_url(url)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a camera stream URL (``None`` when it is valid; see streamurl)."""
    try:
        split(url)
    except UnsafeUrl as err:
        return str(err)
    return None


def offline_reason(
    err: BaseException, elapsed_s: float = 0.0, *, idle_s: float = 0.0
) -> tuple[OfflineReason, str]:
    """Map a connect/read error to a ``camera.offline`` reason and a one-line detail.

    ``elapsed_s`` is how long the failing open took: failures at the open timeout are timeouts.
    ``idle_s`` is how long a reading connection had gone without a packet when it failed:
    failures at the read timeout are timeouts, whatever error code the demuxer turned the
    interrupt into (FFmpeg's RTSP demuxer reports a frozen server as ``EIO`` or ``EOF``, not
    only as ``ETIMEDOUT``/``EXIT``).
    """
    import av.error

    detail = f"{type(err).__name__}: {err}".strip()[:300]
    reason: OfflineReason
    if isinstance(err, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        reason = "auth"
    elif isinstance(err, av.error.HTTPNotFoundError):
        reason = "not_found"
    elif isinstance(err, av.error.ConnectionRefusedError | ConnectionRefusedError):
        reason = "refused"
    elif isinstance(err, av.error.TimeoutError | av.error.ExitError | TimeoutError):
        reason = "timeout"
    elif isinstance(
        err,
        av.error.ProtocolNotFoundError
        | av.error.InvalidDataError
        | av.error.HTTPBadRequestError
        | av.error.ArgumentError
        | ValueError,
    ):
        reason = "bad_url"
    elif isinstance(err, av.error.ConnectionResetError | av.error.EOFError | ConnectionError):
        reason = "server_gone"
    else:
        reason = "error"
    if reason in {"bad_url", "error"} and elapsed_s >= OPEN_TIMEOUT[0] * 0.9:
        # a server that accepts but never answers ends as "invalid data" after the timeout
        reason = "timeout"
    if reason in {"bad_url", "error", "server_gone"} and idle_s >= OPEN_TIMEOUT[1] * 0.9:
        reason = "timeout"  # no packet for the read timeout: the interrupt ended the read
    return reason, detail
