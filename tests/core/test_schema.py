from __future__ import annotations

import subprocess
import sys

import psycopg

from gtvision.schema import current_version, migrations, upgrade


def test_upgrade_twice_is_noop(fresh_pg_dsn: str) -> None:
    assert upgrade(fresh_pg_dsn) == []  # the fixture already applied everything
    latest = migrations()[-1].version
    assert current_version(fresh_pg_dsn) == latest
    with psycopg.connect(fresh_pg_dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {
        "cities",
        "users",
        "cameras",
        "events",
        "outbox",
        "audit_log",
        "hotlists",
        "recordings",
        "schema_migrations",
    } <= tables


def test_two_concurrent_upgrades(pg_admin_dsn: str) -> None:
    from tests.conftest import _with_db, drop_database

    name = "gtv_test_concurrent_" + __import__("uuid").uuid4().hex[:6]
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_db(pg_admin_dsn, name)
    try:
        cmd = [sys.executable, "-m", "gtvision.cli", "db", "upgrade", "--database-url", dsn]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0]
        assert sorted("applied migrations" in o for o in outs) == [False, True], outs
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert row is not None
        assert row[0] == len(migrations())
    finally:
        drop_database(pg_admin_dsn, name)
