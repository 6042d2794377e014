"""FileSource: frames, deterministic times, rate cap, keyframes, resume, pacing, S3."""

from __future__ import annotations

import contextlib
import pickle
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from minio import Minio

from gtvision.config import Settings
from gtvision.events import Frame
from gtvision.operators.motion import MotionResult, MotionSettings, analyze_at_source
from gtvision.sources.file import FileResume, FileSource
from gtvision.sources.testvideo import make_video, moving_box


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s, 15 fps, GOP 15 (a keyframe every second)."""
    path = tmp_path_factory.mktemp("file") / "v.mp4"
    return make_video(path, duration=3, size=(320, 240), gop=15)


def drain(
    src: FileSource, resume: FileResume | int | None = None, limit: float = 30
) -> list[Frame]:
    part = src.build_part("input", src.list_parts()[0], resume)
    out: list[Any] = []
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            try:
                out.extend(part.next_batch())
            except StopIteration:
                return out
            awake = part.next_awake()
            if awake is not None:
                time.sleep(max(0.0, (awake - datetime.now(UTC)).total_seconds()))
        pytest.fail(f"source did not finish in {limit}s")
    finally:
        part.close()


def test_every_frame_with_luma_plane_and_deterministic_times(video: Path) -> None:
    frames = drain(FileSource(video, city_id=2, camera_id=5, analysis_fps=0))
    assert [f.index for f in frames] == list(range(45))
    first = frames[0]
    assert (first.city_id, first.camera_id, first.width, first.height) == (2, 5, 320, 240)
    assert first.ts == datetime(1970, 1, 1, tzinfo=UTC)
    assert frames[15].ts == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert [f.index for f in frames if f.keyframe] == [0, 15, 30]
    with av.open(str(video)) as c:
        ref = next(iter(c.decode(video=0))).to_ndarray()  # yuv420p: Y rows, then U and V
    np.testing.assert_array_equal(first.gray, ref[:240])
    again = drain(FileSource(video, city_id=2, camera_id=5, analysis_fps=0))
    assert [f.ts for f in again] == [f.ts for f in frames]


def test_rate_cap_and_keyframes_only(video: Path) -> None:
    capped = drain(FileSource(video, analysis_fps=5))
    assert [f.index for f in capped] == list(range(0, 45, 3))
    keys = drain(FileSource(video, analysis_fps=0, keyframes_only=True))
    assert [f.index for f in keys] == [0, 15, 30]
    assert all(f.keyframe for f in keys)


def test_anchor_from_start_option_and_creation_time(tmp_path: Path, video: Path) -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    frames = drain(FileSource(video, analysis_fps=1, start=start))
    assert [f.ts for f in frames] == [start + timedelta(seconds=s) for s in (0, 1, 2)]
    tagged = make_video(
        tmp_path / "tagged.mp4", duration=1, size=(160, 120), creation_time="2023-02-03T04:05:06Z"
    )
    first = drain(FileSource(tagged, analysis_fps=1))[0]
    assert first.ts == datetime(2023, 2, 3, 4, 5, 6, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        FileSource(video, start=datetime(2024, 1, 1))  # noqa: DTZ001


def test_resume_from_snapshot_continues_with_the_same_frames(video: Path) -> None:
    full = drain(FileSource(video, analysis_fps=5))
    src = FileSource(video, analysis_fps=5)
    part = src.build_part("input", src.list_parts()[0], None)
    seen: list[Frame] = []
    while len(seen) < 4:
        try:
            seen.extend(i for i in part.next_batch() if isinstance(i, Frame))
        except StopIteration:
            pytest.fail("ended early")
        time.sleep(0.01)
    snapshot = part.snapshot()
    part.close()
    assert snapshot.next_index == seen[-1].index + 1
    rest = drain(FileSource(video, analysis_fps=5), resume=snapshot)
    assert [f.index for f in seen + rest] == [f.index for f in full]
    assert [f.ts for f in seen + rest] == [f.ts for f in full]


def test_realtime_pacing_takes_the_video_duration(video: Path) -> None:
    t0 = time.monotonic()
    frames = drain(FileSource(video, analysis_fps=5, realtime=True))
    elapsed = time.monotonic() - t0
    assert len(frames) == 15
    assert elapsed >= 2.6  # last frame presented at 2.8 s


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    src = FileSource(tmp_path / "nope.mp4")
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4"):
        src.build_part("input", src.list_parts()[0], None)


def test_s3_object_is_fetched_and_decoded(video: Path, s3_target: Any) -> None:
    client = Minio(
        s3_target.endpoint,
        access_key=s3_target.access_key,
        secret_key=s3_target.secret_key,
        secure=False,
    )
    client.fput_object(s3_target.bucket, "recordings/v.mp4", str(video))
    settings = Settings(
        s3_endpoint=s3_target.endpoint,
        s3_access_key=s3_target.access_key,
        s3_secret_key=s3_target.secret_key,  # type: ignore[arg-type]
    )
    url = f"s3://{s3_target.bucket}/recordings/v.mp4"
    frames = drain(FileSource(url, analysis_fps=5, settings=settings))
    assert [f.index for f in frames] == list(range(0, 45, 3))


def test_motion_state_resumes_exactly_from_a_pickled_snapshot(tmp_path: Path) -> None:
    video = make_video(
        tmp_path / "moving.mp4", duration=4, size=(320, 180), filters=[moving_box(0.5, 3)]
    )
    settings = MotionSettings(tail_s=0.4)

    def source() -> FileSource:
        src = FileSource(video, analysis_fps=0)
        assert analyze_at_source(src, lambda _cam: settings)
        return src

    def results(frames: list[Frame]) -> list[MotionResult]:
        assert all(isinstance(f.analysis, MotionResult) for f in frames)
        return [f.analysis for f in frames]

    full = results(drain(source()))
    assert any(r.motion for r in full)
    src = source()
    part = src.build_part("input", src.list_parts()[0], None)
    seen: list[Frame] = []
    while len(seen) < 40:  # mid-motion: the background and the gate's tail matter
        with contextlib.suppress(StopIteration):
            seen.extend(i for i in part.next_batch() if isinstance(i, Frame))
        time.sleep(0.005)
    snapshot = pickle.loads(pickle.dumps(part.snapshot()))
    part.close()
    assert snapshot.next_index == seen[-1].index + 1
    rest = results(drain(source(), resume=snapshot))
    assert results(seen) + rest == full
    plain = drain(FileSource(video, analysis_fps=0), resume=snapshot.next_index)
    assert len(plain) == len(rest)
    assert all(f.analysis is None for f in plain)  # no analyzer attached: frames as decoded
