"""Plate reading inside a Bytewax flow vs the same models called directly, same frames, same run.

Frames are the benchmark photos (``../shared/data/alpr-br-dev``), decoded once into memory. The
direct baseline calls ``PlateReader.read`` in a loop; the flow runs ``TestingSource → read_plates
→ TestingSink`` with the same (warm) reader. Rounds alternate (direct, flow) to spread machine
noise; the ratio is the median of the per-round ratios (the best rounds are printed too).
Bar: flow ÷ direct ≤ 1.2.

Usage: ``.venv/bin/python bench/lpr.py [--frames 12] [--rounds 5] [--backend pt|onnx]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
import cv2
import numpy as np
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from gtvision.config import load_settings
from gtvision.events import Frame, PlateRead
from gtvision.models.store import pull
from gtvision.operators.lpr import PlateReader, read_plates

DATA = next(
    (
        p / "shared" / "data" / "alpr-br-dev"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "data" / "alpr-br-dev").is_dir()
    ),
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alpr-br-dev",
)


def load_frames(n: int) -> list[Frame]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    frames = []
    for i, path in enumerate(sorted(DATA.glob("*.jpg"))[:n]):
        bgr = np.asarray(cv2.imread(str(path)), dtype=np.uint8)
        gray = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        frames.append(
            Frame(
                1, 1, i, start + timedelta(seconds=i), gray, bgr.shape[1], bgr.shape[0], source=bgr
            )
        )
    return frames


def direct(reader: PlateReader, frames: list[Frame]) -> tuple[float, int]:
    start = time.perf_counter()
    reads = sum(len(reader.read(f.picture())) for f in frames)
    return time.perf_counter() - start, reads


def in_flow(reader: PlateReader, frames: list[Frame], models_dir: Path) -> tuple[float, int]:
    out: list[PlateRead] = []
    flow = Dataflow("bench_lpr")
    up = op.input("frames", flow, TestingSource(frames))
    op.output("out", read_plates("read", up, models_dir, reader=reader), TestingSink(out))
    start = time.perf_counter()
    run_main(flow)
    return time.perf_counter() - start, len(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", choices=["pt", "onnx"], default="pt")
    args = parser.parse_args()
    models_dir = load_settings().models_path
    pull(models_dir)
    reader = PlateReader.load(models_dir, backend=args.backend)
    frames = load_frames(args.frames)
    reader.read(frames[0].picture())  # warm-up
    best_direct = best_flow = float("inf")
    ratios: list[float] = []
    for r in range(args.rounds):
        d, n_direct = direct(reader, frames)
        f, n_flow = in_flow(reader, frames, models_dir)
        if n_direct != n_flow:
            print(f"round {r}: reads differ: direct {n_direct}, flow {n_flow}")
            return 1
        best_direct, best_flow = min(best_direct, d), min(best_flow, f)
        ratios.append(f / d)
        print(
            f"round {r}: direct {d * 1000 / len(frames):.1f} ms/frame, "
            f"flow {f * 1000 / len(frames):.1f} ms/frame ({n_flow} reads)"
        )
    ratio = statistics.median(ratios)
    print(f"direct (best round): {best_direct * 1000 / len(frames):.1f} ms/frame")
    print(f"flow   (best round): {best_flow * 1000 / len(frames):.1f} ms/frame")
    print(f"best-round ratio: {best_flow / best_direct:.3f}")
    verdict = "PASS" if ratio <= 1.2 else "FAIL"
    print(f"ratio flow/direct (median of rounds): {ratio:.3f} (bar <= 1.2) {verdict}")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
