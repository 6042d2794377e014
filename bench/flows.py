"""Cost of the analysts' building blocks, as ratios against a baseline run in the same process.

Renders a 30 s 640×360 10 fps street video with cars (:func:`street_video`) and three short
moving-box camera files, then, alternately and ``--runs`` times each, in this process (imports
warm) through ``gtvision.cli.main``:

1. **zones/lines**: ``replay --flow motion`` (baseline: source, motion, incidents) vs the same
   video through a flow with ``track`` + ``zone`` + ``line`` (one ByteTrack tracking step, zone
   membership, line crossing) on the motion results. Ratio = the tracking blocks' overhead on
   a motion flow (bar ≤ 1.25: tracking costs a fraction of decoding + motion detection).
2. **to_sink checks**: the motion flow with ``to_sink`` (every event re-validated) vs the same
   steps with a bare ``op.output`` (bar ≤ 1.05: events are few, checks are cheap).
3. **multi-camera replay**: 3 files in one ``replay`` (3 partitions, 1 worker) vs the three
   files replayed one after the other (bar ≤ 1.10: one process replaces three runs).

Prints the median ratio of each pair and the bars; note the machine's load beside the figures.

    .venv/bin/python bench/flows.py [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gtvision.cli import main
from gtvision.sources.synthetic import SampleCar
from gtvision.sources.testvideo import make_video, moving_box, street_video

FLOWS = """
import bytewax.operators as op
from bytewax.dataflow import Dataflow
from gtvision.flows.api import (
    Line, Zone, line, motion_incidents, to_sink, track, video_front, zone,
)

YARD = Zone(name="yard", points=((0.2, 0.4), (0.8, 0.4), (0.8, 1.0), (0.2, 1.0)))
STOP = Line(name="stop", points=((0.0, 0.75), (1.0, 0.75)))

def tracked(ctx):
    df = Dataflow("tracked")
    v = video_front("v", df, ctx)
    inc = motion_incidents("inc", v.results, ctx)
    tracks = track("t", v.results, ctx)
    to_sink("out", ctx, inc, zone("z", tracks, ctx, zones=[YARD]),
            line("l", tracks, ctx, lines=[STOP]))
    return df

def bare(ctx):
    df = Dataflow("bare")
    v = video_front("v", df, ctx)
    op.output("out", op.merge("m", motion_incidents("inc", v.results, ctx), v.health), ctx.sink)
    return df
"""


def run(argv: list[str]) -> float:
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    if code != 0:
        msg = f"gtvision {' '.join(argv)} exited {code}"
        raise RuntimeError(msg)
    return time.perf_counter() - t0


def pairs(runs: int, base: Callable[[], float], other: Callable[[], float]) -> list[float]:
    ratios = []
    for _ in range(runs):
        b, o = base(), other()
        ratios.append(o / b)
    return ratios


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gtv-bench-flows-") as tmp:
        root = Path(tmp)
        (root / "benchflows.py").write_text(FLOWS)
        sys.path.insert(0, str(root))
        cars = [
            SampleCar(f"AAA{i}A{i}{i}", "mercosul", 1 + 4 * i, 3.5, (40 * i, 70, 150), 0.18)
            for i in range(7)
        ]
        street = street_video(root / "street.mp4", cars, duration=30)
        cams = [
            make_video(root / f"cam{i}.mp4", duration=10, size=(320, 240), fps=10,
                       filters=[moving_box(1 + i, 4 + i, speed=60, size=40)])
            for i in range(3)
        ]  # fmt: skip
        out = ["--jsonl", os.devnull, "-q"]
        motion = ["replay", str(street), "--flow", "motion", *out]
        tracked = ["replay", str(street), "--flow", "benchflows:tracked", *out]
        bare = ["replay", str(street), "--flow", "benchflows:bare", *out]
        run(motion)  # warm-up: imports, first decode
        zones = pairs(args.runs, lambda: run(motion), lambda: run(tracked))
        checks = pairs(args.runs, lambda: run(bare), lambda: run(motion))
        apart = [["replay", str(c), "--camera-id", str(i), *out] for i, c in enumerate(cams)]
        together = ["replay", *map(str, cams), *out]
        multi = pairs(args.runs, lambda: sum(run(a) for a in apart), lambda: run(together))
    load = os.getloadavg()[0]
    for name, ratios, bar in (
        ("zones+lines ÷ motion flow", zones, 1.25),
        ("to_sink ÷ bare output", checks, 1.05),
        ("3 cameras in one replay ÷ 3 replays", multi, 1.10),
    ):
        med = statistics.median(ratios)
        verdict = "met" if med <= bar else "NOT met"
        print(f"{name}: median {med:.3f} (runs {', '.join(f'{r:.3f}' for r in ratios)}); "
              f"bar ≤ {bar}: {verdict}")  # fmt: skip
    print(f"load average (1 min) at the end: {load:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
