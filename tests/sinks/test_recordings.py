"""Continuous recording: rings → spool segments → object store, ``recordings`` rows, events."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import psycopg
import pytest
from minio import Minio
from moto.server import ThreadedMotoServer

from gtvision.events import RecordingEvent
from gtvision.sinks.clips import RingRegistry
from gtvision.sinks.objects import S3ObjectStore
from gtvision.sinks.postgres import open_pool
from gtvision.sinks.recordings import SegmentRecorder
from gtvision.sinks.spool import RecordingUploader
from gtvision.sources.testvideo import make_video, moving_box

from ..conftest import S3Target, free_port, interrupt
from .conftest import T0, feed_ring

CITY, CAMERA = 12, 7


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "cam.mp4"
    return make_video(path, duration=20, size=(320, 180), fps=15, gop=15,
                      filters=[moving_box(1, 19, speed=10, size=40)])  # fmt: skip


def _frames(data: bytes) -> tuple[int, bool, float]:
    """Decoded frames, first is a keyframe, span of the frames in seconds."""
    with av.open(io.BytesIO(data), mode="r") as f:
        stream = f.streams.video[0]
        frames = list(f.decode(stream))
        tb = stream.time_base or Fraction(1, 90000)
        pts = [fr.pts for fr in frames if fr.pts is not None]
        return len(frames), bool(frames[0].key_frame), float((max(pts) - min(pts)) * tb)


def _rows(dsn: str, camera: int | None = CAMERA) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT id, started_at, ended_at, object_key, bytes FROM recordings "
            "WHERE camera_id = %s OR %s::bigint IS NULL ORDER BY started_at",
            (camera, camera),
        ).fetchall()


def _event_types(dsn: str) -> list[tuple[str, int]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT e.type, count(*) FROM events e JOIN outbox o ON o.event_id = e.id "
            "WHERE e.camera_id = %s GROUP BY e.type ORDER BY e.type",
            (CAMERA,),
        ).fetchall()


@pytest.fixture
def pool(fresh_pg_dsn: str) -> Iterator[object]:
    p = open_pool(fresh_pg_dsn)
    yield p
    p.close()


def _recorder(pool: object, store: S3ObjectStore, spool: Path, rings: RingRegistry,
              segment_s: float = 5.0, cap: float = 30.0) -> SegmentRecorder:  # fmt: skip
    uploader = RecordingUploader(pool, store, None, spool, backoff_cap_s=cap)
    # poll_s is long: the test polls by hand, so segmenting is deterministic
    return SegmentRecorder(uploader, spool, segment_s=segment_s, rings=rings, poll_s=3600)


def test_segments_are_contiguous_playable_and_announced(
    video: Path, pool: object, fresh_pg_dsn: str, s3_store: S3ObjectStore, tmp_path: Path
) -> None:
    rings = RingRegistry()
    recorder = _recorder(pool, s3_store, tmp_path / "spool", rings)
    packets = feed_ring(rings.ring(CAMERA), video, city=CITY)
    recorder.poll()
    assert recorder.recording == 1  # the last segment stays open until it ends
    recorder.close()

    rows = _rows(fresh_pg_dsn)
    assert len(rows) == 4, rows  # 20 s at 5 s per segment, cut at 1 s keyframes
    total = 0
    for i, (rec_id, started, ended, key, size) in enumerate(rows):
        assert key == f"{CITY}/{CAMERA}/rec/{T0:%Y/%m/%d}/{rec_id}.mp4"
        data = s3_store.get(key)
        assert size == len(data)
        frames, first_key, span = _frames(data)
        assert first_key
        assert started == T0 + timedelta(seconds=5 * i)  # starts at the keyframe that cut
        assert ended is not None
        assert ended > started
        assert 4.5 <= span <= 5.1, (i, span)
        total += frames
    assert total == packets  # no frame lost or doubled at the cuts
    assert _event_types(fresh_pg_dsn) == [("recording.started", 4), ("recording.stopped", 4)]
    assert list(recorder.uploader.uploaded) == [r[0] for r in rows]
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [".lock"]  # spool emptied


def test_reconnect_closes_the_segment_with_the_old_packets(
    video: Path, pool: object, fresh_pg_dsn: str, s3_store: S3ObjectStore, tmp_path: Path
) -> None:
    rings = RingRegistry()
    recorder = _recorder(pool, s3_store, tmp_path / "spool", rings, segment_s=100)
    ring = rings.ring(CAMERA)
    first = feed_ring(ring, video, until_s=8, city=CITY)
    second = feed_ring(ring, video, offset_s=60, city=CITY)  # reconnect before the recorder polled
    recorder.poll()
    recorder.close()
    rows = _rows(fresh_pg_dsn)
    assert [r[1] for r in rows] == [T0, T0 + timedelta(seconds=60)]
    counts = [_frames(s3_store.get(str(r[3])))[0] for r in rows]
    assert counts == [first, second]


def test_store_outage_keeps_segments_on_disk_until_it_returns(
    video: Path, pool: object, fresh_pg_dsn: str, s3_target: S3Target, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there yet: the store is down
    store = S3ObjectStore(f"127.0.0.1:{port}", "testing", "testing", "down-then-up")
    rings = RingRegistry()
    recorder = _recorder(pool, store, tmp_path / "spool", rings, cap=1.0)
    feed_ring(rings.ring(CAMERA), video, until_s=12, city=CITY)
    recorder.poll()
    recorder._drain(CAMERA, recorder._tracks[CAMERA], final=True)  # camera gone: finish now
    deadline = time.monotonic() + 30
    while recorder.uploader.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert recorder.uploader.failures > 0
    assert len(list((tmp_path / "spool").glob("*.mp4"))) == 3  # 0-5, 5-10, 10-12 s
    # the first segment's row is open; later jobs wait behind its upload (order is kept)
    assert [r[2] for r in _rows(fresh_pg_dsn)] == [None]

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        Minio(f"127.0.0.1:{port}", "testing", "testing", secure=False).make_bucket("down-then-up")
        deadline = time.monotonic() + 60
        while len(recorder.uploader.uploaded) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(recorder.uploader.uploaded) == 3
        rows = _rows(fresh_pg_dsn)
        assert all(r[2] is not None and r[4] for r in rows)
        assert sum(_frames(store.get(str(r[3])))[0] for r in rows) == 12 * 15 + 1
        recorder.close()
    finally:
        server.stop()
    assert _event_types(fresh_pg_dsn) == [("recording.started", 3), ("recording.stopped", 3)]


_KILLED = """
import os, signal, sys, time
from pathlib import Path
from gtvision.sinks.clips import RingRegistry
from gtvision.sinks.objects import S3ObjectStore
from gtvision.sinks.postgres import open_pool
from gtvision.sinks.recordings import SegmentRecorder
from gtvision.sinks.spool import RecordingUploader
from tests.sinks.conftest import feed_ring
dsn, endpoint, bucket, spool, video = sys.argv[1:]
rings = RingRegistry()
store = S3ObjectStore(endpoint, "testing", "testing", bucket)
uploader = RecordingUploader(open_pool(dsn), store, None, Path(spool))
recorder = SegmentRecorder(uploader, Path(spool), segment_s=100, rings=rings, poll_s=3600)
feed_ring(rings.ring(7), Path(video), until_s=10, city=12)
recorder.poll()
while uploader.backlog:
    time.sleep(0.05)
