"""Crash recovery of the REAL motion flow: FileSource → motion → incidents → EventSink.

Renders a video with ``--incidents`` moving boxes, replays it uninterrupted into one database,
then SIGKILLs the same replay ``--kills`` times at random points and resumes it from its Bytewax
recovery directory into another, and prints lost / extra / differing event counts against the
uninterrupted run (baseline: the same flow without crashes, measured in this run).

Needs the local PostgreSQL (``GTV_TEST_PG_ADMIN``) and Redis (``GTV_TEST_REDIS``).
Usage: ``.venv/bin/python bench/crash_recovery.py [--incidents 16] [--kills 3] [--seed N]``
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sinks"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import create_database, drop_database  # type: ignore[import-not-found]  # noqa: E402
from crash_harness import run_scenario  # type: ignore[import-not-found]  # noqa: E402

from gtvision.sources.testvideo import make_video, moving_box  # noqa: E402

PG_ADMIN = os.environ.get("GTV_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("GTV_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _drop_keys(prefix: str) -> None:
    """Remove the feed streams the runs wrote under ``prefix``."""
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=16)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--snapshot-s", type=float, default=0.3)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="gtv-crash-") as tmp:
        work = Path(tmp)
        boxes = [
            moving_box(2 + 5 * k, 3.5 + 5 * k, speed=150, size=60) for k in range(args.incidents)
        ]
        video = make_video(
            work / "street.mp4", duration=5 * args.incidents + 4, size=(320, 180), fps=10,
            gop=20, filters=[*boxes, "noise=alls=4:allf=t"],
        )  # fmt: skip
        ref_db, crash_db = f"gtv_bench_ref_{tag}", f"gtv_bench_crash_{tag}"
        ref_dsn = create_database(PG_ADMIN, ref_db)
        crash_dsn = create_database(PG_ADMIN, crash_db)
        try:
            result = run_scenario(
                "motion", video, ref_dsn, crash_dsn, work, REDIS, f"gtvbench:{tag}:",
                kills=args.kills, snapshot_s=args.snapshot_s, rng=random.Random(args.seed),
            )  # fmt: skip
        finally:
            drop_database(PG_ADMIN, ref_db)
            drop_database(PG_ADMIN, crash_db)
            _drop_keys(f"gtvbench:{tag}:")
    print(f"motion flow: {result.summary()}")
    n = max(1, len(result.expected))
    print(
        f"ratio vs uninterrupted run: stored {len(result.got) / n:.3f}, "
        f"identical rows {(len(result.got) - result.differing - len(result.extra)) / n:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
