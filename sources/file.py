"""``FileSource``: frames of a recorded video (local path or ``s3://bucket/key``) for replays.

One partition per file. A reader thread decodes ahead into a small bounded queue (blocking, not
dropping: a replay must see every frame the live flow would), the Bytewax thread only takes what
is ready (``next_batch`` never blocks; ``next_awake`` paces). With ``realtime=True`` frames are
released at their presentation time.

Resuming: the partition's snapshot (:class:`FileResume`) is the index of the next frame to emit
(a frame's index is its position in the stream, ``round((pts - first_pts) × frame rate)``,
whatever is decoded or capped) and the state of the attached frame analyzer (e.g. the motion
background, see ``attach_analyzer``), so a flow restarted from a Bytewax recovery snapshot
continues where it stopped with the same state; earlier frames are decoded and discarded.

Clips: the reader demuxes and taps every video packet into the camera's packet ring
(:data:`gtvision.sinks.clips.RINGS`, times on the file's deterministic clock), so a replay into
the Postgres sink can cut event clips like a live camera.

Times are deterministic (see :mod:`gtvision.sources.decode`): the anchor is ``start`` if given,
else the container's ``creation_time``, else 1970-01-01T00:00:00Z.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from gtvision.events import Frame
from gtvision.sources.decode import (
    EPOCH,
    AnalyzerFactory,
    FrameAnalyzer,
    FrameClock,
    RateLimiter,
    SourceItem,
    creation_time,
    pts_seconds,
    to_frame,
)

if TYPE_CHECKING:
    from gtvision.config import Settings
    from gtvision.sinks.clips import PacketRing

log = logging.getLogger(__name__)
ProgressFn = Callable[[int, int], None]
_QUEUE = 16
_BATCH = 16
_IDLE_MS = 30  # poll period while the queue is empty: each Bytewax wake-up costs CPU


class _End:
    """Sentinel: the reader reached the end of the file."""


def fetch_s3(url: str, settings: Settings, dest_dir: Path) -> Path:
    """Download ``s3://bucket/key`` with the configured S3 credentials into ``dest_dir``."""
    from gtvision.sinks.objects import S3ObjectStore

    rest = url.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        msg = f"expected s3://BUCKET/KEY, got {url!r}"
        raise ValueError(msg)
    if not settings.s3_endpoint:
        msg = f"cannot fetch {url!r}: GTV_S3_ENDPOINT is not set"
        raise ValueError(msg)
    store = S3ObjectStore(
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        bucket,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )
    dest = dest_dir / Path(key).name
    dest.write_bytes(store.get(key))
    return dest


@dataclass(frozen=True, slots=True)
class FileResume:
    """Snapshot of a file partition: next frame index and the analyzer's state."""

    next_index: int = 0
    analysis: object = None


class _FilePartition(StatefulSourcePartition[SourceItem, FileResume]):
    def __init__(self, src: FileSource, path: Path, state: FileResume) -> None:
        self._src = src
        self._next = resume = state.next_index
        self._analyzer: FrameAnalyzer | None = src.analyzer() if src.analyzer else None
        if self._analyzer is not None and state.analysis is not None:
            self._analyzer.restore(state.analysis)
        self._queue: queue.Queue[Frame | _End | BaseException] = queue.Queue(_QUEUE)
        self._stop = threading.Event()
        self._head: Frame | None = None
        self._done = False
        self._wall0: datetime | None = None
        self._pts0 = 0.0
        self._thread = threading.Thread(
            target=self._read, args=(path, resume), name=f"file-{src.camera_id}", daemon=True
        )
        self._thread.start()

    def _put(self, item: Frame | _End | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
            except queue.Full:
                continue
            return True
        return False

    def _read(self, path: Path, resume: int) -> None:
        import av

        from gtvision.sinks.clips import RINGS

        src = self._src
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                if src.keyframes_only:
                    stream.codec_context.skip_frame = "NONKEY"
                total = int(stream.frames or 0)
                rate = float(stream.average_rate or 0) or 25.0
                anchor = src.start or creation_time(dict(container.metadata)) or EPOCH
                clock, limiter = FrameClock(anchor=anchor), RateLimiter(src.analysis_fps)
                progress, done, index, pts0 = src.progress, 0, -1, 0.0
                ring = RINGS.ring(src.camera_id)
                ring.reset(stream, src.city_id)
                tap = _PacketClock(anchor, float(stream.time_base or 0))
                for vf in _frames(container, stream, ring, tap):
                    pts = pts_seconds(vf, done, rate)
                    if done == 0:
                        clock.ts(pts)  # anchored at the first frame, also when resuming
                        pts0 = pts
                    done += 1
                    # the frame's position in the stream (stable with keyframes-only decoding)
                    index = max(index + 1, round((pts - pts0) * rate))
                    if progress is not None and index % 10 == 0:
                        progress(done, total)
                    if not limiter.keep(pts) or index < resume:
                        continue
                    frame = to_frame(
                        vf,
                        city_id=src.city_id,
                        camera_id=src.camera_id,
                        index=index,
                        ts=clock.ts(pts),
                        pts_s=pts,
                    )
                    if not self._put(frame):
                        return
                if progress is not None:
                    progress(done, total)
        except Exception as err:  # surfaced on the Bytewax thread by next_batch
            self._put(err)
            return
        self._put(_End())

    def _emit(self, frame: Frame) -> Frame:
        return frame if self._analyzer is None else self._analyzer(frame)

    def _due(self, frame: Frame) -> datetime:
        now = datetime.now(UTC)
        if self._wall0 is None:
            self._wall0, self._pts0 = now, frame.pts_seconds
        return self._wall0 + timedelta(seconds=frame.pts_seconds - self._pts0)

    def next_batch(self) -> list[SourceItem]:
        if self._done:
            raise StopIteration
        out: list[SourceItem] = []
        while len(out) < _BATCH:
            if self._head is None:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _End):
                    self._done = True
                    break
                if isinstance(item, BaseException):
                    msg = f"cannot decode {self._src.location!r}: {item}"
                    raise RuntimeError(msg) from item
                self._head = item
            if self._src.realtime and self._due(self._head) > datetime.now(UTC):
                break
            out.append(self._emit(self._head))
            self._next = self._head.index + 1
            self._head = None
        if self._done and not out:
            raise StopIteration
        return out

    def next_awake(self) -> datetime | None:
        if self._head is not None and self._src.realtime:
            return self._due(self._head)
        if not self._done and self._queue.empty():
            return datetime.now(UTC) + timedelta(milliseconds=_IDLE_MS)
        return None

    def snapshot(self) -> FileResume:
        analysis = self._analyzer.snapshot() if self._analyzer is not None else None
        return FileResume(self._next, analysis)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._src.cleanup()


