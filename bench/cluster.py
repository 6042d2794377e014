"""Flow cluster speed-up: the LPR flow over N recorded cameras, 2 processes ÷ 1 process.

Input: the synthetic street (``sources/synthetic.py``: 4 cars with Brazilian plates in 34 s)
looped with ``ffmpeg -stream_loop -c copy`` to ``--seconds`` per camera, the same file for
each of ``--cameras`` cameras (camera ids 1..N: the events differ per camera and their ids are
deterministic). Real time off (``gtvision replay`` reads as fast as the flow goes), so the
throughput is the flow's.

Runs, alternately ``--runs`` times each:

* 1 process: ``gtvision replay FILES --flow lpr -w 1``;
* 2 processes: the same with ``-i 0/1 -a "127.0.0.1:p0;127.0.0.1:p1"`` (cameras split between
  them; each process writes its own ``--jsonl``).

Throughput is measured from the events' arrival: the outputs are written as events come
(``--stream``) and polled every 0.1 s; events/s = (events - 1) / (arrival of the last event -
arrival of the first), so process start, imports and model loading do not count. Prints
events/s of both, the ratio (bar **>= 1.7** on this 2-core machine), the CPU used and events
per CPU-second (the cluster's efficiency, which a loaded machine does not distort), whether
both produced exactly the same events (ids), and the load average before, during and after
(the machine is shared, so re-run it when idle). Every process runs with ``GTV_THREADS=1``
(``--threads``): the deployment of one flow process per core, where a process must not run a
detector thread pool as large as the machine; ``--threads 0`` shows the libraries' defaults.

    .venv/bin/python bench/cluster.py [--cameras 4] [--seconds 136] [--runs 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from gtvision.sources.synthetic import sample_video

GTV = [sys.executable, "-m", "gtvision.cli"]


def load() -> str:
    """The load averages (1, 5, 15 min)."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def looped(src: Path, seconds: float, out: Path, start: float = 0.0) -> Path:
    """``src`` repeated (stream copy) from ``start`` (a keyframe) and cut to ``seconds``."""
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "-1",
        "-ss", f"{start}", "-i", str(src), "-t", f"{seconds}", "-c", "copy", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=300)
    return out


def env(threads: int) -> dict[str, str]:
    """The environment of the flows: no database (JSON lines out), ``GTV_THREADS``."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    out["GTV_THREADS"] = str(threads)
    for key in ("GTV_MODEL_DIR", "GTV_CACHE_DIR"):
        if key in os.environ:
            out[key] = os.environ[key]
    return out


def run(
    files: list[Path], processes: int, outdir: Path, threads: int
) -> tuple[float, float, set[str]]:
    """Events/s, CPU cores and event ids of one replay of ``files`` by a cluster."""
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    base = [*GTV, "replay", *map(str, files), "--flow", "lpr", "-w", "1", "-q", "--stream"]
    addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
    cluster = ["-a", addresses] if processes > 1 else []
    t0 = time.monotonic()
    procs = []
    for i in range(processes):
        out = ["--jsonl", str(outdir / f"p{i}.jsonl"), *(["-i", str(i)] if cluster else [])]
        procs.append(
            subprocess.Popen(
                [*base, *cluster, *out], env=env(threads), stderr=subprocess.PIPE, text=True
            )
        )
    handles = [psutil.Process(p.pid) for p in procs]
    last: dict[int, float] = {}
    arrivals: list[float] = []
    while any(p.poll() is None for p in procs):
        for h in handles:
            try:
                t = h.cpu_times()
                last[h.pid] = t.user + t.system
            except psutil.Error:
                pass
        lines = sum(count_lines(outdir / f"p{i}.jsonl") for i in range(processes))
        arrivals.extend([time.monotonic()] * (lines - len(arrivals)))
        time.sleep(0.1)
    wall = time.monotonic() - t0
    cores = sum(last.values()) / wall
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"a replay failed (exit {p.returncode}): {err[-2000:]}")
    ids: set[str] = set()
    for i in range(processes):
        for line in (outdir / f"p{i}.jsonl").read_text().splitlines():
            ids.add(json.loads(line)["id"])
    return (len(arrivals) - 1) / span, cores, ids


def count_lines(path: Path) -> int:
    """Complete lines written to ``path`` so far."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=136.0, help="video per camera")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=1, help="GTV_THREADS of every process (0: all cores)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep videos and outputs here")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="gtv-bench-cluster-"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"before: {load()}; {args.cameras} cameras x {args.seconds:.0f} s, LPR flow, "
        f"GTV_THREADS={args.threads}",
        flush=True,
    )
    street = sample_video(root / "cache")
    video = looped(street, args.seconds, root / "street.mp4")
    files = [root / f"cam{i}.mp4" for i in range(1, args.cameras + 1)]
    for f in files:
        shutil.copyfile(video, f)
    rates: dict[int, list[float]] = {1: [], 2: []}
    per_cpu: dict[int, list[float]] = {1: [], 2: []}
    events: dict[int, set[str]] = {}
    for r in range(args.runs):
        for n in (1, 2):
            rate, cores, ids = run(files, n, root / f"run{n}", args.threads)
            events[n] = ids
            rates[n].append(rate)
            per_cpu[n].append(rate / cores)
            print(
                f"run {r + 1}, {n} process(es): {len(ids)} events, {rate:.3f} events/s, "
                f"{cores:.2f} cores; {load()}",
                flush=True,
            )
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    same = events[1] == events[2]
    ratio = two / one
    print(f"events/s: 1 process {one:.3f}, 2 processes {two:.3f}; ratio {ratio:.2f} (bar >= 1.7)")
    eff = statistics.median(per_cpu[2]) / statistics.median(per_cpu[1])
    print(
        f"events per CPU-second: 2 processes / 1 process = {eff:.2f} (the cluster's own cost; "
        "on a loaded machine more processes also get a larger share of the CPU, which inflates "
        "the ratio above: trust it only when the load average stays below the core count)"
    )
    print(f"same events both ways: {same} ({len(events[1])} vs {len(events[2])})")
    print(f"after: {load()}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ratio >= 1.7 and same else 1


if __name__ == "__main__":
    sys.exit(main())
