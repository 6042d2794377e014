"""``gtvision replay`` and ``gtvision run`` as subprocesses, on real files, relay and database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gtvision.events import CameraEvent, MotionIncident, parse_event
from gtvision.sources.testvideo import make_video, moving_box

from ..conftest import interrupt

GTV = [sys.executable, "-m", "gtvision.cli"]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "moving.mp4"
    return make_video(path, duration=7, filters=[moving_box(2, 4), "noise=alls=8:allf=t"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update(extra)
    return env


def _replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GTV, "replay", *args], capture_output=True, text=True, timeout=120, env=env or _env()
    )


def test_replay_writes_typed_events_with_stable_ids(video: Path, tmp_path: Path) -> None:
    out1, out2 = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (out1, out2):
        proc = _replay(str(video), "--flow", "motion", "--camera-id", "9", "--jsonl", str(out))
        assert proc.returncode == 0, proc.stderr
    events = [parse_event(line) for line in out1.read_text().splitlines()]
    assert len(events) == 1
    (inc,) = events
    assert isinstance(inc, MotionIncident)
    assert inc.camera_id == 9
    assert out1.read_text() == out2.read_text()
    assert "motion gate passed" in proc.stderr


def test_replay_to_stdout_with_start_time(video: Path) -> None:
    proc = _replay(str(video), "--start", "2024-05-01T10:00:00Z", "-q")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["start"].startswith("2024-05-01T10:00:02")


def test_replay_custom_flow_module(video: Path, tmp_path: Path) -> None:
    (tmp_path / "myflow.py").write_text(
        "import bytewax.operators as op\n"
        "from bytewax.dataflow import Dataflow\n"
        "from gtvision.events import CameraEvent\n"
        "from gtvision.flows.api import to_sink, video_front\n\n"
        "def build(ctx):\n"
        "    flow = Dataflow('mine')\n"
        "    front = video_front('video', flow, ctx)\n"
        "    ev = op.map('ev', front.gated, lambda mf: CameraEvent(type='camera.online',\n"
        "        city_id=0, camera_id=mf.frame.camera_id, ts=mf.frame.ts, reason='moving'))\n"
        "    to_sink('out', ctx, ev)\n"
        "    return flow\n"
    )
    env = _env(PYTHONPATH=str(tmp_path))
    proc = _replay(str(video), "--flow", "myflow:build", "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    events = [parse_event(line) for line in proc.stdout.splitlines()]
    assert events
    assert all(isinstance(e, CameraEvent) and e.reason == "moving" for e in events)


def test_replay_errors_are_one_clear_line(video: Path, tmp_path: Path) -> None:
    proc = _replay(str(video), "--flow", "nosuch")
    assert proc.returncode == 2
    assert "unknown flow 'nosuch'" in proc.stderr
    proc = _replay(str(tmp_path / "missing.mp4"))
    assert proc.returncode == 2
    assert "video file not found" in proc.stderr
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 5000)
    proc = _replay(str(junk))
    assert proc.returncode == 1
    assert "gtvision: replay of" in proc.stderr
    assert "cannot decode" in proc.stderr
    proc = _replay(str(video), "--start", "yesterday")
    assert proc.returncode == 2
    assert "--start expects an ISO time" in proc.stderr


def _events(path: Path) -> list[CameraEvent]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        event = parse_event(line)
        if isinstance(event, CameraEvent):
            out.append(event)
    return out


def _wait(path: Path, pred: Callable[[list[CameraEvent]], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred(_events(path)):
            return time.monotonic() - t0
        time.sleep(0.1)
    seen = [(e.camera_id, e.type, e.reason) for e in _events(path)]
    pytest.fail(f"not seen within {timeout}s: {seen}")


def test_run_picks_up_added_and_removed_cameras(
    fresh_pg_dsn: str, rtsp_publisher: Callable[..., Any], tmp_path: Path
) -> None:
    pub_a, pub_b = rtsp_publisher("run-a"), rtsp_publisher("run-b")
    out = tmp_path / "events.jsonl"
    # camera b is a table camera on loopback: the reader's address guard must allow it
    env = _env(
        GTV_DATABASE_URL=fresh_pg_dsn,
        GTV_RTSP_URLS=pub_a.url,
        GTV_CAMERA_ALLOW_CIDRS="127.0.0.1/32",
    )
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [*GTV, "run", "motion", "--jsonl", str(out), "--poll-s", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env_cam = 1_000_001
    try:
        _wait(
            out,
            lambda ev: any(e.camera_id == env_cam and e.type == "camera.online" for e in ev),
            30,
        )
        with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
            city = conn.execute("INSERT INTO cities (name) VALUES ('c') RETURNING id").fetchone()
            assert city is not None
            row = conn.execute(
                "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, 'b', %s) RETURNING id",
                (city[0], pub_b.url),
            ).fetchone()
            assert row is not None
            cam_b = int(row[0])
        took = _wait(
            out, lambda ev: any(e.camera_id == cam_b and e.type == "camera.online" for e in ev), 5
        )
        assert took <= 5
        with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM cameras WHERE id = %s", (cam_b,))
        _wait(
            out,
            lambda ev: any(e.camera_id == cam_b and e.reason == "removed" for e in ev),
            5,
        )
        time.sleep(1)
        assert proc.poll() is None, (tmp_path / "run.log").read_text()
        assert not [e for e in _events(out) if e.camera_id == env_cam and e.type != "camera.online"]
    finally:
        interrupt(proc)
        log.close()


def test_interrupted_replay_resumes_from_its_recovery_snapshot(tmp_path: Path) -> None:
    video = make_video(
        tmp_path / "two.mp4",
        duration=8,
        filters=[moving_box(1, 2.5), moving_box(5.5, 7)],
    )
    full = _replay(str(video), "--jsonl", str(tmp_path / "full.jsonl"), "-q")
    assert full.returncode == 0, full.stderr
    want = {parse_event(x).id for x in (tmp_path / "full.jsonl").read_text().splitlines()}
    assert len(want) == 2
    rec, out = tmp_path / "rec", tmp_path / "out.jsonl"
    args = [str(video), "--realtime", "-r", str(rec), "--jsonl", str(out)]
    env = _env(GTV_SNAPSHOT_INTERVAL_S="0.3")  # the default of -s (10 s would leave no snapshot)
    first = subprocess.Popen([*GTV, "replay", *args, "-q"], env=env, stderr=subprocess.PIPE)
    time.sleep(5.5)  # mid-file: the first incident is out, the second not yet
    first.kill()
    first.wait(timeout=10)
    assert out.with_name("out.jsonl.partial").exists()  # kept for the resumed run
    assert not out.exists()
    second = _replay(*args, env=env)
    assert second.returncode == 0, second.stderr
    got = [parse_event(x).id for x in out.read_text().splitlines()]
    assert sorted(got) == sorted(want)  # each once: the resumed run completes the output
    analysed = int(second.stderr.split(" of ")[1].split()[0])
    assert 0 < analysed < 35  # resumed mid-file, not from frame 0 (40 frames at 5 fps)


def test_run_with_two_workers_reads_cameras_of_both_shards(
    rtsp_publisher: Callable[..., Any], tmp_path: Path
) -> None:
    pubs = [rtsp_publisher("w2-a"), rtsp_publisher("w2-b")]
    out = tmp_path / "events.jsonl"
    env = _env(GTV_RTSP_URLS=",".join(p.url for p in pubs))
    port = free_port()
    proc = subprocess.Popen(
        [*GTV, "run", "motion", "-w", "2", "--jsonl", str(out), "--metrics-port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        ids = {1_000_001, 1_000_002}  # shards 1 and 0 of 2
        _wait(out, lambda ev: ids <= {e.camera_id for e in ev if e.type == "camera.online"}, 30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        for cam in ids:
            assert f'gtvision_camera_online{{camera="{cam}"}} 1.0' in text
            assert f'gtvision_camera_frames_read_total{{camera="{cam}"}}' in text
            assert f'gtvision_camera_frames_analysed_total{{camera="{cam}"}}' in text
        assert "gtvision_motion_gate_frames_total" in text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