class _PacketClock:
    """Capture time of a packet: ``anchor + (pts - first packet pts)`` (the file's clock)."""

    def __init__(self, anchor: datetime, time_base: float) -> None:
        self._anchor, self._tb = anchor, time_base
        self._pts0: int | None = None

    def ts(self, pts: int | None) -> datetime | None:
        if pts is None or not self._tb:
            return None
        if self._pts0 is None:
            self._pts0 = pts
        return self._anchor + timedelta(seconds=(pts - self._pts0) * self._tb)


def _frames(container: Any, stream: Any, ring: PacketRing, tap: _PacketClock) -> Iterator[Any]:
    """Decoded frames of ``stream``, every demuxed packet tapped into ``ring`` first."""
    for packet in container.demux(stream):
        if packet.size:
            ring.push(packet, tap.ts(packet.pts))
        yield from packet.decode()


class FileSource(FixedPartitionedSource[SourceItem, FileResume]):
    """Frames of one recorded video as camera ``camera_id`` of city ``city_id``."""

    def __init__(
        self,
        location: str | Path,
        *,
        city_id: int = 0,
        camera_id: int = 0,
        analysis_fps: float = 5.0,
        keyframes_only: bool = False,
        start: datetime | None = None,
        realtime: bool = False,
        progress: ProgressFn | None = None,
        settings: Settings | None = None,
    ) -> None:
        if start is not None and start.tzinfo is None:
            msg = f"start must be timezone-aware, got naive {start!r}"
            raise ValueError(msg)
        self.location = str(location)
        self.city_id, self.camera_id = city_id, camera_id
        self.analysis_fps, self.keyframes_only = analysis_fps, keyframes_only
        self.start, self.realtime, self.progress = start, realtime, progress
        self._settings = settings
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.analyzer: AnalyzerFactory | None = None

    def attach_analyzer(self, factory: AnalyzerFactory) -> None:
        """Run ``factory()``'s analyzer on every emitted frame; its state joins the snapshots."""
        self.analyzer = factory

    def list_parts(self) -> list[str]:
        """One partition: the file."""
        return [f"file-{self.camera_id}"]

    def _local_path(self) -> Path:
        if not self.location.startswith("s3://"):
            path = Path(self.location)
            if not path.is_file():
                msg = f"video file not found: {self.location!r}"
                raise FileNotFoundError(msg)
            return path
        from gtvision.config import load_settings

        self._tmp = tempfile.TemporaryDirectory(prefix="gtv-replay-")
        return fetch_s3(self.location, self._settings or load_settings(), Path(self._tmp.name))

    def build_part(
        self, step_id: str, for_part: str, resume_state: FileResume | int | None
    ) -> _FilePartition:
        """Open the file (downloading it first for ``s3://``) and start decoding."""
        state = resume_state if isinstance(resume_state, FileResume) else None
        state = state or FileResume(resume_state if isinstance(resume_state, int) else 0)
        return _FilePartition(self, self._local_path(), state)

    def cleanup(self) -> None:
        """Remove a downloaded copy."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
