"""Continuous recording: every tapped camera cut into MP4 segments, uploaded, listed, announced.

:class:`SegmentRecorder` reads the same per-camera packet rings as the event clips
(:data:`gtvision.sinks.clips.RINGS`: the RTSP and file readers tap every demuxed packet) on one
background thread. Each camera's packets are muxed as they arrive, without decoding, into a
fragmented MP4 in the spool directory. A segment starts at a keyframe and ends at the first
keyframe ``segment_s`` later (the next segment starts with that keyframe: no overlap, no gap),
or when the camera reconnects (the previous connection's packets stay readable in the ring),
stops sending for ``idle_s``, is removed, or when the recorder closes.

Everything that needs a network (the object store, the ``recordings`` row, the
``recording.started``/``recording.stopped`` events through PostgreSQL and the outbox) is done
by :class:`gtvision.sinks.spool.RecordingUploader` on its own thread, from the spool, so an
outage slows nothing down and loses no video while the disk lasts. Objects are
``city/camera/rec/YYYY/MM/DD/<recording id>.mp4``; the retention purger deletes rows and
objects past the camera's ``retention_days``.

One recorder per process (:func:`acquire`), whatever the number of sink partitions in it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av

from gtvision.events import RecordingEvent
from gtvision.sinks.clips import RINGS, PacketRing, RingRegistry, _Packet, mux_packet
from gtvision.sinks.shared import PerProcess
from gtvision.sinks.spool import FRAGMENTED, RecordingUploader, recording_key, stopped_of

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Segment:
    started: RecordingEvent
    gen: int
    path: Path
    out: Any
    stream: Any
    time_base: Any
    base: int
    last: datetime


@dataclass(slots=True)
class _Track:
    ring: PacketRing
    seq: int = 0
    segment: _Segment | None = None
    idle_since: datetime | None = None


class SegmentRecorder:
    """Records every camera tapped into ``rings`` as contiguous MP4 segments."""

    def __init__(
        self,
        uploader: RecordingUploader,
        spool_dir: Path,
        *,
        segment_s: float = 60.0,
        idle_s: float = 10.0,
        rings: RingRegistry = RINGS,
        poll_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if segment_s <= 0:
            msg = f"segment_s must be positive, got {segment_s}"
            raise ValueError(msg)
        self.uploader = uploader
        self._spool = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._segment = timedelta(seconds=segment_s)
        self._idle = timedelta(seconds=idle_s)
        self._rings = rings
        rings.need(10 * poll_s)  # segments are muxed as packets come: only polls must fit
        self._poll_s = poll_s
        self._clock = clock
        self._on_close = on_close
        self._tracks: dict[int, _Track] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="segment-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.poll()

    def poll(self) -> None:
        """Mux what the rings got since the last poll; finish the segments that ended."""
        with self._lock:
            live = self._rings.snapshot()
            for camera_id, ring in live.items():
                track = self._tracks.get(camera_id)
                if track is None or track.ring is not ring:
                    if track is not None:
                        self._drain(camera_id, track, final=True)
                    track = self._tracks[camera_id] = _Track(ring)
                self._drain(camera_id, track, final=False)
            for camera_id in [c for c in self._tracks if c not in live]:  # removed cameras
                self._drain(camera_id, self._tracks.pop(camera_id), final=True)

    def _drain(self, camera_id: int, track: _Track, *, final: bool) -> None:
        try:
            packets, templates = track.ring.after(track.seq)
            if packets and track.seq and packets[0].seq > track.seq + 1 and track.segment:
                log.warning("camera %s: recorder fell behind the ring, segment cut", camera_id)
                self._finish(track)
            for p in packets:
                self._add(camera_id, track, p, templates)
                track.seq = p.seq
            if packets:
                track.idle_since = None
            elif track.segment is not None:
                now = self._clock()
                track.idle_since = track.idle_since or now
                if now - track.idle_since >= self._idle:
                    self._finish(track)  # the camera stopped sending
            if final:
                self._finish(track)
        except Exception:
            log.exception("camera %s: recording failed, segment dropped", camera_id)
            self._discard(track)

    def _add(self, camera_id: int, track: _Track, p: _Packet, templates: dict[int, Any]) -> None:
        seg = track.segment
        if seg is not None and (
            p.gen != seg.gen or (p.keyframe and p.ts - seg.started.started_at >= self._segment)
        ):
            self._finish(track)
            seg = None
        if seg is None:
            template = templates.get(p.gen)
            if not p.keyframe or template is None:
                return  # a segment starts at a keyframe
            seg = track.segment = self._open(camera_id, track.ring.city_id, p, template)
        mux_packet(seg.out, seg.stream, p, seg.base, seg.time_base)
        seg.last = p.ts

    def _open(self, camera_id: int, city_id: int, first: _Packet, template: Any) -> _Segment:
        rec_id = f"rec-{camera_id}-{int(first.ts.timestamp() * 1000)}"
        started = RecordingEvent(
            type="recording.started",
            city_id=city_id,
            camera_id=camera_id,
            ts=first.ts,
            recording_id=rec_id,
            started_at=first.ts,
        )
        path = self._spool / f"{rec_id}.mp4"
        (self._spool / f"{rec_id}.open.json").write_text(started.to_json())
        out = av.open(str(path), mode="w", format="mp4", options=FRAGMENTED)
        stream = out.add_stream_from_template(template)
        base = first.dts if first.dts is not None else (first.pts or 0)
        seg = _Segment(started, first.gen, path, out, stream, template.time_base, base, first.ts)
        self.uploader.started(started)
        return seg

    def _finish(self, track: _Track) -> None:
        seg, track.segment = track.segment, None
        if seg is None:
            return
        seg.out.close()
        opened = seg.path.with_suffix(".open.json")
        first = seg.started
        stopped = stopped_of(first, seg.last, recording_key(first))
        seg.path.with_suffix(".json").write_text(stopped.to_json())
        opened.unlink(missing_ok=True)
        self.uploader.finished(seg.path)

    def _discard(self, track: _Track) -> None:
        seg, track.segment = track.segment, None
        if seg is not None:
            try:
                seg.out.close()
            except Exception:
                log.debug("closing a failed segment", exc_info=True)
            seg.path.unlink(missing_ok=True)
            seg.path.with_suffix(".open.json").unlink(missing_ok=True)
            self.uploader.dropped(seg.started)

    @property
    def recording(self) -> int:
        """Cameras with an open segment."""
        with self._lock:
            return sum(1 for t in self._tracks.values() if t.segment is not None)

    def close(self, upload_timeout_s: float = 30.0) -> None:
        """Finish every open segment, then upload for up to ``upload_timeout_s``."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.poll()
        with self._lock:
            for track in self._tracks.values():
                try:
                    self._finish(track)
                except Exception:
                    log.exception("a camera's recording could not be finished")
                    self._discard(track)
        self.uploader.close(upload_timeout_s)
        if self._on_close is not None:
            self._on_close()


RECORDER: PerProcess[SegmentRecorder] = PerProcess(SegmentRecorder.close)


def acquire(make: Callable[[], SegmentRecorder]) -> Callable[[], None]:
    """Start this process's recorder on first use; return its release (the last one closes)."""
    return RECORDER.acquire(make)[1]
