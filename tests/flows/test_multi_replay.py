"""Multi-camera replay: several files, a directory or a manifest; one partition per camera.

The bar of issue 18: three files replayed together give the same events (ids) as three live
RTSP cameras fed the same files, with the manifest anchored at each camera's ``camera.online``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gtvision.events import CameraEvent, EventBase, MotionIncident, parse_event
from gtvision.sources.testvideo import make_video, moving_box

from ..conftest import RtspServer
from .test_cli_flows import _env, free_port

GTV = [sys.executable, "-m", "gtvision.cli"]
# (first, last) second of each camera's moving boxes: 2 incidents, 1, 2
MOVES = {
    "cam_a": [(0.4, 1.0), (3.6, 4.4)],
    "cam_b": [(1.5, 3.0)],
    "cam_c": [(0.6, 1.2), (3.8, 4.5)],
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multi")
    return {
        name: make_video(
            root / f"{name}.mp4",
            duration=5,
            size=(320, 240),
            fps=10,
            gop=10,
            bframes=0,
            filters=[moving_box(a, b, speed=80, size=40) for a, b in moves],
        )
        for name, moves in MOVES.items()
    }


def _replay(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*GTV, "replay", *args], capture_output=True, text=True, timeout=timeout, env=_env()
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def _events(path: Path) -> list[EventBase]:
    return [parse_event(line) for line in path.read_text().splitlines()]


def test_files_directory_and_manifest_replay_one_camera_each(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    files = [str(videos[n]) for n in sorted(videos)]
    by_files, by_dir = (tmp_path / f"{n}.jsonl" for n in ("files", "dir"))
    _replay(*files, "--camera-id", "1", "--jsonl", str(by_files), "-q")
    _replay(str(videos["cam_a"].parent), "--camera-id", "1", "-w", "2", "--jsonl", str(by_dir))
    assert by_files.read_text() == by_dir.read_text()  # deterministic, 1 or 2 workers
    events = _events(by_files)
    assert [e.ts for e in events] == sorted(e.ts for e in events)  # merged by event time
    per_camera = {cam: [e for e in events if e.camera_id == cam] for cam in (1, 2, 3)}
    assert [len(per_camera[c]) for c in (1, 2, 3)] == [2, 1, 2]
    # a camera's events are those of its file replayed alone as that camera
    alone = _replay(str(videos["cam_c"]), "--camera-id", "3", "-q")
    assert [parse_event(x).id for x in alone.stdout.splitlines()] == [e.id for e in per_camera[3]]
    # a manifest anchors each camera at its own start
    manifest = tmp_path / "replay.toml"
    manifest.write_text(
        "".join(
            f'[[camera]]\ncamera = {cam}\nfile = "{videos[name]}"\n'
            f'start = "2026-05-01T08:00:{cam:02d}Z"\n\n'
            for cam, name in zip((1, 2, 3), sorted(videos), strict=True)
        )
    )
    anchored = _events_of(_replay("--manifest", str(manifest), "-q").stdout)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    shifted = sorted(
        (e.camera_id, e.start - datetime(2026, 5, 1, 8, 0, e.camera_id, tzinfo=UTC))
        for e in anchored
        if isinstance(e, MotionIncident)
    )
    assert shifted == sorted(
        (e.camera_id, e.start - epoch) for e in events if isinstance(e, MotionIncident)
    )


def _events_of(text: str) -> list[EventBase]:
    return [parse_event(line) for line in text.splitlines()]


def test_manifest_errors_name_the_entry(videos: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"camera,file,start\n7,{videos['cam_a']},yesterday\n")
    proc = subprocess.run(
        [*GTV, "replay", "--manifest", str(bad)], capture_output=True, text=True, env=_env()
    )
    assert proc.returncode == 2
    assert "camera entry 1" in proc.stderr
    assert "start" in proc.stderr
    dup = tmp_path / "dup.csv"
    dup.write_text(f"camera,file\n7,{videos['cam_a']}\n7,{videos['cam_b']}\n")
    proc = subprocess.run(
        [*GTV, "replay", "--manifest", str(dup)], capture_output=True, text=True, env=_env()
    )
    assert proc.returncode == 2
    assert "camera '7' appears twice" in proc.stderr


def test_interrupted_multi_camera_replay_resumes_to_the_same_output(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    files = [str(videos[n]) for n in sorted(videos)]
    full = tmp_path / "full.jsonl"
    _replay(*files, "--jsonl", str(full), "-q")
    out, rec = tmp_path / "out.jsonl", tmp_path / "rec"
    args = [*files, "--realtime", "-r", str(rec), "-s", "0.3", "--jsonl", str(out), "-q"]
    first = subprocess.Popen([*GTV, "replay", *args], env=_env(), stderr=subprocess.PIPE)
    time.sleep(4.0)  # mid-files: some incidents out, others not yet
    first.kill()
    first.wait(timeout=10)
    assert not out.exists()
    _replay(*args)
    assert out.read_text() == full.read_text()


def _wait_for(path: Path, done: object, timeout: float) -> list[EventBase]:
    t0 = time.monotonic()
    events: list[EventBase] = []
    while time.monotonic() - t0 < timeout:
        if path.exists():
            events = [parse_event(x) for x in path.read_text().splitlines() if x.strip()]
            if callable(done) and done(events):
                return events
        time.sleep(0.2)
    pytest.fail(f"live run not done in {timeout}s: {[(e.camera_id, e.type) for e in events]}")


def _dropped(port: int) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return [ln for ln in text.splitlines() if ln.startswith("gtvision_camera_frames_dropped")]


def test_replay_of_three_files_gives_the_ids_of_three_live_cameras(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    names = sorted(videos)
    # each file played once, from its first frame, like a camera seen from its first frame
    server = RtspServer(free_port(), tmp_path / "rtsp.log", files=tuple(videos.values()))
    server.start()
    live = tmp_path / "live.jsonl"
    try:
        urls = ",".join(server.url(n) for n in names)
        metrics_port = free_port()
        run = subprocess.Popen(
            [*GTV, "run", "motion", "--jsonl", str(live), "--poll-s", "0.5"],
            env=_env(GTV_RTSP_URLS=urls, GTV_METRICS_PORT=str(metrics_port)),
            stderr=subprocess.DEVNULL,
        )
        try:
            # every camera's file played to its end, and its 2/1/2 incidents closed
            def done(events: list[EventBase]) -> bool:
                incidents = [e for e in events if isinstance(e, MotionIncident)]
                return len(incidents) >= 5

            events = _wait_for(live, done, 60)
            dropped = _dropped(metrics_port)
        finally:
            run.send_signal(signal.SIGINT)
            run.wait(timeout=20)
    finally:
        server.kill()
    cameras = [1_000_001 + i for i in range(3)]  # GTV_RTSP_URLS cameras, in order
    online: dict[int, datetime] = {}
    for e in events:
        if isinstance(e, CameraEvent) and e.type == "camera.online":
            online.setdefault(e.camera_id, e.ts)
    manifest = tmp_path / "replay.csv"
    manifest.write_text(
        "camera,file,start\n"
        + "".join(
            f"{cam},{videos[n]},{online[cam].isoformat()}\n"
            for cam, n in zip(cameras, names, strict=True)
        )
    )
    replayed = _events_of(_replay("--manifest", str(manifest), "-q").stdout)
    live_ids = sorted(e.id for e in events if isinstance(e, MotionIncident))
    replay_ids = sorted(e.id for e in replayed if isinstance(e, MotionIncident))
    assert len(live_ids) == 5
    assert replay_ids == live_ids, json.dumps(
        {
            "frames the live readers dropped (flow too slow: machine overloaded)": dropped,
            "live": [e.model_dump(mode="json") for e in events if isinstance(e, MotionIncident)],
            "replay": [e.model_dump(mode="json") for e in replayed],
        },
        indent=1,
    )
