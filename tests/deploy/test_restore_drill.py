"""Restore drill: pgBackRest full + differential + WAL archive, primary destroyed, PITR, RPO/RTO.

A private PostgreSQL 15 cluster (temp dir, own port) archives its WAL with pgBackRest using the
shipped ``deploy/pgbackrest/pgbackrest.conf`` and ``deploy/postgres/backup.conf`` — the
repository on local disk instead of S3, the paths of the test, and ``archive_timeout`` 10 s
instead of 60 s so that the drill sees timeout-driven archiving within its time budget. The real
event sink (``EventWriter``) writes events all along. Full backup, writing goes on,
differential backup, writing goes on, then the primary is destroyed (``kill -9`` and its data
directory deleted), the latest backup + every archived WAL segment are restored into a new data
directory, the cluster starts on the same port, and the sink reconnects by itself.

Printed: RPO (acknowledged events missing after the restore, and how long before the
destruction the oldest of them was acknowledged; bar: only the last ``archive_timeout``) and RTO
(destruction → ``gtvision doctor`` OK; bar 5 minutes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from gtvision.events import PlatePass
from gtvision.sinks.postgres import EventWriter, open_pool
from tests.conftest import free_port
from tests.deploy.backrest import ARCHIVE_TIMEOUT_S, archive_settings, as_postgres, drill_config
from tests.sinks.services import PrivatePostgres

RTO_BAR_S = 300.0


class Writer:
    """The real sink writing a batch of plate passes every 50 ms; remembers acknowledgements."""

    def __init__(self, dsn: str) -> None:
        self.pool = open_pool(dsn, max_size=1)
        self.writer = EventWriter(self.pool, None, None, backoff_cap_s=1.0)
        self.acked: list[tuple[float, list[str]]] = []  # (monotonic time, ids) per batch
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="drill-writer", daemon=True)
        self.n = 0

    def _run(self) -> None:
        while not self.stop.is_set():
            now = datetime.now(UTC)
            batch = [
                PlatePass(
                    city_id=1, camera_id=1, ts=now, plate=f"DRL{self.n + k:05d}",
                    confidence=0.9, first_seen=now, last_seen=now, reads=2,
                )
                for k in range(5)
            ]  # fmt: skip
            self.n += len(batch)
            self.writer.write(batch)  # returns once durable (holds and retries during outages)
            self.acked.append((time.monotonic(), [e.id for e in batch]))
            self.stop.wait(0.05)

    def acked_before(self, t: float) -> dict[str, float]:
        """Ids acknowledged before monotonic time ``t``, with their acknowledgement time."""
        return {i: at for at, ids in list(self.acked) if at < t for i in ids}


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    base = Path(tempfile.mkdtemp(prefix="gtv-drill-"))
    node = PrivatePostgres(base, free_port())
    yield node
    with contextlib.suppress(Exception):
        node.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


def _ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return {str(r[0]) for r in conn.execute("SELECT id FROM events").fetchall()}


def _archived(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()
    return int(row[0]) if row else 0


def _writable(dsn: str) -> bool:
    """The restored cluster finished recovery (promoted): the sink can write."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is not None and row[0] is False


def _doctor_ok(dsn: str) -> bool:
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "GTV_DATABASE_URL": dsn}
    proc = subprocess.run(
        [sys.executable, "-m", "gtvision.cli", "doctor"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return proc.returncode == 0


@pytest.mark.slow
def test_restore_drill_full_diff_wal_pitr_rpo_rto(cluster: PrivatePostgres) -> None:
    base, port = cluster.base, cluster.port
    config = drill_config(base, port)
    stanza = "gtvision"
    settings = archive_settings(config, stanza)
    conf_file = base / "backup.conf"
    conf_file.write_text(settings)
    with (cluster.data / "postgresql.conf").open("a") as fh:  # as deploy/postgres/initdb-backup.sh
        fh.write(f"include '{conf_file}'\n")
    cluster.start()
    dsn = cluster.create()
    bk = ["pgbackrest", f"--config={config}", f"--stanza={stanza}"]
    as_postgres(*bk, "stanza-create")
    as_postgres(*bk, "check")

    writer = Writer(dsn)
    writer.thread.start()
    try:
        time.sleep(2)
        as_postgres(*bk, "--type=full", "backup")
        time.sleep(2)
        as_postgres(*bk, "--type=diff", "backup")
        info = json.loads(as_postgres(*bk, "info", "--output=json"))
        types = [b["type"] for b in info[0]["backup"]]
        assert types == ["full", "diff"], types
        # past one archive_timeout: segments archived while the sink writes (not by a backup)
        archived = _archived(dsn)
        time.sleep(ARCHIVE_TIMEOUT_S + 1)
        deadline = time.monotonic() + 2 * ARCHIVE_TIMEOUT_S + 10  # archive-push is async
        while _archived(dsn) == archived:
            assert time.monotonic() < deadline, "archive_timeout switched no WAL segment"
            time.sleep(0.5)
        acked_n = len(writer.acked_before(time.monotonic()))

        # ---- destroy the primary: no shutdown, data directory (and its pg_wal) gone ----
        pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        destroyed = time.monotonic()
        shutil.rmtree(cluster.data)
        for stale in base.glob(".s.PGSQL.*"):
            stale.unlink()

        # ---- restore the latest backup and every archived WAL segment into a new directory --
        cluster.data = base / "data-restored"
        as_postgres(*bk, f"--pg1-path={cluster.data}", "restore")
        cluster.start()
        deadline = time.monotonic() + RTO_BAR_S
        while not (_doctor_ok(dsn) and _writable(dsn)):
            assert time.monotonic() < deadline, "gtvision doctor never OK after the restore"
            time.sleep(0.5)
        rto = time.monotonic() - destroyed

        acked = writer.acked_before(destroyed)
        restored = _ids(dsn)
        missing = {i: at for i, at in acked.items() if i not in restored}
        window = destroyed - min(missing.values()) if missing else 0.0
        # the sink held its batch and reconnected to the restored server by itself
        after = len(writer.acked)
        deadline = time.monotonic() + 30
        while len(writer.acked) < after + 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        resumed = len(writer.acked) - after
    finally:
        writer.stop.set()
        writer.thread.join(timeout=60)
        writer.pool.close()

    print(
        f"restore drill: {len(acked)} events acknowledged before the destruction "
        f"({acked_n} when it was decided), {len(missing)} missing after the restore "
        f"(RPO: the last {window:.1f}s of acknowledged writes; bar {ARCHIVE_TIMEOUT_S}s = "
        f"archive_timeout, 60s in deploy), RTO {rto:.1f}s (destroy -> gtvision doctor OK; "
        f"bar {RTO_BAR_S:.0f}s), sink wrote {resumed} batches after the restore; "
        f"backups {types}"
    )
    assert len(acked) > 100
    assert window <= ARCHIVE_TIMEOUT_S + 2.0, f"lost {len(missing)} events over {window:.1f}s"
    assert len(missing) < len(acked) / 2
    assert rto <= RTO_BAR_S
    assert resumed >= 10, "the sink did not reconnect to the restored database"
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM outbox").fetchone()
    assert row is not None
    assert row[0] == len(_ids(dsn)), "events and outbox rows disagree after the restore"
