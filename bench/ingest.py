"""Ingest overhead of ``gtvision replay --flow motion`` vs a plain PyAV decode loop.

Renders 20 s 1280×720 15 fps H.264 files with ffmpeg (a static noisy scene, and the same scene
with a box crossing it for 5 s), then times, alternately and ``--runs`` times each, in this
process (imports warm, so the figure is the per-frame ingest cost):

* baseline: open the file with PyAV and decode every frame (``thread_type='AUTO'``, the same
  threading the replay uses);
* ``gtvision replay FILE --flow motion --jsonl /dev/null`` through ``gtvision.cli.main``.

Prints the median of the per-pair wall-time ratios replay ÷ baseline (bar ≤ 1.10), the same for
CPU time (steadier on a shared, loaded machine), and the motion gate's skip rate on the static
scene (bar ≥ 95 %). For information it also times both as fresh processes, where the
replay additionally pays its imports (pydantic, Bytewax, OpenCV: a fixed ~0.3 s CPU).

    .venv/bin/python bench/ingest.py [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gtvision.sources.testvideo import make_video, moving_box

BASELINE = """
import sys, av
with av.open(sys.argv[1]) as c:
    s = c.streams.video[0]
    s.thread_type = "AUTO"
    n = sum(1 for _ in c.decode(s))
print(n)
"""
GATE = re.compile(r"passed (\d+) of (\d+) analysed frames")


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stderr


def decode_loop(video: Path) -> int:
    import av

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def replay(video: Path) -> str:
    from gtvision.cli import main as gtv_main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = gtv_main(["replay", str(video), "--flow", "motion", "--jsonl", "/dev/null"])
    if code != 0:
        msg = f"replay exited {code}: {err.getvalue()}"
        raise RuntimeError(msg)
    return err.getvalue()


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def clock(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of ``fn()``."""
    t0, c0 = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - t0, _cpu() - c0


@dataclass
class Figures:
    base_wall: float
    replay_wall: float
    wall_ratio: float
    cpu_ratio: float
    stderr: str


def measure(video: Path, runs: int) -> Figures:
    """Alternate baseline and replay; medians of the per-pair ratios (robust to load drift)."""
    err = replay(video)  # warm imports and the page cache
    bw, rw, wr, cr = [], [], [], []
    for _ in range(runs):
        b_wall, b_cpu = clock(lambda: decode_loop(video))
        r_wall, r_cpu = clock(lambda: replay(video))
        bw.append(b_wall)
        rw.append(r_wall)
        wr.append(r_wall / b_wall)
        cr.append(r_cpu / b_cpu)
    med = statistics.median
    return Figures(med(bw), med(rw), med(wr), med(cr), err)


def measure_processes(video: Path, runs: int) -> tuple[float, float]:
    py = sys.executable
    gtv = [py, "-m", "gtvision.cli", "replay", str(video), "--flow", "motion", "-q"]
    gtv += ["--jsonl", "/dev/null"]
    base, repl = [], []
    for _ in range(runs):
        base.append(timed([py, "-c", BASELINE, str(video)])[0])
        repl.append(timed(gtv)[0])
    return statistics.median(base), statistics.median(repl)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="keep the videos in this directory")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        common = {"duration": 20.0, "size": (1280, 720), "fps": 15, "bitrate": "3M"}
        noise = "noise=alls=6:allf=t"
        static = make_video(out / "static.mp4", filters=[noise], **common)  # type: ignore[arg-type]
        moving = make_video(
            out / "moving.mp4",
            filters=[moving_box(8, 13, speed=220, size=160), noise],
            **common,  # type: ignore[arg-type]
        )
        ok = True
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        for name, video in (("static", static), ("moving", moving)):
            f = measure(video, args.runs)
            print(
                f"{name}: decode loop {f.base_wall:.2f} s, replay --flow motion "
                f"{f.replay_wall:.2f} s; median wall ratio {f.wall_ratio:.3f} (bar <= 1.10), "
                f"CPU-time ratio {f.cpu_ratio:.3f}"
            )
            ok &= f.wall_ratio <= 1.10
            pb, pr = measure_processes(video, 1)
            print(
                f"{name} (fresh processes, imports included, info only): decode loop {pb:.2f} s,"
                f" replay {pr:.2f} s, ratio {pr / pb:.3f}"
            )
            m = GATE.search(f.stderr)
            if m is None:
                print(f"could not read the gate figures from replay's stderr: {f.stderr!r}")
                return 1
            passed, total = int(m[1]), int(m[2])
            skip = 1 - passed / total if total else 0.0
            bar = " (bar >= 95%)" if name == "static" else ""
            print(f"{name}: motion gate skipped {skip:.1%} of {total} analysed frames{bar}")
            if name == "static":
                ok &= skip >= 0.95
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
