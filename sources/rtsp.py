"""``RtspSource``: live frames and camera health from RTSP cameras.

Partitions are fixed **shards** (``cameras-K-of-N``); camera ``c`` belongs to shard
``c mod N``. Each shard partition polls the :class:`~gtvision.sources.cameras.CameraDirectory`
(the ``cameras`` table) every ``poll_s`` seconds on a watcher thread and starts or stops one
reader thread per camera, so cameras added or removed through the API reach a running flow
within ``poll_s`` + connect time, without a restart and without touching other cameras (their
readers, detectors and keyed state stay as they are). With one shard per worker every worker
reads its share of the cameras.

A camera reader (:class:`~gtvision.sources.camerareader.CameraReader`) connects with PyAV,
decodes off the Bytewax thread into a small queue that drops its *oldest* frame when the flow
falls behind, and reconnects with backoff. Health goes into the flow as ``CameraEvent``:
``camera.online`` on the first frame of a connection, ``camera.offline`` with a reason
(``timeout``, ``refused``, ``auth``, ``bad_url``, ``not_found``, ``server_gone``, ``error``,
``removed``) once per outage, and ``camera.stalled`` when a connected camera sends nothing for
``stall_s``. The decode iterator ending is a lost connection (``server_gone``), never an end of
stream.

Every demuxed video packet is also tapped into the camera's packet ring
(:data:`gtvision.sinks.clips.RINGS`) for event clips; a removed camera's ring is dropped. An
attached frame analyzer (``attach_analyzer``, e.g. motion detection) runs on the frames a shard
emits; its per-camera state is the shard's recovery snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from gtvision import metrics
from gtvision.events import Frame
from gtvision.sinks.clips import RINGS
from gtvision.sources.camerareader import CameraReader, camera_event
from gtvision.sources.cameras import CameraDirectory, CameraRegistry, CameraSpec
from gtvision.sources.decode import AnalyzerFactory, FrameAnalyzer, SourceItem

__all__ = ["CameraReader", "RtspSource", "camera_event"]

log = logging.getLogger(__name__)
_POLL_MS = 20  # idle poll period of a shard (each Bytewax wake-up costs CPU)
_EMPTY_POLL_MS = 250  # poll period of a shard without cameras (the camera table is polled in s)


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
