"""Sweep of the adaptive motion threshold ``max(floor, k × σ)`` over generated scenes.

Every clip of :mod:`gtvision.sources.motionscenes` (640×360, 5 fps, 12 s) is fed once to one
:class:`MotionDetector` per ``(k, floor)`` pair (same frames for all). Printed per pair:

* ``det Δ=c``: share of the frames with the object wholly in view in which a motion box overlaps
  it, over contrasts ``±c`` (brighter and darker), the seeds and noise σ ≤ 3 (the issue's bar
  is Δ ≥ 12 at σ ≤ 3); ``det σ>3`` the same for Δ = 12 at σ 4.5 and 6;
* ``false <kind>``: frames with motion in the clips without a moving object, over the seeds and
  σ 0, 3, 6, and for ``static`` also σ 12 and 20 (a camera at night: what ``k`` guards); the bar
  is 0 (a frame with motion can open an incident).

``--fixed 25`` adds the old fixed threshold as a row.

    .venv/bin/python bench/motion_sweep.py [--seeds 2] [--k 3 4 5 6] [--floor 6 8 10]
        [--min-area 30 45]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from gtvision.events import Frame
from gtvision.operators.motion import MotionDetector, MotionResult, MotionSettings
from gtvision.sources.motionscenes import KINDS, SceneFrame, SceneSpec, frames

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONTRASTS = (8, 10, 12, 15, 20, 30)
LOW_NOISE = (0.0, 1.5, 3.0)
HIGH_NOISE = (4.5, 6.0)
NIGHT_NOISE = (12.0, 20.0)
"""Extra static clips (a camera at night): what ``k`` is for."""


def hit(result: MotionResult, truth: tuple[int, int, int, int]) -> bool:
    x1, y1, x2, y2 = truth
    return any(b.x1 < x2 and b.x2 > x1 and b.y1 < y2 and b.y2 > y1 for b in result.boxes)


def run(spec: SceneSpec, detectors: list[MotionDetector]) -> list[tuple[int, int, int]]:
    """Per detector: frames with motion, frames with the object in view, of them hit."""
    out = [[0, 0, 0] for _ in detectors]
    f: SceneFrame
    for i, f in enumerate(frames(spec)):
        frame = Frame(1, 1, i, T0 + timedelta(seconds=f.t), f.gray, spec.width, spec.height)
        for det, acc in zip(detectors, out, strict=True):
            r = det.detect(frame)
            acc[0] += r.motion
            if f.truth is not None:
                acc[1] += 1
                acc[2] += hit(r, f.truth)
    return [(a, b, c) for a, b, c in out]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--k", type=float, nargs="+", default=[3.0, 4.0, 5.0, 6.0])
    ap.add_argument("--floor", type=float, nargs="+", default=[6.0, 8.0, 9.0, 10.0, 12.0])
    ap.add_argument("--min-area", type=int, nargs="+", default=[30, 45])
    ap.add_argument("--fixed", type=int, nargs="*", default=[25])
    args = ap.parse_args()
    pairs: list[tuple[str, MotionSettings]] = [
        (
            f"k={k:g} floor={fl:g} area={a}",
            MotionSettings(noise_k=k, threshold_floor=fl, min_area=a),
        )
        for k, fl, a in itertools.product(args.k, args.floor, args.min_area)
    ] + [(f"fixed {t}", MotionSettings(threshold=t)) for t in args.fixed]
    seeds = range(args.seeds)
    # detected[name][(contrast, noise class)] = [in view, hit]
    detected: dict[str, dict[tuple[int, str], list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    false: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    t0 = time.perf_counter()
    for c, sigma, seed, sign in itertools.product(
        CONTRASTS, LOW_NOISE + HIGH_NOISE, seeds, (1, -1)
    ):
        if sigma in HIGH_NOISE and c != 12:
            continue
        spec = SceneSpec("object", sigma, sign * c, seconds=12, seed=seed)
        res = run(spec, [MotionDetector(s) for _, s in pairs])
        for (name, _), (_, inview, hits) in zip(pairs, res, strict=True):
            cell = detected[name][(c, "low" if sigma in LOW_NOISE else "high")]
            cell[0] += inview
            cell[1] += hits
    kinds = [k for k in KINDS if k != "object"]
    clips = [*itertools.product(kinds, (0.0, 3.0, 6.0), seeds)]
    clips += [("static", sigma, seed) for sigma, seed in itertools.product(NIGHT_NOISE, seeds)]
    for kind, sigma, seed in clips:
        spec = SceneSpec(kind, sigma, seconds=12, seed=seed)
        res = run(spec, [MotionDetector(s) for _, s in pairs])
        for (name, _), (moving, _, _) in zip(pairs, res, strict=True):
            false[name][kind] += moving
    head = [f"det Δ={c}" for c in CONTRASTS] + ["det σ>3"] + [f"false {k}" for k in kinds]
    print(f"| setting | {' | '.join(head)} |")
    print("|" + " --- |" * (len(head) + 1))
    for name, _ in pairs:
        cells = []
        for c in CONTRASTS:
            n, h = detected[name][(c, "low")]
            cells.append(f"{h / n:.2f}" if n else "-")
        n, h = detected[name][(12, "high")]
        cells.append(f"{h / n:.2f}" if n else "-")
        cells += [str(false[name][k]) for k in kinds]
        print(f"| {name} | {' | '.join(cells)} |")
    n = len(seeds) * 60
    print(f"\n{3 * n} frames per 'false' column ({5 * n} for static: also σ 12 and 20)")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
