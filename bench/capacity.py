"""Cameras per core: ``gtvision run`` over N RTSP cameras vs a bare PyAV reader of the same streams.

For each point of the matrix (flow × resolution × decode mode × N cameras) the script publishes N
looping files to a private RTSP relay (``tests/rtsp_server.py``; ffmpeg ``-re -stream_loop -1
-c copy``, so publishing costs almost nothing), registers them as cameras in a private
PostgreSQL database, then measures over ``--window`` seconds each, one after the other:

* **bare**: ``bench/bare_reader.py`` decoding the same N streams (keyframes only when the point
  is keyframe-only): the decode floor;
* **flow**: ``gtvision run FLOW`` (JSON lines out, metrics on a private port): CPU time of the
  process (cores), RSS, frames read and dropped by its readers
  (``gtvision_camera_frames_dropped_total``), cameras offline or stalled during the window.

Scene (both flows): the synthetic street (a car with a plate every 8 s on a static street) with
temporal sensor noise, 15 fps, GOP 30, ~2 Mbit/s at 720p. Analysis at 5 fps (the default).
N grows 1, 2, 4, … up to ``--max-cameras`` while the flow keeps up (no drop, no stall, CPU below
90 % of the machine). With N = 0 it also measures the idle flow.

Bars (motion flow): CPU ÷ bare decode ≤ 1.15 at 16 cameras 720p and ≤ 2 at 1 camera; 0 drops,
0 stalls; RSS per camera ≤ 40 MB; idle flow < 0.03 cores. The load average is printed with every
line: the machine is shared; re-run on an idle machine for the figures that count.

    .venv/bin/python bench/capacity.py [--window 40] [--max-cameras 32] [--flows motion,lpr]
        [--sizes 720p,360p] [--modes full,keyframes] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from gtvision.schema import upgrade
from gtvision.sources.synthetic import sample_video

ROOT = Path(__file__).resolve().parents[1]
RELAY = ROOT / "tests" / "rtsp_server.py"
BARE = ROOT / "bench" / "bare_reader.py"
GTV = [sys.executable, "-m", "gtvision.cli"]
SIZES = {"720p": (1280, 720), "360p": (640, 360)}
PG_ADMIN = os.environ.get("GTV_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
_DROPS = re.compile(r'^gtvision_camera_frames_dropped_total\{camera="\d+"\} ([0-9.e+]+)$', re.M)
_READ = re.compile(r'^gtvision_camera_frames_read_total\{camera="\d+"\} ([0-9.e+]+)$', re.M)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Point:
    """One measured point of the matrix."""

    flow: str
    size: str
    mode: str
    cameras: int
    flow_cores: float
    bare_cores: float
    ratio: float
    rss_mb: float
    rss_per_camera_mb: float
    frames_read: int
    drops: int
    stalled: int
    offline: int
    load: str

    @property
    def keeps_up(self) -> bool:
        return self.drops == 0 and self.stalled == 0 and self.offline == 0


def scene(size: str, cache: Path) -> Path:
    """The H.264 file the cameras publish: the synthetic street with sensor noise.

    A static street where a car with a plate passes every 8 s (motion and plates), with
    temporal noise so the stream costs what a real camera's does to decode (about 2 Mbit/s at
    720p, 0.7 at 360p; a noiseless synthetic scene compresses to almost nothing).
    """
    w, h = SIZES[size]
    out = cache / f"street-{size}.mp4"
    if out.exists():
        return out
    street = sample_video(cache)
    rate = "2M" if h >= 720 else "700k"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(street),
           "-vf", f"scale={w}:{h},noise=alls=6:allf=t", "-c:v", "libx264", "-preset", "veryfast",
           "-b:v", rate, "-maxrate", rate, "-bufsize", rate, "-g", "30", "-r", "15",
           "-pix_fmt", "yuv420p", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=600)
    return out


@contextmanager
def relay(tmp: Path) -> Iterator[int]:
    """A private RTSP relay; yields its port."""
    port = free_port()
    log = (tmp / "relay.log").open("wb")
    proc = subprocess.Popen(
        ["/usr/bin/python3", str(RELAY), "--port", str(port)], stdout=subprocess.PIPE, stderr=log
    )
    assert proc.stdout is not None
    if not proc.stdout.readline().startswith(b"READY"):
        sys.exit(f"the RTSP relay did not start: see {tmp / 'relay.log'}")
    try:
        yield port
    finally:
        proc.kill()
        proc.wait()
        log.close()


@contextmanager
def publishers(port: int, video: Path, n: int, tmp: Path) -> Iterator[list[str]]:
    """``n`` ffmpeg publishers of ``video`` (looped, stream copy); yields the read URLs."""
    procs, urls = [], []
    log = (tmp / "publish.log").open("ab")
    for k in range(n):
        name = f"cap{k}"
        target = f"rtsp://127.0.0.1:{port}/pub/{name}"
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re",
               "-stream_loop", "-1", "-i", str(video), "-an", "-c:v", "copy",
               "-rtsp_transport", "tcp", "-f", "rtsp", target]  # fmt: skip
        procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log))
        urls.append(f"rtsp://127.0.0.1:{port}/{name}")
    time.sleep(2.0 + 0.1 * n)
    try:
        yield urls
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        log.close()


@contextmanager
def database() -> Iterator[str]:
    """A private PostgreSQL database with the schema; dropped at the end."""
    name = f"gtv_bench_capacity_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(dsn)
    try:
        yield dsn
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def set_cameras(dsn: str, urls: list[str], keyframes_only: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM cameras")
        city = (
            conn.execute(
                "INSERT INTO cities (name) VALUES ('bench') ON CONFLICT DO NOTHING RETURNING id"
            ).fetchone()
            or conn.execute("SELECT id FROM cities WHERE name = 'bench'").fetchone()
        )
        assert city is not None
        for k, url in enumerate(urls):
            conn.execute(
                "INSERT INTO cameras (city_id, name, stream_url, keyframes_only) "
                "VALUES (%s, %s, %s, %s)",
                (city[0], f"cap{k}", url, keyframes_only),
            )


def cpu_of(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def measure(proc: subprocess.Popen[Any], window: float) -> tuple[float, float]:
    """Cores used by ``proc`` over ``window`` seconds, and its RSS (MB) at the end."""
    ps = psutil.Process(proc.pid)
    c0, t0 = cpu_of(ps), time.monotonic()
    time.sleep(window)
    c1, t1 = cpu_of(ps), time.monotonic()
    return (c1 - c0) / (t1 - t0), ps.memory_info().rss / 1e6


def bare(urls: list[str], keyframes: bool, window: float, warmup: float) -> float:
    if not urls:
        return 0.0
    cmd = [sys.executable, str(BARE), *urls, *(["--keyframes-only"] if keyframes else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        time.sleep(warmup)
        cores, _ = measure(proc, window)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    return cores


def scrape(port: int, wait_s: float = 60.0) -> tuple[int, int]:
    """Frames read and dropped by every camera reader of a flow process (waits for it)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    read = sum(float(v) for v in _READ.findall(text))
    drops = sum(float(v) for v in _DROPS.findall(text))
    return int(read), int(drops)


