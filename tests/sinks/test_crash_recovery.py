"""SIGKILL a file-driven flow at three random points, resume with recovery: same events table.

Flow: the deterministic readings-file flow of ``readings_flow.py`` (file source with resume
state → keyed ``stateful_map`` → plate passes) into ``EventSink`` (Postgres + Redis feed), run
by ``file_flow_main.py`` in a subprocess with Bytewax recovery (0.3 s snapshots); and the REAL
motion flow (``FileSource`` → motion → session-window incidents → ``EventSink``) over a rendered
video, whose motion state (background, gate tail) must resume exactly from the source's
snapshot. ``bench/crash_recovery.py`` runs the same harness with more incidents.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from gtvision.sources.testvideo import make_video, moving_box

from ..conftest import RedisTarget, create_database, drop_database
from .crash_harness import run_scenario
from .readings_flow import write_readings


@pytest.fixture
def two_dbs(pg_admin_dsn: str) -> Iterator[tuple[str, str]]:
    """DSNs of a fresh reference database and a fresh crashed-run database (dropped after)."""
    tag = os.urandom(4).hex()
    names = (f"gtv_crash_ref_{tag}", f"gtv_crash_run_{tag}")
    dsns = [create_database(pg_admin_dsn, name) for name in names]
    yield dsns[0], dsns[1]
    for name in names:
        drop_database(pg_admin_dsn, name)


@pytest.mark.slow
def test_sigkill_three_times_equals_uninterrupted_run(
    tmp_path: Path, two_dbs: tuple[str, str], redis_target: RedisTarget, feed_prefix: str
) -> None:
    path = write_readings(tmp_path / "readings.csv")
    result = run_scenario("readings", path, *two_dbs, tmp_path, redis_target.url, feed_prefix)
    print(result.summary())
    assert len(result.expected) == 180
    assert len(result.killed_at) == 3
    assert all(0 < k < 180 for k in result.killed_at)
    assert result.got == result.expected  # 0 lost, 0 duplicated (id is the primary key), same rows
    assert result.stream_entries == 180  # no duplicate feed entries either


@pytest.mark.slow
def test_motion_flow_sigkilled_three_times_equals_uninterrupted_run(
    tmp_path: Path, two_dbs: tuple[str, str], redis_target: RedisTarget, feed_prefix: str
) -> None:
    incidents = 14
    boxes = [moving_box(2 + 5 * k, 3.5 + 5 * k, speed=150, size=60) for k in range(incidents)]
    video = make_video(
        tmp_path / "street.mp4", duration=5 * incidents + 4, size=(320, 180), fps=10, gop=20,
        filters=[*boxes, "noise=alls=4:allf=t"],
    )  # fmt: skip
    seed = int.from_bytes(os.urandom(4), "big")
    result = run_scenario(
        "motion", video, *two_dbs, tmp_path, redis_target.url, feed_prefix,
        rng=random.Random(seed),
    )  # fmt: skip
    print(f"seed {seed}: {result.summary()}")
    assert len(result.expected) == incidents  # one incident per moving box
    assert len(result.killed_at) == 3
    assert not result.lost
    assert not result.extra
    assert result.differing == 0  # same peak score, frames, box, times: state resumed exactly
    assert result.got == result.expected
    assert result.stream_entries == incidents
