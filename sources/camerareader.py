"""One camera's reader thread: connect, decode, queue, reconnect, report health.

A :class:`CameraReader` connects with PyAV (TCP, 5 s open and 3 s read timeouts, the stream URL
pinned to the address the guard checked), decodes off the Bytewax thread into a small queue
that drops its *oldest* frame when the flow falls behind (counted in ``drops``), and reconnects
with capped exponential backoff and jitter. Health goes into the queue as ``CameraEvent``:
``camera.online`` (at the capture time of the connection's first frame, which anchors its frame
times), ``camera.offline`` with a reason once per outage. Every demuxed packet is tapped into
the camera's packet ring (:data:`gtvision.sinks.clips.RINGS`) for clips and recordings. The
shards of :class:`gtvision.sources.rtsp.RtspSource` own the readers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gtvision import logs, metrics
from gtvision.events import CameraEvent, Frame
from gtvision.sinks.backoff import Backoff
from gtvision.sinks.clips import RINGS
from gtvision.sources.cameras import CameraSpec
from gtvision.sources.decode import (
    OPEN_TIMEOUT,
    RTSP_OPTIONS,
    FrameClock,
    OfflineReason,
    RateLimiter,
    SourceItem,
    mask_url,
    offline_reason,
    pts_seconds,
    to_frame,
    url_problem,
)
from gtvision.sources.streamurl import UnsafeUrl, pin

if TYPE_CHECKING:
    import av.container

log = logging.getLogger(__name__)


def camera_event(
    spec: CameraSpec, kind: str, reason: str = "", detail: str = "", ts: datetime | None = None
) -> CameraEvent:
    """A health event of ``spec`` at ``ts`` (default: the current wall-clock time)."""
    return CameraEvent.model_validate(
        {
            "type": kind,
            "city_id": spec.city_id,
            "camera_id": spec.camera_id,
            "ts": ts or datetime.now(UTC),
            "reason": reason,
            "detail": detail,
            "name": spec.name,
        }
    )


class CameraReader:
    """Reader thread of one camera: connect, decode, queue, reconnect."""

    def __init__(
        self, spec: CameraSpec, *, queue_size: int = 4, reconnect_cap_s: float = 30.0
    ) -> None:
        self.spec = spec
        self.drops = 0
        self.frames = 0
        self.online = False
        self.last_packet = time.monotonic()
        self.stalled_reported = False
        self._items: deque[SourceItem] = deque()
        self._queued_frames = 0
        self._max_frames = queue_size
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._backoff = Backoff(base_s=0.5, cap_s=reconnect_cap_s)
        self._last_reason: str | None = None
        self._label = str(spec.camera_id)
        self._thread = threading.Thread(
            target=self._run, name=f"rtsp-{spec.camera_id}", daemon=True
        )

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop (it exits at the next packet or timeout)."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        """Whether the thread still runs."""
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        """Wait for the thread."""
        self._thread.join(timeout)

    def push(self, item: SourceItem) -> None:
        """Queue an item; a frame beyond the queue size evicts the oldest queued frame."""
        with self._lock:
            if isinstance(item, Frame):
                if self._queued_frames >= self._max_frames:
                    for i, old in enumerate(self._items):
                        if isinstance(old, Frame):
                            del self._items[i]
                            self._queued_frames -= 1
                            self.drops += 1
                            metrics.FRAMES_DROPPED.labels(self._label).inc()
                            break
                self._queued_frames += 1
            self._items.append(item)

    def drain(self) -> list[SourceItem]:
        """Take everything queued, in order."""
        with self._lock:
            out = list(self._items)
            self._items.clear()
            self._queued_frames = 0
        return out

    def _offline(self, reason: OfflineReason, detail: str) -> None:
        detail = mask_url(detail)  # the URL opened may be the pinned one, not spec.url
        was_online, self.online = self.online, False
        metrics.ONLINE.labels(self._label).set(0)
        if was_online or reason != self._last_reason:
            metrics.OFFLINE.labels(self._label, reason).inc()
            log.warning("camera %s offline (%s): %s", self.spec.camera_id, reason, detail)
            self.push(camera_event(self.spec, "camera.offline", reason, detail))
        self._last_reason = reason

    def _run(self) -> None:
        logs.CAMERA_ID.set(self.spec.camera_id)  # this thread's log lines name the camera
        logs.CITY_ID.set(self.spec.city_id)
        first = True
        while not self._stop.is_set():
            if not first:
                metrics.RECONNECTS.labels(self._label).inc()
            first = False
            try:
                reason, detail = self._session()
            except Exception as err:  # never let one camera's thread die silently
                log.exception("camera %s reader failed", self.spec.camera_id)
                reason, detail = "error", f"{type(err).__name__}: {err}"
            if self._stop.is_set():
                break
            self._offline(reason, detail)
            self._stop.wait(self._backoff.next())

    def _session(self) -> tuple[OfflineReason, str]:
        """One connection: returns why it ended."""
        import av

        problem = url_problem(self.spec.url)
        if problem is not None:
            return "bad_url", problem
        url = self.spec.url
        if self.spec.allow is not None:  # resolve and check now, open the checked address
            try:
                url = pin(url, self.spec.allow)
            except UnsafeUrl as err:
                return "bad_url", str(err)
        t0 = time.monotonic()
        try:
            container = av.open(url, options=dict(RTSP_OPTIONS), timeout=OPEN_TIMEOUT)
        except Exception as err:
            return offline_reason(err, time.monotonic() - t0)
        self.last_packet = time.monotonic()  # the read timeout counts from the open
        try:
            return self._decode(container)
        except Exception as err:
            return offline_reason(err, idle_s=time.monotonic() - self.last_packet)
        finally:
            container.close()

    def _decode(self, container: av.container.InputContainer) -> tuple[OfflineReason, str]:
        spec = self.spec
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if spec.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        rate = float(stream.average_rate or 0) or 25.0
        clock, limiter = FrameClock(max_drift_s=5.0), RateLimiter(spec.analysis_fps)
        index = 0
        ring = RINGS.ring(spec.camera_id)
        ring.reset(stream, spec.city_id)
        for packet in container.demux(stream):
            if self._stop.is_set():
                return "removed", "reader stopped"
            self.last_packet = time.monotonic()
            if packet.size == 0:
                continue
            ring.push(packet)
            for vf in packet.decode():
                pts = pts_seconds(vf, index, rate)
                ts = clock.ts(pts)
                if not self.online:
                    self.online, self.stalled_reported, self._last_reason = True, False, None
                    self._backoff.reset()
                    metrics.ONLINE.labels(self._label).set(1)
                    # at the capture time of the connection's first frame: the anchor of its
                    # frame times (a replay started there reproduces them, see sources/multifile)
                    self.push(camera_event(spec, "camera.online", ts=ts))
                index += 1
                if not limiter.keep(pts):
                    continue
                self.frames += 1
                metrics.FRAMES_READ.labels(self._label).inc()
                kw = {"city_id": spec.city_id, "camera_id": spec.camera_id, "index": index}
                self.push(to_frame(vf, ts=ts, pts_s=pts, **kw))
        return "server_gone", "the stream ended (publisher or server gone)"
