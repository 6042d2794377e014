"""RtspSource against the real RTSP relay of ``tests/rtsp_server.py`` and ffmpeg publishers."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from gtvision.events import CameraEvent, Frame
from gtvision.operators.motion import MotionSettings
from gtvision.sources.cameras import CameraSpec, StaticCameras
from gtvision.sources.decode import SourceItem
from gtvision.sources.rtsp import RtspSource


class Collector:
    """Polls one shard partition like Bytewax would and keeps everything it emitted."""

    def __init__(self, src: RtspSource) -> None:
        self.part = src.build_part("input", src.list_parts()[0], None)
        self.items: list[SourceItem] = []

    def poll_until(self, pred: Callable[[list[SourceItem]], bool], timeout: float) -> float:
        """Seconds until ``pred(items)`` held; fails after ``timeout``."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self.items.extend(self.part.next_batch())
            if pred(self.items):
                return time.monotonic() - t0
            time.sleep(0.05)
        kinds = [
            (type(i).__name__, getattr(i, "type", ""), getattr(i, "reason", "")) for i in self.items
        ]
        pytest.fail(f"condition not met within {timeout}s; got {kinds[-20:]}")

    def frames(self, camera_id: int) -> list[Frame]:
        return [i for i in self.items if isinstance(i, Frame) and i.camera_id == camera_id]

    def events(self, camera_id: int, kind: str) -> list[CameraEvent]:
        return [
            i
            for i in self.items
            if isinstance(i, CameraEvent) and i.camera_id == camera_id and i.type == kind
        ]

    def close(self) -> None:
        self.part.close()


def spec(cam: int, url: str, fps: float = 5.0) -> CameraSpec:
    return CameraSpec(camera_id=cam, city_id=1, name=f"cam{cam}", url=url, analysis_fps=fps)


@pytest.fixture
def collect() -> Iterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def make(*specs: CameraSpec, **kw: Any) -> Collector:
        c = Collector(RtspSource(StaticCameras(specs), reconnect_cap_s=2.0, **kw))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_frames_arrive_with_online_event_at_the_capped_rate(
    rtsp_publisher: Callable[..., Any], collect: Callable[..., Collector]
) -> None:
    pub = rtsp_publisher("basic")
    c = collect(spec(1, pub.url))
    c.poll_until(lambda _: len(c.frames(1)) >= 10, timeout=15)
    assert len(c.events(1, "camera.online")) == 1
    assert c.items.index(c.events(1, "camera.online")[0]) < c.items.index(c.frames(1)[0])
    frames = c.frames(1)
    assert frames[0].gray.shape == (720, 1280)
    assert (frames[0].city_id, frames[0].camera_id) == (1, 1)
    span = (frames[-1].ts - frames[0].ts).total_seconds()
    rate = (len(frames) - 1) / span
    assert 3.5 <= rate <= 5.5, rate  # 15 fps source capped at 5


def test_publisher_killed_goes_offline_and_comes_back(
    rtsp_publisher: Callable[..., Any], collect: Callable[..., Collector]
) -> None:
    pub = rtsp_publisher("flaky")
    c = collect(spec(2, pub.url))
    c.poll_until(lambda _: len(c.frames(2)) >= 3, timeout=15)
    pub.kill()
    waited = c.poll_until(lambda _: bool(c.events(2, "camera.offline")), timeout=10)
    assert waited <= 10
    assert c.events(2, "camera.offline")[0].reason in {"server_gone", "timeout", "not_found"}
    before = len(c.frames(2))
    pub.start()
    c.poll_until(
        lambda _: len(c.frames(2)) > before, timeout=5 + 2
    )  # +2: the publisher's own start
    assert len(c.events(2, "camera.online")) == 2


def test_server_killed_goes_offline_then_recovers(
    own_rtsp_server: Any,
    rtsp_publisher: Callable[..., Any],
    collect: Callable[..., Collector],
) -> None:
    pub = rtsp_publisher("srv", server=own_rtsp_server)
    c = collect(spec(3, pub.url))
    c.poll_until(lambda _: len(c.frames(3)) >= 3, timeout=15)
    own_rtsp_server.kill()
    c.poll_until(lambda _: bool(c.events(3, "camera.offline")), timeout=10)
    own_rtsp_server.start()
    pub.restart()
    before = len(c.frames(3))
    c.poll_until(lambda _: len(c.frames(3)) > before, timeout=10)


