"""Restore throughput of pgBackRest on gtvision's data, for the RTO extrapolation.

A private PostgreSQL 15 cluster archives WAL with the shipped pgBackRest settings (local
repository, ``archive_timeout`` 60 s as deployed). The real event sink writes ``--events`` plate
passes (event row + outbox row + indexes, the production shape), a full backup is taken, more
events are written (WAL to replay), the cluster is destroyed and restored into a new directory.

Baseline, measured in the same run: copying the same data directory with ``cp -a`` (what a
restore cannot beat on this disk). Printed: database size, backup and restore times and
throughputs, restore ÷ copy ratio, WAL replay time, and the RTO extrapolated to a 100-camera
city's month (``--city-gb``, default 15 GB) at the measured restore throughput.

Needs root (the cluster runs as user ``postgres``), Debian's ``pgbackrest`` and PostgreSQL 15.
Usage: ``.venv/bin/python bench/restore.py [--events 200000] [--after 20000] [--city-gb 15]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gtvision.events import PlatePass  # noqa: E402
from gtvision.sinks.postgres import EventWriter, open_pool  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.deploy.backrest import archive_settings, as_postgres, drill_config  # noqa: E402
from tests.sinks.services import PrivatePostgres  # noqa: E402


def write(dsn: str, n: int, start: int) -> float:
    """Write ``n`` plate passes through the real sink in batches of 500; seconds taken."""
    pool = open_pool(dsn, max_size=1)
    writer = EventWriter(pool, None, None)
    t0 = time.monotonic()
    for first in range(start, start + n, 500):
        now = datetime.now(UTC)
        writer.write(
            [
                PlatePass(
                    city_id=1 + i % 3, camera_id=1 + i % 100, ts=now, plate=f"R{i:06d}",
                    confidence=0.9, first_seen=now, last_seen=now, reads=3,
                )
                for i in range(first, min(first + 500, start + n))
            ]
        )  # fmt: skip
    pool.close()
    return time.monotonic() - t0


def db_bytes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--after", type=int, default=20_000, help="events written after the backup")
    parser.add_argument("--city-gb", type=float, default=15.0)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    base = Path(tempfile.mkdtemp(prefix="gtv-bench-restore-"))
    cluster = PrivatePostgres(base, free_port())
    try:
        config = drill_config(base, cluster.port)
        (base / "backup.conf").write_text(archive_settings(config, "gtvision", timeout_s=60))
        with (cluster.data / "postgresql.conf").open("a") as fh:
            fh.write(f"include '{base / 'backup.conf'}'\n")
        cluster.start()
        dsn = cluster.create()
        bk = ["pgbackrest", f"--config={config}", "--stanza=gtvision"]
        as_postgres(*bk, "stanza-create", timeout=600)
        w = write(dsn, args.events, 0)
        size = db_bytes(dsn)
        t0 = time.monotonic()
        as_postgres(*bk, "--type=full", "backup", timeout=3600)
        backup_s = time.monotonic() - t0
        repo = dir_bytes(base / "repo")
        write(dsn, args.after, args.events)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_switch_wal()")  # the last WAL reaches the archive
        time.sleep(3)
        cluster.stop("fast")
        data_bytes = dir_bytes(cluster.data)
        t0 = time.monotonic()
        subprocess.run(["cp", "-a", str(cluster.data), str(base / "copy")], check=True)
        copy_s = time.monotonic() - t0
        shutil.rmtree(base / "copy")
        shutil.rmtree(cluster.data)
        cluster.data = base / "restored"
        t0 = time.monotonic()
        as_postgres(*bk, f"--pg1-path={cluster.data}", "restore", timeout=3600)
        restore_s = time.monotonic() - t0
        restored_bytes = dir_bytes(cluster.data)
        t1 = time.monotonic()
        cluster.start()
        while True:
            with psycopg.connect(dsn) as conn:
                row = conn.execute("SELECT pg_is_in_recovery(), count(*) FROM events").fetchone()
            if row and not row[0]:
                break
            time.sleep(0.2)
        replay_s = time.monotonic() - t1
        assert row is not None
        assert row[1] == args.events + args.after, row
    finally:
        with contextlib.suppress(Exception):
            pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
    mb = 1024 * 1024
    restore_mbs = restored_bytes / mb / restore_s
    copy_mbs = data_bytes / mb / copy_s
    city_min = args.city_gb * 1024 / restore_mbs / 60
    print(f"load {load:.1f} (1-min average at start)")
    print(f"events written through the sink: {args.events} in {w:.1f} s ({args.events / w:.0f}/s)")
    print(f"database {size / mb:.0f} MB, data directory {data_bytes / mb:.0f} MB, "
          f"repository (zstd) {repo / mb:.0f} MB")  # fmt: skip
    print(f"full backup {backup_s:.1f} s ({size / mb / backup_s:.0f} MB/s)")
    print(f"restore {restore_s:.1f} s for {restored_bytes / mb:.0f} MB ({restore_mbs:.0f} MB/s); "
          f"baseline cp -a of the data directory {copy_s:.1f} s ({copy_mbs:.0f} MB/s); "
          f"restore / copy throughput {restore_mbs / copy_mbs:.2f}")  # fmt: skip
    print(f"start + WAL replay of {args.after} later events to writable: {replay_s:.1f} s")
    print(f"extrapolated restore of a {args.city_gb:.0f} GB city database at "
          f"{restore_mbs:.0f} MB/s: {city_min:.1f} min (bar: RTO 4 h)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
