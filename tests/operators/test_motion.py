"""Motion detector, gate and incidents on synthetic videos rendered by ffmpeg."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from bytewax.testing import TestingSink, run_main

from gtvision.config import Settings
from gtvision.events import Box, EventBase, Frame, MotionIncident, parse_event
from gtvision.flows.context import FlowContext
from gtvision.flows.motion import build
from gtvision.operators.motion import MotionDetector, MotionResult, MotionSettings
from gtvision.sources.file import FileSource
from gtvision.sources.testvideo import brightness_step, make_video, moving_box


def _incidents(
    video: Path, *, settings: MotionSettings | None = None
) -> tuple[list[MotionIncident], FlowContext]:
    out: list[EventBase] = []
    ms = settings or MotionSettings()
    ctx = FlowContext(
        source=FileSource(video, city_id=1, camera_id=7),
        sink=TestingSink(out),
        settings=Settings(),
        replay=True,
        motion_settings=lambda _cam: ms,
    )
    run_main(build(ctx))
    incidents = [e for e in out if isinstance(e, MotionIncident)]
    return incidents, ctx


@pytest.fixture(scope="module")
def moving_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Static 2 s, a box crossing for 3 s (t=2..5), static 3 s, with sensor noise."""
    path = tmp_path_factory.mktemp("motion") / "moving.mp4"
    return make_video(path, duration=8, filters=[moving_box(2, 5), "noise=alls=10:allf=t"])


def test_moving_box_gives_one_incident_matching_the_moving_span(moving_video: Path) -> None:
    incidents, ctx = _incidents(moving_video)
    assert len(incidents) == 1, incidents
    inc = incidents[0]
    t0 = datetime(1970, 1, 1, tzinfo=UTC)
    start, end = (inc.start - t0).total_seconds(), (inc.end - t0).total_seconds()
    assert abs(start - 2.0) <= 0.5, start
    assert abs(end - 5.0) <= 0.5, end
    assert (inc.city_id, inc.camera_id) == (1, 7)
    assert inc.peak_score > 0
    assert inc.box is not None
    assert inc.box.y1 < 180 < inc.box.y2
    # gate: static spans skipped, moving span passed (plus the 1 s tail)
    stats = ctx.gate_stats
    assert stats.total == 40  # 8 s at the 5 fps analysis cap
    assert 15 <= stats.passed[7] <= 22, stats


def test_static_noisy_scene_with_brightness_step_gives_no_incident(tmp_path: Path) -> None:
    video = make_video(
        tmp_path / "static.mp4",
        duration=8,
        filters=["noise=alls=20:allf=t", brightness_step(4.0, 0.25)],
    )
    incidents, ctx = _incidents(video)
    assert incidents == []
    assert ctx.gate_stats.skip_rate() == 1.0


def test_masked_region_motion_is_ignored(moving_video: Path) -> None:
    band = ((0.0, 0.25), (1.0, 0.25), (1.0, 0.8), (0.0, 0.8))  # covers the box's path
    incidents, _ = _incidents(moving_video, settings=MotionSettings(masks=(band,)))
    assert incidents == []


CLUSTER_FLOW = """
import os
from gtvision.config import Settings
from gtvision.flows.context import FlowContext
from gtvision.flows.jsonl import JsonlSink
from gtvision.flows.motion import build
from gtvision.sources.file import FileSource

def flow():
    out = os.environ["XT_OUT"] + "-" + os.environ["XT_PROC"]
    ctx = FlowContext(source=FileSource(os.environ["XT_VIDEO"], camera_id=7),
                      sink=JsonlSink(out), settings=Settings(), replay=True)
    return build(ctx)
"""


def test_two_processes_exchange_motion_results_but_never_frames(
    moving_video: Path, tmp_path: Path
) -> None:
    # Across processes every exchanged item is pickled, and Frame refuses pickling: the
    # flow fails if a frame ever leaves its source worker. The keyed incident step does move
    # MotionResults between the processes (camera 7 may be owned by either).
    (tmp_path / "clusterflow.py").write_text(CLUSTER_FLOW)
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    addresses = ";".join(f"127.0.0.1:{p}" for p in ports)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "XT_VIDEO": str(moving_video)}
    env["XT_OUT"] = str(tmp_path / "out")
    cmd = [sys.executable, "-m", "bytewax.run", "clusterflow:flow", "-a", addresses]
    procs = [
        subprocess.Popen(
            [*cmd, "-i", str(i)], env={**env, "XT_PROC": str(i)}, stderr=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    lines = [
        line
        for i in range(2)
        if (tmp_path / f"out-{i}").exists()
        for line in (tmp_path / f"out-{i}").read_text().splitlines()
    ]
    assert len(lines) == 1
    assert isinstance(parse_event(lines[0]), MotionIncident)


def _frame(gray: np.ndarray, index: int) -> Frame:
    ts = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=index / 5)
    h, w = gray.shape
    return Frame(city_id=1, camera_id=2, index=index, ts=ts, gray=gray, width=w, height=h)


def test_detector_box_in_full_resolution_pixels_and_global_change_recalibrates() -> None:
    base = np.full((720, 1280), 100, np.uint8)
    det = MotionDetector(MotionSettings())
    assert det.detect(_frame(base, 0)).recalibrated
    moved = base.copy()
    moved[300:420, 600:760] = 230
    r = det.detect(_frame(moved, 1))
    assert r.motion
    assert len(r.boxes) == 1
    (box,) = r.boxes
    assert abs(box.x1 - 600) <= 16
    assert abs(box.x2 - 760) <= 16
    assert abs(box.y1 - 300) <= 16
    assert abs(box.y2 - 420) <= 16
    # a uniform brightness jump is compensated: no motion, no recalibration
    brighter = base + np.uint8(40)
    r = det.detect(_frame(brighter, 2))
    assert not r.recalibrated
    assert not r.motion
    # lights on from one side: a non-uniform change of most of the picture recalibrates
    ramp = np.linspace(0, 150, base.shape[1])[None, :]
    lit = np.clip(base + ramp, 0, 255).astype(np.uint8)
    assert det.detect(_frame(lit, 3)).recalibrated
    assert not det.detect(_frame(lit, 4)).motion


def test_motion_result_is_light_and_frame_refuses_pickling() -> None:
    gray = np.zeros((720, 1280), np.uint8)
    r = MotionResult(1, 2, 3, datetime(2024, 1, 1, tzinfo=UTC), (Box(x1=0, y1=0, x2=5, y2=5),))
    assert len(pickle.dumps(r)) < 1000
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(_frame(gray, 0))


def test_invalid_mask_is_rejected_with_its_value() -> None:
    with pytest.raises(ValueError, match=r"\[\(0.0, 0.0\), \(2.0, 0.0\)"):
        MotionSettings(masks=(((0.0, 0.0), (2.0, 0.0), (1.0, 1.0)),))


def test_disabled_motion_passes_every_frame_and_reports_nothing(moving_video: Path) -> None:
    incidents, ctx = _incidents(moving_video, settings=MotionSettings(enabled=False))
    assert incidents == []
    assert ctx.gate_stats.skipped == {}
    assert ctx.gate_stats.passed == {7: 40}
