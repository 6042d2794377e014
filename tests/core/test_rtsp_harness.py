"""The RTSP test harness itself: relay without re-encoding, reconnects, file publishing."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest

from tests.conftest import Publisher, RtspServer, rtsp_status

OPEN = {"options": {"rtsp_transport": "tcp"}, "timeout": (5.0, 3.0)}


def _read_frames(url: str, count: int) -> list[av.VideoFrame]:
    frames: list[av.VideoFrame] = []
    with av.open(url, **OPEN) as container:  # type: ignore[call-overload]
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == count:
                break
    return frames


def _drain(frames: Iterator[av.VideoFrame]) -> None:
    for _ in range(200):
        next(frames)


def _name() -> str:
    return f"cam_{uuid.uuid4().hex[:8]}"


def test_publish_synthetic_and_read_30_frames(
    rtsp_publisher: Callable[..., Publisher],
) -> None:
    pub = rtsp_publisher(_name())
    frames = _read_frames(pub.url, 30)
    assert len(frames) == 30
    assert {(f.width, f.height) for f in frames} == {(1280, 720)}
    assert frames[0].key_frame
    # FFmpeg's RTSP demuxer leaves the very first packet without pts; all later ones have one
    pts = [f.pts for f in frames[1:] if f.pts is not None]
    assert len(pts) == 29
    assert pts == sorted(pts)
    assert len(set(pts)) == 29  # one picture per access unit: no duplicated keyframes


def test_relay_keeps_the_publisher_codec(rtsp_publisher: Callable[..., Publisher]) -> None:
    pub = rtsp_publisher(_name(), size="320x240")
    with av.open(pub.url, **OPEN) as container:  # type: ignore[call-overload]
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        packet = next(p for p in container.demux(stream) if p.size)
        # x264 ultrafast never emits B-frames and the relay keeps its profile (no re-encode)
        assert packet.stream.codec_context.profile in {"Constrained Baseline", "Baseline"}


def test_unknown_name_is_not_found(rtsp_server: RtspServer) -> None:
    assert rtsp_status(rtsp_server.url(_name())) == 404
    with pytest.raises(av.error.HTTPNotFoundError):
        av.open(rtsp_server.url(_name()), **OPEN)  # type: ignore[call-overload]


def test_two_readers_and_publisher_restart(
    own_rtsp_server: RtspServer, rtsp_publisher: Callable[..., Publisher]
) -> None:
    pub = rtsp_publisher(_name(), server=own_rtsp_server, size="320x240")
    with (
        av.open(pub.url, **OPEN) as one,  # type: ignore[call-overload]
        av.open(pub.url, **OPEN) as two,  # type: ignore[call-overload]
    ):
        first = one.decode(video=0)
        second = two.decode(video=0)
        for _ in range(5):
            next(first)
            next(second)
        pub.kill()
        # the publisher is gone: readers reach the end of the stream instead of hanging
        with pytest.raises((StopIteration, av.error.ExitError, av.error.EOFError, OSError)):
            _drain(first)
    assert rtsp_status(pub.url) == 404
    pub.restart()
    assert len(_read_frames(pub.url, 5)) == 5


def test_server_kill_and_restart(
    own_rtsp_server: RtspServer, rtsp_publisher: Callable[..., Publisher]
) -> None:
    pub = rtsp_publisher(_name(), server=own_rtsp_server, size="320x240")
    own_rtsp_server.kill()
    assert rtsp_status(pub.url) == 0
    own_rtsp_server.restart()
    pub.restart()
    assert len(_read_frames(pub.url, 5)) == 5


def test_publish_file_loops(tmp_path: Path, publish_file: Callable[..., Publisher]) -> None:
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc=size=320x240:rate=15:duration=1", "-c:v", "libx264", "-g", "5",
         "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )  # fmt: skip
    pub = publish_file(clip, _name(), loop=True)
    # one second of video looped: 30 frames need at least two passes through the file
    frames = _read_frames(pub.url, 30)
    assert len(frames) == 30
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
