"""What a keyed (exchanging) Bytewax step costs with 2 workers: full frames vs motion results.

Keyed steps route each item to the worker owning its key, pickling it when that is another
worker. This bench measures, in one run:

* pickle size and dumps+loads time of a 1280×720 BGR picture (what a frame would carry) and of
  a ``MotionResult`` with two boxes;
* wall time of a flow pushing N items through a keyed ``stateful_map``, for pictures and for
  motion results, against the same flow with a non-exchanging ``map``, with 2 workers in one
  process (threads: Timely hands items over by reference, nothing is pickled) and with 2
  processes of 1 worker (``-i``/``-a`` cluster: every item for the other process is pickled and
  sent over TCP).

This is why gtvision keeps frames on the source worker (``docs/dataflow.md``).

    .venv/bin/python bench/exchange.py [--items 300]
"""

from __future__ import annotations

import argparse
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bytewax.operators as op
import numpy as np
from bytewax.dataflow import Dataflow, Stream
from bytewax.testing import TestingSink, TestingSource, cluster_main

from gtvision.events import Box
from gtvision.operators.motion import MotionResult


def pickle_cost(obj: object, n: int = 50) -> tuple[int, float]:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    t0 = time.perf_counter()
    for _ in range(n):
        pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return len(data), (time.perf_counter() - t0) / n * 1000


def run_flow(items: list[Any], keyed: bool) -> float:
    flow = Dataflow("exchange")
    out: list[Any] = []
    s = op.input("in", flow, TestingSource(items, batch_size=4))
    if keyed:
        k = op.key_on("key", s, lambda x: str(x[0] % 2))
        s2 = op.stateful_map("count", k, lambda n, x: ((n or 0) + 1, 1))
        op.output("out", s2, TestingSink(out))
    else:
        op.output("out", op.map("m", s, lambda x: 1), TestingSink(out))
    t0 = time.perf_counter()
    cluster_main(flow, [], 0, worker_count_per_proc=2)
    took = time.perf_counter() - t0
    if len(out) != len(items):
        msg = f"flow emitted {len(out)} items for {len(items)} inputs"
        raise RuntimeError(msg)
    return took


def flow_from_env() -> Dataflow:
    """The flow of one cluster process (``python -m bytewax.run bench.exchange:flow_from_env``)."""
    n, kind, keyed = int(os.environ["XB_ITEMS"]), os.environ["XB_KIND"], os.environ["XB_KEYED"]
    payload = _payload(kind)
    flow = Dataflow("exchange")
    s = op.input("in", flow, TestingSource([(i, payload) for i in range(n)], batch_size=4))
    out: Stream[Any]
    if keyed == "1":
        k = op.key_on("key", s, lambda x: str(x[0] % 2))
        out = op.stateful_map("count", k, lambda c, x: ((c or 0) + 1, 1))
    else:
        out = op.map("m", s, lambda x: 1)
    op.inspect("sink", out, lambda _s, _x: None)
    return flow


def _payload(kind: str) -> Any:
    if kind == "pictures":
        return np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    box = Box(x1=10, y1=20, x2=300, y2=200)
    return MotionResult(1, 2, 3, datetime.now(UTC), (box, box), 0.05, 0.4)


def run_cluster(items: int, kind: str, keyed: bool) -> float:
    ports = [_free_port(), _free_port()]
    addresses = ";".join(f"127.0.0.1:{p}" for p in ports)
    env = {**os.environ, "XB_ITEMS": str(items), "XB_KIND": kind, "XB_KEYED": str(int(keyed))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent)
    cmd = [sys.executable, "-m", "bytewax.run", "exchange:flow_from_env", "-a", addresses]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([*cmd, "-i", str(i)], env=env) for i in range(2)]
    codes = [p.wait(timeout=600) for p in procs]
    if any(codes):
        msg = f"cluster processes exited with {codes}"
        raise RuntimeError(msg)
    return time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=300)
    args = ap.parse_args()
    picture = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    box = Box(x1=10, y1=20, x2=300, y2=200)
    result = MotionResult(1, 2, 3, datetime.now(UTC), (box, box), 0.05, 0.4)
    for name, obj in (("1280x720 BGR picture", picture), ("MotionResult (2 boxes)", result)):
        size, ms = pickle_cost(obj)
        print(f"{name}: pickle {size / 1024:.1f} KiB, dumps+loads {ms:.3f} ms")
    cases: list[tuple[str, Callable[[], list[Any]]]] = [
        ("pictures", lambda: [(i, picture) for i in range(args.items)]),
        ("motion results", lambda: [(i, result) for i in range(args.items)]),
    ]
    for name, make in cases:
        local = run_flow(make(), keyed=False)
        keyed = run_flow(make(), keyed=True)
        print(
            f"{args.items} {name}, 2 workers in 1 process: map {local:.2f} s, keyed "
            f"stateful_map {keyed:.2f} s (+{(keyed - local) / args.items * 1000:.2f} ms per item)"
        )
    for name in ("pictures", "motion results"):
        local = run_cluster(args.items, name, keyed=False)
        keyed = run_cluster(args.items, name, keyed=True)
        print(
            f"{args.items} {name}, 2 processes: map {local:.2f} s, keyed stateful_map "
            f"{keyed:.2f} s (+{(keyed - local) / args.items * 1000:.2f} ms per item)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