def test_bad_cameras_get_clear_events_and_do_not_stop_a_good_one(
    rtsp_publisher: Callable[..., Any], collect: Callable[..., Collector]
) -> None:
    pub = rtsp_publisher("good")
    silent = socket.socket()  # accepts connections, never answers: an unreachable camera
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()
    try:
        c = collect(
            spec(10, pub.url),
            spec(11, f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam"),
            spec(12, f"rtsp://127.0.0.1:{refused_port}/cam"),
            spec(13, "rtsp://bad host:99999/x"),
            spec(14, "rtsp://user:secret@127.0.0.1:notaport/x"),
            spec(15, pub.url.replace("/good", "/nobody-publishes-this")),
        )
        c.poll_until(lambda _: len(c.frames(10)) >= 5, timeout=15)
        c.poll_until(lambda _: all(c.events(i, "camera.offline") for i in range(11, 16)), 12)
        reasons = {i: c.events(i, "camera.offline")[0].reason for i in range(11, 16)}
        assert reasons == {
            11: "timeout",
            12: "refused",
            13: "bad_url",
            14: "bad_url",
            15: "not_found",
        }
        assert "secret" not in c.events(14, "camera.offline")[0].detail
        # one offline event per outage, not one per retry
        assert all(len(c.events(i, "camera.offline")) == 1 for i in (12, 13, 14))
        # the good camera kept streaming all along
        before = len(c.frames(10))
        c.poll_until(lambda _: len(c.frames(10)) >= before + 5, timeout=5)
        assert not c.events(10, "camera.offline")
    finally:
        silent.close()


def test_frozen_publisher_is_reported_stalled_then_offline(
    rtsp_publisher: Callable[..., Any], collect: Callable[..., Collector]
) -> None:
    import signal

    pub = rtsp_publisher("frozen")
    c = collect(spec(4, pub.url))
    c.poll_until(lambda _: len(c.frames(4)) >= 3, timeout=15)
    pub.proc.send_signal(signal.SIGSTOP)
    try:
        c.poll_until(lambda _: bool(c.events(4, "camera.stalled")), timeout=8)
        c.poll_until(lambda _: bool(c.events(4, "camera.offline")), timeout=12)
    finally:
        pub.proc.send_signal(signal.SIGCONT)
    stalled, offline = c.events(4, "camera.stalled")[0], c.events(4, "camera.offline")[0]
    assert stalled.ts < offline.ts
    assert offline.reason == "timeout"


class MutableCameras:
    """A camera directory the test edits while the source runs (like the cameras table)."""

    def __init__(self, *specs: CameraSpec) -> None:
        self.specs = list(specs)

    def cameras(self) -> list[CameraSpec]:
        return list(self.specs)


def test_cameras_added_and_removed_while_running(rtsp_publisher: Callable[..., Any]) -> None:
    pub_a, pub_b = rtsp_publisher("dyn-a"), rtsp_publisher("dyn-b")
    directory = MutableCameras(spec(20, pub_a.url))
    c = Collector(RtspSource(directory, poll_s=1.0))
    try:
        c.poll_until(lambda _: len(c.frames(20)) >= 3, timeout=15)
        reader_a = c.part.readers[20]
        # a motion-settings edit applies without reconnecting
        directory.specs[0] = replace(directory.specs[0], motion=MotionSettings(threshold=60))
        src = c.part._src
        c.poll_until(lambda _: src.registry.motion_settings(20).threshold == 60, timeout=4)
        n = len(c.frames(20))
        c.poll_until(lambda _: len(c.frames(20)) >= n + 3, timeout=5)  # reconciled by now
        assert c.part.readers[20] is reader_a
        assert reader_a.spec.motion.threshold == 60
        directory.specs.append(spec(21, pub_b.url))
        took = c.poll_until(lambda _: bool(c.frames(21)), timeout=5)
        assert took <= 5
        reader_b = c.part.readers[21]
        directory.specs.pop()
        c.poll_until(lambda _: bool(c.events(21, "camera.offline")), timeout=5)
        assert c.events(21, "camera.offline")[0].reason == "removed"
        deadline = time.monotonic() + 8
        while reader_b.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not reader_b.alive
        count_b = len(c.frames(21))
        before = len(c.frames(20))
        c.poll_until(lambda _: len(c.frames(20)) >= before + 5, timeout=5)
        assert len(c.frames(21)) == count_b
        # camera 20 never stopped: no gap in its frame times while 21 came and went
        ts = [f.ts for f in c.frames(20)]
        assert max((b - a).total_seconds() for a, b in itertools.pairwise(ts)) < 1.0
        assert len(c.events(20, "camera.online")) == 1
    finally:
        c.close()


def test_a_slow_flow_drops_the_oldest_frames_and_counts_them(
    rtsp_publisher: Callable[..., Any], collect: Callable[..., Collector]
) -> None:
    pub = rtsp_publisher("slow")
    c = collect(spec(5, pub.url), queue_size=2)
    c.poll_until(lambda _: len(c.frames(5)) >= 2, timeout=15)
    reader = c.part.readers[5]
    c.items.extend(c.part.next_batch())
    last_seen = c.frames(5)[-1].ts
    time.sleep(2.0)  # the flow "falls behind": ~10 frames arrive at 5 fps, 2 fit the queue
    t_resume = time.monotonic()
    batch = c.part.next_batch()
    frames = [i for i in batch if isinstance(i, Frame)]
    assert len(frames) == 2
    assert reader.drops >= 5
    # what is kept is the newest: consecutive recent frames, not the ones from 2 s ago
    assert (frames[1].ts - frames[0].ts).total_seconds() < 0.5
    assert (frames[0].ts - last_seen).total_seconds() > 1.2
    assert time.monotonic() - t_resume < 0.05  # next_batch never blocks
