"""``RtspSource``: live frames and camera health from RTSP cameras.

Partitions are fixed **shards** (``cameras-K-of-N``); camera ``c`` belongs to shard
``c mod N``. Each shard partition polls the :class:`~gtvision.sources.cameras.CameraDirectory`
(the ``cameras`` table) every ``poll_s`` seconds on a watcher thread and starts or stops one
reader thread per camera, so cameras added or removed through the API reach a running flow
within ``poll_s`` + connect time, without a restart and without touching other cameras (their
readers, detectors and keyed state stay as they are). With one shard per worker every worker
reads its share of the cameras.

A camera reader (:class:`CameraReader`) connects with PyAV (TCP, no probing, 5 s open and 3 s
read timeouts), decodes off the Bytewax thread into a small queue that drops its *oldest* frame
when the flow falls behind (counted in ``drops``), and reconnects with capped exponential
backoff and jitter. Health goes into the flow as ``CameraEvent``: ``camera.online`` (at the
capture time of the connection's first frame, which anchors its frame times) on the first
frame of a connection, ``camera.offline`` with a reason (``timeout``, ``refused``, ``auth``,
``bad_url``, ``not_found``, ``server_gone``, ``error``, ``removed``) once per outage, and
``camera.stalled`` when a connected camera sends nothing for ``stall_s``. The decode iterator
ending is a lost connection (``server_gone``), never an end of stream.

Every demuxed video packet is also tapped into the camera's packet ring
(:data:`gtvision.sinks.clips.RINGS`) for event clips; a removed camera's ring is dropped. An
attached frame analyzer (``attach_analyzer``, e.g. motion detection) runs on the frames a shard
emits; its per-camera state is the shard's recovery snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from gtvision import logs, metrics
from gtvision.events import CameraEvent, Frame
from gtvision.sinks.backoff import Backoff
from gtvision.sinks.clips import RINGS
from gtvision.sources.cameras import CameraDirectory, CameraRegistry, CameraSpec
from gtvision.sources.decode import (
    OPEN_TIMEOUT,
    RTSP_OPTIONS,
    AnalyzerFactory,
    FrameAnalyzer,
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
_POLL_MS = 20  # idle poll period of a shard (each Bytewax wake-up costs CPU)
_EMPTY_POLL_MS = 250  # poll period of a shard without cameras (the camera table is polled in s)


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
        try:
            return self._decode(container)
        except Exception as err:
            return offline_reason(err)
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


def _connection(spec: CameraSpec) -> tuple[str, float, bool]:
    """What a reader's connection depends on (a change restarts the reader)."""
    return spec.url, spec.analysis_fps, spec.keyframes_only


