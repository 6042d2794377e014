"""Bar: ``gtvision replay --flow lpr`` on a video of the ALPR dev photos.

Each photo is shown 2 s with a slow pan at 10 fps, then 1 s of black. A photo counts as right
when exactly one ``lpr.detected`` of its time window carries its plate and no other pass of the
window is a near-duplicate of it (OCR distance <= 2). Passes of other vehicles visible in a photo
(a few photos show a second plate) are not duplicates; they are reported. The figures go to
stderr (``pytest -s``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from gtvision.config import load_settings
from gtvision.events import PlatePass, parse_event
from gtvision.models.store import detector_path
from gtvision.operators.lpr.ocrdist import ocr_distance

from .conftest import PhotoVideo

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def score(video: PhotoVideo, passes: list[PlatePass]) -> tuple[int, list[str], int]:
    """(photos right, problems, passes of other vehicles)."""
    right, problems, others = 0, [], 0
    for i, plate in enumerate(video.plates):
        lo, hi = i * video.period_s, i * video.period_s + video.show_s + 0.5
        window = [p for p in passes if lo <= (p.first_seen - START).total_seconds() < hi]
        exact = [p for p in window if p.plate == plate]
        near = [p for p in window if p.plate != plate and ocr_distance(p.plate, plate) <= 2]
        others += len(window) - len(exact) - len(near)
        if len(exact) == 1 and not near:
            right += 1
        else:
            got = ", ".join(f"{p.plate}x{p.reads}" for p in window) or "nothing"
            problems.append(f"{plate}: {got}")
    return right, problems, others


@dataclass(frozen=True)
class ReplayScore:
    """Outcome of one replay of the photo video."""

    right: int
    total: int
    problems: list[str]


@pytest.fixture(scope="module")
def replay_score(alpr_dev_video: PhotoVideo) -> ReplayScore:
    """Replay the photo video once through ``gtvision replay --flow lpr`` and score it."""
    if not detector_path(load_settings().models_path).is_file():
        pytest.fail("the plate detector is not cached: run `gtvision models pull` first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    for key in ("GTV_MODEL_DIR", "GTV_CACHE_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    began = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, "-m", "gtvision.cli", "replay", str(alpr_dev_video.path),
            "--flow", "lpr", "--jsonl", "-", "--start", START.isoformat(),
        ],
        capture_output=True, text=True, env=env, timeout=1800, check=False,
    )  # fmt: skip
    took = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [parse_event(line) for line in proc.stdout.splitlines() if line.strip()]
    passes = [e for e in events if isinstance(e, PlatePass)]
    assert len({p.id for p in passes}) == len(passes)
    n = len(alpr_dev_video.plates)
    right, problems, others = score(alpr_dev_video, passes)
    print(
        f"\nlpr replay bar: {right}/{n} photos right ({right / n:.1%}), {len(passes)} passes,"
        f" {others} of other vehicles, replay {took:.0f} s for"
        f" {n * alpr_dev_video.period_s:.0f} s of video; problems: {problems}",
        file=sys.stderr,
    )
    return ReplayScore(right=right, total=n, problems=problems)


@pytest.mark.slow
def test_replay_one_pass_per_photo_issue_bar(replay_score: ReplayScore) -> None:
    # issue 4 bar: >= 98% of the photos (56/57). Measured 56/57 on 2026-12-02; the one miss is
    # FZB9581, whose ground-truth label is wrong (the plate in the photo reads FBZ9581).
    assert replay_score.right / replay_score.total >= 0.98, replay_score.problems