def health(path: Path) -> tuple[int, set[int]]:
    """(stalled + offline events, cameras online) in the flow's JSON lines so far."""
    bad, online = 0, set()
    if path.exists():
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event["type"] in ("camera.stalled", "camera.offline"):
                bad += 1
            elif event["type"] == "camera.online":
                online.add(int(event["camera_id"]))
    return bad, online


def flow_point(
    flow: str, dsn: str, n: int, window: float, warmup: float, tmp: Path
) -> tuple[float, float, int, int, int, int]:
    """(cores, RSS MB, frames read, drops, stalled, offline) of ``gtvision run FLOW``."""
    out = tmp / f"flow-{uuid.uuid4().hex[:6]}.jsonl"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env |= {"GTV_DATABASE_URL": dsn, "GTV_CAMERA_ALLOW_CIDRS": "127.0.0.1/32"}
    for key in ("GTV_MODEL_DIR", "GTV_CACHE_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    cmd = [*GTV, "run", flow, "--jsonl", str(out), "--metrics-port", str(port)]
    log = (tmp / "flow.log").open("ab")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    try:
        scrape(port)  # up and serving
        deadline = time.monotonic() + 60 + 2 * n
        while time.monotonic() < deadline and len(health(out)[1]) < n:
            time.sleep(0.5)
        time.sleep(warmup)
        bad0, online = health(out)
        read0, drops0 = scrape(port)
        cores, rss = measure(proc, window)
        read1, drops1 = scrape(port)
        bad1, _ = health(out)
        offline = n - len(online)
        stalled = bad1 - bad0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return cores, rss, read1 - read0, drops1 - drops0, stalled, offline


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so the relay, publishers and database are cleaned up


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--max-cameras", type=int, default=32)
    parser.add_argument("--flows", default="motion,lpr")
    parser.add_argument("--sizes", default="720p,360p")
    parser.add_argument("--modes", default="full,keyframes")
    parser.add_argument("--lpr-max-cameras", type=int, default=8)
    parser.add_argument(
        "--counts", default="", help="camera counts to measure (e.g. 1,16) instead of doubling"
    )
    parser.add_argument("--json", type=Path, default=None, help="write every point here")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="gtv-bench-capacity-"))
    points: list[Point] = []
    print(f"cores {os.cpu_count()}, load {load()}, window {args.window:.0f} s", flush=True)
    print("flow    size  mode       N  flow cores  bare cores  ratio  RSS MB  MB/cam  read"
          "  drops stalls offline  load", flush=True)  # fmt: skip
    with ExitStack() as stack:
        port = stack.enter_context(relay(tmp))
        dsn = stack.enter_context(database())
        idle_cores, idle_rss, *_ = flow_point("motion", dsn, 0, args.window, args.warmup, tmp)
        print(f"idle flow (no camera): {idle_cores:.3f} cores (bar < 0.03), RSS {idle_rss:.0f} MB;"
              f" load {load()}", flush=True)  # fmt: skip
        for flow in args.flows.split(","):
            for size in args.sizes.split(","):
                video = scene(size, tmp)
                for mode in args.modes.split(","):
                    top = args.max_cameras if flow == "motion" else args.lpr_max_cameras
                    counts = [int(c) for c in args.counts.split(",") if c] or [
                        2**k for k in range(top.bit_length()) if 2**k <= top
                    ]
                    for n in counts:
                        with publishers(port, video, n, tmp) as urls:
                            set_cameras(dsn, urls, mode == "keyframes")
                            b = bare(urls, mode == "keyframes", args.window, args.warmup)
                            f_cores, rss, read, drops, stalled, offline = flow_point(
                                flow, dsn, n, args.window, args.warmup, tmp
                            )
                        p = Point(flow, size, mode, n, f_cores, b, f_cores / b if b else 0.0,
                                  rss, (rss - idle_rss) / n, read, drops, stalled, offline,
                                  load())  # fmt: skip
                        points.append(p)
                        print(f"{flow:7s} {size:5s} {mode:9s} {n:2d}  {f_cores:10.3f}  {b:10.3f}"
                              f"  {p.ratio:5.2f}  {rss:6.0f}  {p.rss_per_camera_mb:6.1f}"
                              f"  {read:5d} {drops:5d} {stalled:6d} {offline:7d}  {p.load}",
                              flush=True)  # fmt: skip
                        if not args.counts and (
                            not p.keeps_up or f_cores > 0.9 * (os.cpu_count() or 1)
                        ):
                            break
    shutil.rmtree(tmp, ignore_errors=True)
    bars = []
    for p in points:
        if (p.flow, p.size, p.mode) == ("motion", "720p", "full") and p.cameras in (1, 16):
            limit = 2.0 if p.cameras == 1 else 1.15
            bars.append((f"motion 720p x{p.cameras}: ratio {p.ratio:.2f} <= {limit}",
                         p.ratio <= limit))  # fmt: skip
    motion = [p for p in points if p.flow == "motion"]
    bars.append((f"idle flow {idle_cores:.3f} < 0.03 cores", idle_cores < 0.03))
    if motion:
        ok = all(p.keeps_up for p in motion if p.cameras <= 16)
        bars.append(("motion: 0 drops, 0 stalls up to 16 cameras", ok))
        per_cam = max(p.rss_per_camera_mb for p in motion)
        bars.append((f"motion RSS per camera {per_cam:.1f} MB <= 40", per_cam <= 40))
    for text, ok in bars:
        print(f"{'MET' if ok else 'NOT MET'}: {text}")
    print(f"load at the end {load()}")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(p) for p in points], indent=1))
    return 0 if all(ok for _, ok in bars) else 1


if __name__ == "__main__":
    sys.exit(main())