class _ShardPartition(StatefulSourcePartition[SourceItem, object]):
    def __init__(self, src: RtspSource, shard: int, resume: object) -> None:
        self._src, self._shard = src, shard
        self._analyzer: FrameAnalyzer | None = src.analyzer() if src.analyzer else None
        if self._analyzer is not None and resume is not None:
            self._analyzer.restore(resume)
        self._readers: dict[int, CameraReader] = {}
        self._wanted: dict[int, CameraSpec] = {}
        self._version = 0
        self._applied = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._empty = True
        self._ended = False
        self._poll()
        self._watcher = threading.Thread(
            target=self._watch, name=f"cameras-shard-{shard}", daemon=True
        )
        self._watcher.start()

    def _poll(self) -> None:
        try:
            specs = self._src.directory.cameras()
        except Exception as err:
            log.warning("cannot list cameras (keeping the current set): %s", err)
            return
        mine = {s.camera_id: s for s in specs if s.camera_id % self._src.shards == self._shard}
        self._src.registry.update(list(mine.values()))
        with self._lock:
            if mine != self._wanted:
                self._wanted, self._version = mine, self._version + 1

    def _watch(self) -> None:
        while not self._stop.wait(self._src.poll_s):
            self._poll()

    def _reconcile(self) -> list[SourceItem]:
        with self._lock:
            if self._version == self._applied:
                return []
            wanted, self._applied = dict(self._wanted), self._version
        out: list[SourceItem] = []
        for cam_id, reader in list(self._readers.items()):
            new = wanted.get(cam_id)
            if new is not None and _connection(new) == _connection(reader.spec):
                reader.spec = new  # masks/motion/name edits need no reconnect
                continue
            if new != reader.spec:
                reader.stop()
                del self._readers[cam_id]
                out.extend(self._drain(reader))  # analysed before a removal forgets the camera
                if cam_id not in wanted:
                    self._src.registry.remove(cam_id)
                    RINGS.drop(cam_id)
                    if self._analyzer is not None:
                        self._analyzer.forget(cam_id)
                    metrics.forget_camera(cam_id)
                    out.append(camera_event(reader.spec, "camera.offline", "removed"))
                    log.info("camera %s removed", cam_id)
        for cam_id, spec in wanted.items():
            if cam_id not in self._readers:
                reader = CameraReader(
                    spec, queue_size=self._src.queue_size, reconnect_cap_s=self._src.reconnect_cap_s
                )
                self._readers[cam_id] = reader
                reader.start()
                log.info("camera %s (%s) started", cam_id, spec.name)
        return out

    def next_batch(self) -> list[SourceItem]:
        stop = self._src.stop
        if stop is not None and stop.is_set():
            return self._end()
        out = self._reconcile()
        now = time.monotonic()
        for reader in self._readers.values():
            out.extend(self._drain(reader))
            quiet = now - reader.last_packet
            if reader.online and not reader.stalled_reported and quiet > self._src.stall_s:
                reader.stalled_reported = True
                out.append(
                    camera_event(reader.spec, "camera.stalled", "no_data", f"{quiet:.1f}s silent")
                )
        self._empty = not out
        return out

    def _end(self) -> list[SourceItem]:
        """Stop reading: emit the health events the readers queued, then end (EOF).

        Frames still queued are dropped: analysing them would only delay the stop (their
        packets are in the rings, so clips and recordings keep them).
        """
        if self._ended:
            raise StopIteration
        self._ended = True
        self._stop.set()
        for reader in self._readers.values():
            reader.stop()
        out: list[SourceItem] = [
            item
            for reader in self._readers.values()
            for item in reader.drain()
            if not isinstance(item, Frame)
        ]
        log.info("shard %s stopped reading %d cameras", self._shard, len(self._readers))
        if not out:
            raise StopIteration
        return out

    def _drain(self, reader: CameraReader) -> list[SourceItem]:
        items, analyzer = reader.drain(), self._analyzer
        if analyzer is None:
            return items
        return [analyzer(item) if isinstance(item, Frame) else item for item in items]

    def next_awake(self) -> datetime | None:
        if self._empty and not self._ended:
            period = _POLL_MS if self._readers else _EMPTY_POLL_MS
            return datetime.now(UTC) + timedelta(milliseconds=period)
        return None

    def snapshot(self) -> object:
        return self._analyzer.snapshot() if self._analyzer is not None else None

    def close(self) -> None:
        self._stop.set()
        for reader in self._readers.values():
            reader.stop()

    @property
    def readers(self) -> dict[int, CameraReader]:
        """Live readers by camera id (for tests and metrics)."""
        return self._readers


class RtspSource(FixedPartitionedSource[SourceItem, object]):
    """Live cameras of ``directory`` split over ``shards`` partitions.

    When ``stop`` is set every shard stops its readers, emits what they queued and ends (EOF),
    so the dataflow completes: open windows flush and sinks close (:mod:`gtvision.stopping`).
    """

    def __init__(
        self,
        directory: CameraDirectory,
        *,
        shards: int = 1,
        poll_s: float = 2.0,
        reconnect_cap_s: float = 30.0,
        stall_s: float = 2.0,
        queue_size: int = 4,
        stop: threading.Event | None = None,
    ) -> None:
        if shards < 1:
            msg = f"shards must be >= 1, got {shards}"
            raise ValueError(msg)
        self.directory, self.shards, self.poll_s = directory, shards, poll_s
        self.reconnect_cap_s, self.stall_s, self.queue_size = reconnect_cap_s, stall_s, queue_size
        self.stop = stop
        self.registry = CameraRegistry()
        self.analyzer: AnalyzerFactory | None = None

    def attach_analyzer(self, factory: AnalyzerFactory) -> None:
        """Run ``factory()``'s analyzer on every emitted frame; its state is the snapshot."""
        self.analyzer = factory

    def list_parts(self) -> list[str]:
        """``cameras-K-of-N`` for every shard."""
        return [f"cameras-{k}-of-{self.shards}" for k in range(self.shards)]

    def build_part(self, step_id: str, for_part: str, resume_state: object) -> _ShardPartition:
        """Start the shard's watcher and camera readers (analyzer state from ``resume_state``)."""
        shard = int(for_part.split("-")[1])
        return _ShardPartition(self, shard, resume_state)
