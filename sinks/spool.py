"""The recording spool: segments on local disk until the object store and database have them.

A segment in the spool directory is ``<id>.mp4`` plus a sidecar: ``<id>.open.json`` (its
``recording.started`` event) while it is written, replaced by ``<id>.json`` (its
``recording.stopped`` event) once it is finished. :class:`RecordingUploader` works through a
FIFO of jobs on its own thread, so the thread muxing the video never waits on a network:

- *started*: insert the ``recordings`` row (``ended_at`` NULL) and write ``recording.started``;
- *dropped* (a segment with nothing readable): delete its open row, write ``recording.started``
  and a ``recording.stopped`` without ``object_key`` (consumers see every segment closed);
- *finished*: upload the file as its ``object_key``, complete the row, write
  ``recording.started`` and ``recording.stopped`` (ids are deterministic, so the repeated
  started event is absorbed), then delete the file and its sidecar.

Connection failures are retried with capped backoff while later jobs wait (their order is
kept); other failures are logged and leave the files. One process at a time owns a spool
directory (``.lock``, ``flock``). When it starts, the uploader queues the finished segments a
previous process left and *salvages* the ones it was still writing (segments are fragmented
MP4, so a killed process leaves a readable file): the readable packets are remuxed into a clean
file and its end time is taken from its last packet.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
import time
from collections import deque
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av

from gtvision import metrics
from gtvision.events import RecordingEvent
from gtvision.sinks.backoff import Backoff
from gtvision.sinks.feed import FeedPublisher
from gtvision.sinks.objects import ObjectStore
from gtvision.sinks.postgres import EventWriter, is_transient

log = logging.getLogger(__name__)

# fragmented (a killed writer leaves a readable file), each packet written through to the file
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}

_INSERT_OPEN = (
    "INSERT INTO recordings (id, city_id, camera_id, started_at) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (id) DO NOTHING"
)
_DROP_OPEN = "DELETE FROM recordings WHERE id = %s AND object_key IS NULL"
_UPSERT_DONE = (
    "INSERT INTO recordings (id, city_id, camera_id, started_at, ended_at, object_key, bytes) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
    "ended_at = EXCLUDED.ended_at, object_key = EXCLUDED.object_key, bytes = EXCLUDED.bytes"
)


def _lock(spool_dir: Path) -> IO[bytes]:
    """Hold ``spool_dir/.lock``: at start a recorder takes over the unfinished segments there."""
    handle = (spool_dir / ".lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        msg = (
            f"recording spool {spool_dir} is in use by another process: give each process "
            "its own GTV_RECORD_SPOOL_DIR"
        )
        raise RuntimeError(msg) from None
    return handle


def recording_key(event: RecordingEvent) -> str:
    """``city/camera/rec/YYYY/MM/DD/<recording id>.mp4`` (UTC date of the segment's start)."""
    day = event.started_at
    return f"{event.city_id}/{event.camera_id}/rec/{day:%Y/%m/%d}/{event.recording_id}.mp4"


class _Closing(Exception):
    """The uploader's close deadline passed: leave the remaining jobs on disk."""


def started_of(stopped: RecordingEvent) -> RecordingEvent:
    """The ``recording.started`` event of a segment (same id as the one sent when it opened)."""
    return RecordingEvent(
        type="recording.started",
        city_id=stopped.city_id,
        camera_id=stopped.camera_id,
        ts=stopped.started_at,
        recording_id=stopped.recording_id,
        started_at=stopped.started_at,
    )


def stopped_of(started: RecordingEvent, ended: datetime, key: str | None) -> RecordingEvent:
    """The ``recording.stopped`` event of a segment that ended at ``ended`` (``key``: its video)."""
    fields = {"id": "", "type": "recording.stopped", "ts": ended, "object_key": key,
              "ended_at": ended}  # fmt: skip
    return RecordingEvent.model_validate(started.model_dump() | fields)


def salvage(mp4: Path, started: RecordingEvent, key: str) -> RecordingEvent | None:
    """Remux the readable part of an unfinished segment in place; its stopped event or None."""
    tmp = mp4.with_suffix(".salvage.mp4")
    frames, first, last = 0, None, None
    try:
        with av.open(str(mp4)) as src, av.open(str(tmp), "w", format="mp4") as out:
            vin = src.streams.video[0]
            vout = out.add_stream_from_template(vin)
            tb = vin.time_base or Fraction(1, 90_000)
            try:
                for pkt in src.demux(vin):
                    if pkt.dts is None or pkt.size == 0:
                        continue
                    first = pkt.pts if first is None else first
                    last = max(last or 0, (pkt.pts or 0) + (pkt.duration or 0))
                    pkt.stream = vout
                    pkt.time_base = tb
                    out.mux(pkt)
                    frames += 1
            except av.error.FFmpegError as err:
                log.info("salvaging %s: readable up to frame %d (%s)", mp4.name, frames, err)
    except (av.error.FFmpegError, IndexError, OSError) as err:
        log.warning("segment %s is not readable, dropped: %s", mp4.name, err)
        tmp.unlink(missing_ok=True)
        return None
    if frames < 2 or first is None or last is None:
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(mp4)
    ended = started.started_at + timedelta(seconds=float((last - first) * tb))
    return stopped_of(started, ended, key)


class RecordingUploader:
    """Uploads finished segments, fills ``recordings`` and writes the recording events."""

    def __init__(
        self,
        pool: Any,
        store: ObjectStore,
        feed: FeedPublisher | None,
        spool_dir: Path,
        *,
        backoff_cap_s: float = 30.0,
    ) -> None:
        self._pool = pool
        self._store = store
        self._spool = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(spool_dir)
        self._cap = backoff_cap_s
        self._writer = EventWriter(pool, None, feed, backoff_cap_s=backoff_cap_s, sleep=self._sleep)
        self._jobs: queue.Queue[RecordingEvent | Path | None] = queue.Queue()
        self._deadline: float | None = None
        self._wake = threading.Event()
        self.uploaded: deque[str] = deque(maxlen=10_000)  # recording ids, in upload order
        self.failures = 0
        metrics.SPOOL_BYTES.set_function(self.spool_bytes)
        self._recover()
        self._thread = threading.Thread(target=self._run, name="recording-uploader", daemon=True)
        self._thread.start()

    # ---- what the recorder hands over --------------------------------------------------------
    def started(self, event: RecordingEvent) -> None:
        """A segment was opened (its ``.open.json`` is written)."""
        self._jobs.put(event)

    def dropped(self, started: RecordingEvent) -> None:
        """A segment was lost (nothing readable): forget its row, close it with no object."""
        self._jobs.put(stopped_of(started, started.started_at, None))

    def finished(self, mp4: Path) -> None:
        """A segment was finished (its ``.json`` is written)."""
        self._jobs.put(mp4)

    def spool_bytes(self) -> int:
        """Bytes of the files in the spool directory (segments waiting or being written)."""
        total = 0
        with os.scandir(self._spool) as entries:
            for entry in entries:
                try:
                    total += entry.stat().st_size if entry.is_file() else 0
                except FileNotFoundError:  # uploaded meanwhile
                    continue
        return total

    @property
    def backlog(self) -> int:
        """Jobs not done yet."""
        return self._jobs.qsize()

    # ---- the worker --------------------------------------------------------------------------
    def _recover(self) -> None:
        """Queue what an earlier process left: unfinished segments first salvaged."""
        for opened in sorted(self._spool.glob("*.open.json")):
            rec_id = opened.name.removesuffix(".open.json")
            mp4, done = self._spool / f"{rec_id}.mp4", self._spool / f"{rec_id}.json"
            if not done.exists():
                started = RecordingEvent.model_validate_json(opened.read_text())
                stopped = salvage(mp4, started, recording_key(started)) if mp4.exists() else None
                if stopped is None:
                    mp4.unlink(missing_ok=True)
                    self.dropped(started)
                else:
                    done.write_text(stopped.to_json())
                    log.warning(
                        "recording %s salvaged after a stop: %s to %s",
                        rec_id,
                        stopped.started_at,
                        stopped.ended_at,
                    )
            opened.unlink()
        for done in sorted(self._spool.glob("*.json")):
            mp4 = done.with_suffix(".mp4")
            if mp4.exists():
                self._jobs.put(mp4)
            else:
                done.unlink()

    def _sleep(self, seconds: float) -> None:
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise _Closing
            seconds = min(seconds, left)
        self._wake.wait(seconds)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            backoff = Backoff(cap_s=self._cap)
            while True:
                try:
                    self._do(job)
                    break
                except _Closing:
                    return
                except Exception as err:
                    self.failures += 1
                    metrics.UPLOAD_FAILURES.labels("recording").inc()
                    if not is_transient(err):
                        log.exception("recording job %s failed, left in %s", job, self._spool)
                        break
                    delay = backoff.next()
                    log.warning(
                        "recording job %s failed (%s: %s), retry in %.1fs",
                        job,
                        type(err).__name__,
                        err,
                        delay,
                    )
                    try:
                        self._sleep(delay)
                    except _Closing:
                        return

    def _do(self, job: RecordingEvent | Path) -> None:
        if isinstance(job, RecordingEvent) and job.type == "recording.stopped":
            with self._pool.connection() as conn:  # a dropped segment: nothing was kept
                conn.execute(_DROP_OPEN, (job.recording_id,))
            self._writer.write([started_of(job), job])
            return
        if isinstance(job, RecordingEvent):
            with self._pool.connection() as conn:
                conn.execute(
                    _INSERT_OPEN, (job.recording_id, job.city_id, job.camera_id, job.started_at)
                )
            self._writer.write([job])
            return
        sidecar = job.with_suffix(".json")
        stopped = RecordingEvent.model_validate_json(sidecar.read_text())
        key = stopped.object_key or recording_key(stopped)
        data = job.read_bytes()
        self._store.put(key, data, "video/mp4")
        with self._pool.connection() as conn:
            conn.execute(
                _UPSERT_DONE,
                (
                    stopped.recording_id,
                    stopped.city_id,
                    stopped.camera_id,
                    stopped.started_at,
                    stopped.ended_at,
                    key,
                    len(data),
                ),
            )
        self._writer.write([started_of(stopped), stopped])
        job.unlink()
        sidecar.unlink()
        self.uploaded.append(stopped.recording_id)
        metrics.RECORDINGS.labels(str(stopped.camera_id)).inc()

    def close(self, timeout_s: float = 30.0) -> None:
        """Do the queued jobs for up to ``timeout_s``; what is left waits on disk."""
        self._deadline = time.monotonic() + timeout_s
        self._jobs.put(None)
        self._thread.join(timeout_s + 5)
        self._wake.set()
        self._lock.close()  # releases the spool for the next process
        if self.backlog:
            log.warning(
                "%d recording jobs left for the next start in %s", self.backlog, self._spool
            )
