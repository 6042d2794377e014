"""Event clips: packets from an ffmpeg-made H.264 file through the ring, remuxed, uploaded."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import psycopg
import pytest

from gtvision.sinks.clips import ClipRecorder, PacketRing, RingRegistry, remux_mp4
from gtvision.sinks.objects import S3ObjectStore, object_key
from gtvision.sinks.postgres import EventWriter, open_pool
from gtvision.sources.testvideo import make_video, moving_box

from .conftest import T0, feed_ring, motion


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "cam.mp4"
    return make_video(path, duration=20, size=(320, 180), fps=15, gop=15,
                      filters=[moving_box(1, 19, speed=10, size=40)])  # fmt: skip


def _probe(data: bytes) -> tuple[float, float, bool, int]:
    """Container duration, decoded frame span, first frame is a keyframe, frame count."""
    with av.open(io.BytesIO(data), mode="r") as clip:
        stream = clip.streams.video[0]
        frames = list(clip.decode(stream))
        first_key = bool(frames[0].key_frame)
        tb = stream.time_base or Fraction(1, 90000)
        pts = [f.pts for f in frames if f.pts is not None]
        span = float((max(pts) - min(pts)) * tb) + 1 / 15
        duration = (clip.duration or 0) / 1_000_000
        return duration, span, first_key, len(frames)


def test_ring_keeps_a_keyframe_at_its_start(video: Path) -> None:
    ring = PacketRing(retain_s=4.0)
    feed_ring(ring, video)
    packets, _ = ring.cut(T0, T0 + timedelta(seconds=30))
    assert packets[0].keyframe
    span = (packets[-1].ts - packets[0].ts).total_seconds()
    assert 4.0 <= span <= 5.1  # retain plus at most one GOP (1 s)


def _recorder(store: S3ObjectStore) -> tuple[ClipRecorder, RingRegistry, list[tuple[str, str]]]:
    """A clip recorder (3 s pre-roll, 4 s post-roll) on private rings, and what it linked."""
    rings = RingRegistry()
    linked: list[tuple[str, str]] = []
    recorder = ClipRecorder(
        store, lambda eid, key: linked.append((eid, key)),
        pre_roll_s=3, post_roll_s=4, rings=rings, poll_s=0.05,
    )  # fmt: skip
    return recorder, rings, linked


def _wait(linked: list[tuple[str, str]]) -> None:
    deadline = time.monotonic() + 10
    while not linked and time.monotonic() < deadline:
        time.sleep(0.05)


def test_clip_remux_plays_with_pre_and_post_roll(video: Path, s3_store: S3ObjectStore) -> None:
    event = motion(0, camera=77).model_copy(update={"ts": T0 + timedelta(seconds=10)})
    recorder, rings, linked = _recorder(s3_store)
    try:
        ring = rings.ring(77)
        feed_ring(ring, video, until_s=8)
        assert recorder.request(event)
        time.sleep(0.3)
        assert recorder.pending == 1  # waits for the post-roll packets
        with av.open(str(video)) as container:  # the reader goes on: the rest of the file
            stream = container.streams.video[0]
            tb = stream.time_base or Fraction(1, 90000)
            for packet in container.demux(stream):
                seconds = float(packet.pts * tb) if packet.pts is not None else 0
                if seconds > 8:
                    ring.push(packet, T0 + timedelta(seconds=seconds))
        _wait(linked)
    finally:
        recorder.close()
    key = object_key(event, "mp4")
    assert linked == [(event.id, key)]
    duration, span, first_key, frames = _probe(s3_store.get(key))
    print(f"clip duration {duration:.2f}s, frames span {span:.2f}s (pre 3 + post 4 = 7), {frames}")
    assert abs(duration - 7.0) <= 1.0
    assert abs(span - 7.0) <= 1.0
    assert first_key


def test_clip_of_an_event_before_a_reconnect_uses_the_old_connection(
    video: Path, s3_store: S3ObjectStore
) -> None:
    """An event near the end of a connection (or of a demo loop) keeps its clip."""
    event = motion(0, camera=79).model_copy(update={"ts": T0 + timedelta(seconds=7)})
    recorder, rings, linked = _recorder(s3_store)
    try:
        ring = rings.ring(79)
        feed_ring(ring, video, until_s=8)
        assert recorder.request(event)
        feed_ring(ring, video, offset_s=60)  # reconnected: the new packets are much later
        _wait(linked)
    finally:
        recorder.close()
    assert linked == [(event.id, object_key(event, "mp4"))]
    duration, _, first_key, _ = _probe(s3_store.get(linked[0][1]))
    assert first_key
    assert 3.5 <= duration <= 5.1  # from the keyframe before ts-3 s to the end of the connection


def test_camera_without_ring_gets_no_clip(s3_store: S3ObjectStore) -> None:
    recorder = ClipRecorder(s3_store, lambda eid, key: None, rings=RingRegistry())
    try:
        assert not recorder.request(motion(1, camera=5))
    finally:
        recorder.close()


def test_remux_refuses_a_clip_without_keyframe_start(video: Path) -> None:
    ring = PacketRing()
    feed_ring(ring, video, until_s=3)
    packets, template = ring.cut(T0, T0 + timedelta(seconds=3))
    with pytest.raises(ValueError, match="keyframe"):
        remux_mp4(packets[1:], template)


def test_stored_event_gets_its_clip_linked(
    video: Path, s3_store: S3ObjectStore, fresh_pg_dsn: str
) -> None:
    rings = RingRegistry()
    event = motion(0, camera=78).model_copy(update={"ts": T0 + timedelta(seconds=6)})
    with open_pool(fresh_pg_dsn) as pool:
        writer = EventWriter(pool, s3_store, None)
        writer.clips = ClipRecorder(
            s3_store, writer.link_clip, pre_roll_s=2, post_roll_s=2, rings=rings, poll_s=0.05
        )
        feed_ring(rings.ring(78), video)
        writer.write([event])
        writer.write([event])  # re-emitted before the clip is linked: not queued twice
        deadline = time.monotonic() + 10
        while len(writer.clips.done) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        writer.clips.close()
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT clip_key, payload->>'clip_key' FROM events WHERE id = %s", (event.id,)
            ).fetchone()
    key = object_key(event, "mp4")
    assert list(writer.clips.done) == [event.id]
    assert row == (key, key)
    duration, _, first_key, _ = _probe(s3_store.get(key))
    assert abs(duration - 4.0) <= 1.0
    assert first_key


def test_clip_of_a_live_rtsp_stream(
    rtsp_publisher: Callable[..., Any], s3_store: S3ObjectStore
) -> None:
    from gtvision.sources.decode import OPEN_TIMEOUT, RTSP_OPTIONS

    pub = rtsp_publisher("clipcam", size="320x240", rate=15, gop=15)
    rings = RingRegistry()
    linked: list[str] = []
    recorder = ClipRecorder(
        s3_store, lambda eid, key: linked.append(key),
        pre_roll_s=2, post_roll_s=2, rings=rings, poll_s=0.05,
    )  # fmt: skip
    stop = threading.Event()

    def read() -> None:  # what the RTSP reader thread does with the tap
        with av.open(pub.url, options=dict(RTSP_OPTIONS), timeout=OPEN_TIMEOUT) as container:
            stream = container.streams.video[0]
            ring = rings.ring(88)
            ring.reset(stream)
            for packet in container.demux(stream):
                if stop.is_set():
                    return
                ring.push(packet)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # 3 s of history buffered (pre-roll is 2 s)
            ring = rings.get(88)
            first, last = (ring.oldest, ring.latest) if ring else (None, None)
            if first and last and (last - first).total_seconds() >= 3.0:
                break
            time.sleep(0.1)
        event = motion(0, camera=88).model_copy(update={"ts": datetime.now(UTC)})
        assert recorder.request(event)
        deadline = time.monotonic() + 15
        while not linked and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        recorder.close(flush=False)
        reader.join(timeout=10)
    assert linked == [object_key(event, "mp4")]
    duration, _, first_key, frames = _probe(s3_store.get(linked[0]))
    print(f"live RTSP clip: {duration:.2f}s for pre 2 + post 2, {frames} frames")
    assert abs(duration - 4.0) <= 1.0
    assert first_key


def test_rtsp_source_taps_clips_of_events_stored_by_the_postgres_sink(
    rtsp_publisher: Callable[..., Any], s3_store: S3ObjectStore, fresh_pg_dsn: str
) -> None:
    """Real RtspSource (its reader taps ``RINGS``) → motion → EventSink: the row links a clip."""
    from gtvision.operators.incidents import IncidentAcc
    from gtvision.operators.motion import MotionResult, MotionSettings, analyze_at_source
    from gtvision.sinks.clips import RINGS
    from gtvision.sinks.postgres import EventSink
    from gtvision.sources.cameras import CameraSpec, StaticCameras
    from gtvision.sources.rtsp import RtspSource

    pub = rtsp_publisher("tapcam", size="320x240", rate=15, gop=15)
    cam = CameraSpec(camera_id=91, city_id=4, name="tapcam", url=pub.url, analysis_fps=5)
    source = RtspSource(StaticCameras((cam,)))
    assert analyze_at_source(source, lambda _cam: MotionSettings())
    part = source.build_part("input", source.list_parts()[0], None)
    sink = EventSink(fresh_pg_dsn, store_factory=lambda: s3_store, clip_rolls_s=(2.0, 2.0))
    out = sink.build("sink", 0, 1)
    moving: list[MotionResult] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # testsrc scrolls: motion after >= 3 s of packets
            for item in part.next_batch():
                found = getattr(item, "analysis", None)
                if isinstance(found, MotionResult) and found.motion:
                    moving.append(found)
            ring = RINGS.get(91)
            first = ring.oldest if ring else None
            if moving and first and (moving[-1].ts - first).total_seconds() >= 3.0:
                break
            time.sleep(0.05)
        assert moving, "no motion in the published test pattern"
        event = IncidentAcc().add(moving[-1]).incident()
        assert event is not None
        out.write_batch([event])
        key = None
        deadline = time.monotonic() + 20
        while key is None and time.monotonic() < deadline:
            part.next_batch()  # the flow goes on while the post-roll arrives
            with psycopg.connect(fresh_pg_dsn) as conn:
                row = conn.execute(
                    "SELECT clip_key FROM events WHERE id = %s", (event.id,)
                ).fetchone()
            key = row[0] if row else None
            time.sleep(0.1)
    finally:
        out.close()
        part.close()
        RINGS.drop(91)
    assert key == object_key(event, "mp4")
    duration, _, first_key, frames = _probe(s3_store.get(key))
    print(f"RtspSource clip: {duration:.2f}s for pre 2 + post 2, {frames} frames")
    assert abs(duration - 4.0) <= 1.0
    assert first_key


def test_file_replay_taps_clips_on_the_file_clock(
    tmp_path: Path, s3_store: S3ObjectStore, fresh_pg_dsn: str
) -> None:
    """FileSource demuxes into ``RINGS`` with packet times on its frame clock: replays get clips."""
    from gtvision.operators.incidents import IncidentAcc
    from gtvision.operators.motion import MotionResult, MotionSettings, analyze_at_source
    from gtvision.sinks.clips import RINGS
    from gtvision.sinks.postgres import EventSink
    from gtvision.sources.file import FileSource

    video = make_video(tmp_path / "cam.mp4", duration=12, size=(320, 180), fps=15, gop=15,
                       filters=[moving_box(5, 7, speed=60, size=40)])  # fmt: skip
    source = FileSource(video, camera_id=93, city_id=4, analysis_fps=5, start=T0)
    assert analyze_at_source(source, lambda _cam: MotionSettings())
    part = source.build_part("input", source.list_parts()[0], None)
    acc = IncidentAcc()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                batch = part.next_batch()
            except StopIteration:
                break
            for item in batch:
                found = getattr(item, "analysis", None)
                if isinstance(found, MotionResult) and found.motion:
                    acc.add(found)
            time.sleep(0.01)
    finally:
        part.close()
    event = acc.incident()
    assert event is not None
    assert abs((event.start - T0).total_seconds() - 5) <= 0.5
    sink = EventSink(fresh_pg_dsn, store_factory=lambda: s3_store, clip_rolls_s=(2.0, 2.0))
    out = sink.build("sink", 0, 1)
    try:
        out.write_batch([event])
        key = None
        deadline = time.monotonic() + 20
        while key is None and time.monotonic() < deadline:
            with psycopg.connect(fresh_pg_dsn) as conn:
                row = conn.execute(
                    "SELECT clip_key FROM events WHERE id = %s", (event.id,)
                ).fetchone()
            key = row[0] if row else None
            time.sleep(0.1)
    finally:
        out.close()
        RINGS.drop(93)
    assert key == object_key(event, "mp4")
    duration, _, first_key, frames = _probe(s3_store.get(key))
    print(f"FileSource clip: {duration:.2f}s for pre 2 + post 2, {frames} frames")
    assert abs(duration - 4.0) <= 1.0
    assert first_key


def test_clip_service_cuts_events_stored_by_another_process(
    video: Path, s3_store: S3ObjectStore, fresh_pg_dsn: str
) -> None:
    """An event of a camera read here but stored by another process's sink (cluster) gets its
    clip from this process's rings: the service finds it in the events table."""
    from gtvision.sinks.clipservice import ClipService

    rings = RingRegistry()
    here = motion(0, camera=91).model_copy(update={"ts": T0 + timedelta(seconds=6)})
    elsewhere = motion(1, camera=92).model_copy(update={"ts": T0 + timedelta(seconds=6)})
    old = motion(2, camera=91).model_copy(update={"ts": T0 - timedelta(minutes=5)})
    with open_pool(fresh_pg_dsn) as pool:
        EventWriter(pool, s3_store, None).write([here, elsewhere, old])  # the other process
        feed_ring(rings.ring(91), video)  # camera 91 is read here, 92 is not
        service = ClipService(
            open_pool(fresh_pg_dsn), s3_store, pre_roll_s=2, post_roll_s=2, rings=rings,
            poll_s=0.1, clock=lambda: T0 + timedelta(seconds=10),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while len(service.recorder.done) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # further polls queue nothing new
        finally:
            service.close()
        with pool.connection() as conn:
            rows = dict(conn.execute("SELECT id::text, clip_key FROM events").fetchall())
    assert list(service.recorder.done) == [here.id]
    assert rows == {here.id: object_key(here, "mp4"), elsewhere.id: None, old.id: None}
    duration, _, first_key, _ = _probe(s3_store.get(object_key(here, "mp4")))
    assert abs(duration - 4.0) <= 1.0
    assert first_key