time.sleep(0.5)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_segment_of_a_killed_process_is_salvaged_at_the_next_start(
    video: Path, pool: object, fresh_pg_dsn: str, s3_target: S3Target, s3_store: S3ObjectStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    spool = tmp_path / "spool"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED, fresh_pg_dsn, s3_target.endpoint, s3_target.bucket,
         str(spool), str(video)],
        cwd=root, env=os.environ | {"PYTHONPATH": str(root)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(list(spool.glob("*.open.json"))) == 1  # killed while writing its segment
    assert [r[2] for r in _rows(fresh_pg_dsn)] == [None]

    recorder = _recorder(pool, s3_store, spool, RingRegistry())
    recorder.close()
    ((_, started, ended, key, _),) = _rows(fresh_pg_dsn)
    frames, first_key, span = _frames(s3_store.get(str(key)))
    assert first_key
    assert frames >= 8 * 15
    assert ended is not None
    assert abs((ended - started).total_seconds() - span) < 0.2
    assert _event_types(fresh_pg_dsn) == [("recording.started", 1), ("recording.stopped", 1)]
    assert [p.name for p in spool.iterdir()] == [".lock"]


def test_unreadable_segment_is_closed_without_object_at_the_next_start(
    pool: object, fresh_pg_dsn: str, s3_store: S3ObjectStore, tmp_path: Path
) -> None:
    started = RecordingEvent(
        type="recording.started", city_id=CITY, camera_id=CAMERA, ts=T0,
        recording_id=f"rec-{CAMERA}-1", started_at=T0,
    )  # fmt: skip
    first = RecordingUploader(pool, s3_store, None, tmp_path)
    first.started(started)  # what the recorder does when it opens a segment
    first.close()
    (tmp_path / "rec-7-1.open.json").write_text(started.to_json())
    (tmp_path / "rec-7-1.mp4").write_bytes(b"\x00\x00\x00\x18ftypiso5 not a video")
    assert [r[2] for r in _rows(fresh_pg_dsn)] == [None]
    RecordingUploader(pool, s3_store, None, tmp_path).close()
    assert _rows(fresh_pg_dsn) == []
    assert _event_types(fresh_pg_dsn) == [("recording.started", 1), ("recording.stopped", 1)]
    with psycopg.connect(fresh_pg_dsn) as conn:
        key = conn.execute(
            "SELECT payload->>'object_key' FROM events WHERE type = 'recording.stopped'"
        ).fetchone()
    assert key == (None,)
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]


