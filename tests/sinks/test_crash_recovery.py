"""SIGKILL a file-driven flow at three random points, resume with recovery: same events table.

Flow: the deterministic readings-file flow of ``readings_flow.py`` (file source with resume
state → keyed ``stateful_map`` → plate passes) into ``EventSink`` (Postgres + Redis feed), run
by ``file_flow_main.py`` in a subprocess with Bytewax recovery (0.3 s snapshots). The same
harness runs the real motion flow in ``bench/crash_recovery.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..conftest import RedisTarget, create_database, drop_database
from .crash_harness import run_scenario
from .readings_flow import write_readings


@pytest.mark.slow
def test_sigkill_three_times_equals_uninterrupted_run(
    tmp_path: Path, pg_admin_dsn: str, redis_target: RedisTarget, feed_prefix: str
) -> None:
    path = write_readings(tmp_path / "readings.csv")
    tag = os.urandom(4).hex()
    ref_db, crash_db = f"gtv_crash_ref_{tag}", f"gtv_crash_run_{tag}"
    ref_dsn = create_database(pg_admin_dsn, ref_db)
    crash_dsn = create_database(pg_admin_dsn, crash_db)
    try:
        result = run_scenario(
            "readings", path, ref_dsn, crash_dsn, tmp_path, redis_target.url, feed_prefix
        )
    finally:
        drop_database(pg_admin_dsn, ref_db)
        drop_database(pg_admin_dsn, crash_db)
    print(result.summary())
    assert len(result.expected) == 180
    assert len(result.killed_at) == 3
    assert all(0 < k < 180 for k in result.killed_at)
    assert result.got == result.expected  # 0 lost, 0 duplicated (id is the primary key), same rows
    assert result.stream_entries == 180  # no duplicate feed entries either