def test_a_spool_directory_belongs_to_one_process(
    pool: object, s3_store: S3ObjectStore, tmp_path: Path
) -> None:
    first = RecordingUploader(pool, s3_store, None, tmp_path)
    try:
        with pytest.raises(RuntimeError, match="in use by another process"):
            RecordingUploader(pool, s3_store, None, tmp_path)
    finally:
        first.close(1)
    RecordingUploader(pool, s3_store, None, tmp_path).close(1)  # free again after close


def test_run_records_a_live_rtsp_camera_into_the_store(
    fresh_pg_dsn: str, s3_target: S3Target, s3_store: S3ObjectStore,
    rtsp_publisher: Callable[..., Any], tmp_path: Path,
) -> None:  # fmt: skip
    pub = rtsp_publisher("rec-live")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")} | {
        "GTV_DATABASE_URL": fresh_pg_dsn, "GTV_RTSP_URLS": pub.url,
        "GTV_S3_ENDPOINT": s3_target.endpoint, "GTV_S3_ACCESS_KEY": s3_target.access_key,
        "GTV_S3_SECRET_KEY": s3_target.secret_key, "GTV_S3_BUCKET": s3_target.bucket,
        "GTV_RECORD_SEGMENT_S": "3", "GTV_RECORD_SPOOL_DIR": str(tmp_path / "spool"),
        "GTV_DATA_DIR": str(tmp_path / "data"),
    }  # fmt: skip
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtvision.cli", "run", "motion", "--poll-s", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(1 for r in _rows(fresh_pg_dsn, None) if r[3]) >= 2:
                break
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        interrupt(proc, timeout=45)
        log.close()
    rows = _rows(fresh_pg_dsn, None)
    done = [r for r in rows if r[3]]
    assert len(done) >= 2, (rows, (tmp_path / "run.log").read_text()[-3000:])
    assert done == rows  # the stop finished and uploaded the open segment too
    for i, (_, _started, ended, key, size) in enumerate(done):
        data = s3_store.get(str(key))
        frames, first_key, span = _frames(data)
        assert size == len(data)
        assert first_key
        assert frames >= 2  # the last one may have been cut by the stop just after it began
        if i + 1 < len(done):  # full segments: about 3 s (cut at a keyframe)
            assert frames > 10
            assert 2.5 <= span <= 6.0, span
            assert ended is not None
            assert done[i + 1][1] >= ended
