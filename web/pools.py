"""PostgreSQL pools of one web worker: the primary, and optionally a streaming replica.

* ``pool`` (``GTV_DATABASE_URL``): every write, and every read that must see the latest write
  (cached lists, reads right after a change, auth). At most ``GTV_DB_POOL_SIZE`` connections;
  a request waits at most ``POOL_WAIT_S`` for one, then gets 503 (``pool_exhausted``).
* the replica pool (``GTV_DATABASE_READ_URL``): read-heavy queries that tolerate replication lag
  (event search and CSV export, audit and recordings lists), via ``AppState.read_only``. At most
  ``GTV_DB_POOL_SIZE`` connections to the replica. It opens in the background, so a replica that
  is down at start does not stop the web; while it cannot serve, :class:`ReadRouter` runs the
  query on the primary instead (logged once per outage).

So one web worker holds at most ``GTV_DB_POOL_SIZE`` connections to each server; totals for N
instances are in ``docs/scale.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request
from starlette.responses import Response

from gtvision.config import Settings
from gtvision.web.problems import problem

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = AsyncConnection[dict[str, Any]]
Pool = AsyncConnectionPool[Conn]
POOL_WAIT_S = 10.0
REPLICA_WAIT_S = 1.0
PROBE_S = 1.0
STATUS_WAIT_S = 0.5
APPLICATION_NAME = "gtvision-web"


def make_pool(
    url: str, settings: Settings, *, timeout: float = POOL_WAIT_S, check: bool = False
) -> Pool:
    """A closed pool of at most ``GTV_DB_POOL_SIZE`` connections (dict rows, no autocommit).

    ``check``: test each connection when it is taken (a restarted replica's old connections
    are replaced instead of failing one read each).
    """
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=settings.db_pool_size,
        timeout=timeout,
        kwargs={
            "row_factory": dict_row,
            "autocommit": False,
            "application_name": APPLICATION_NAME,
            "connect_timeout": 5,
        },
        connection_class=AsyncConnection[dict[str, Any]],
        check=AsyncConnectionPool.check_connection if check else None,
        open=False,
    )


class ReadRouter:
    """Runs lag-tolerant reads on the replica pool, falling back to the primary.

    When the replica fails (no connection within ``REPLICA_WAIT_S``, a broken connection, a
    query cancelled by recovery), reads go to the primary at once and a background probe
    connects to the replica every ``PROBE_S`` until it answers; then reads go back to it. So a
    dead replica costs one slow read, not one per request.
    """

    def __init__(self, primary: Pool, replica: Pool | None, replica_url: str = "") -> None:
        self.primary = primary
        self.replica = replica
        self.replica_url = replica_url
        self.fallbacks = 0
        self._down_since: float | None = None
        self._probe: asyncio.Task[None] | None = None
        self._warned = 0.0

    async def run(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """``fn(conn)`` on a replica connection; on the primary without (or if it fails)."""
        if self.replica is not None and self._down_since is None:
            try:
                async with self.replica.connection(timeout=REPLICA_WAIT_S) as conn:
                    return await fn(conn)
            except (PoolTimeout, psycopg.OperationalError) as err:
                self._mark_down(err)
        elif self.replica is not None:
            self.fallbacks += 1
        async with self.primary.connection() as conn:
            return await fn(conn)

    def _mark_down(self, err: Exception) -> None:
        self.fallbacks += 1
        self._down_since = time.monotonic()
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._wait_up(), name="gtv-replica-probe")
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        log.warning(
            "read replica unavailable (%s: %s): reading from the primary until it answers",
            type(err).__name__,
            first,
        )

    async def _wait_up(self) -> None:
        while True:
            await asyncio.sleep(PROBE_S)
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.replica_url, connect_timeout=2, autocommit=True
                )
                async with conn:
                    await conn.execute("SELECT 1")
            except psycopg.Error:
                continue
            down = time.monotonic() - (self._down_since or time.monotonic())
            self._down_since = None
            log.warning("read replica answers again after %.1f s: reads go back to it", down)
            return

    async def status(self) -> str | None:
        """``None`` without replica; else ``ok`` (with replay lag) or why reads use the primary."""
        if self.replica is None:
            return None
        if self._down_since is not None:
            down = time.monotonic() - self._down_since
            return f"down for {down:.0f} s: reads use the primary"
        try:
            async with asyncio.timeout(STATUS_WAIT_S), self.replica.connection() as conn:
                cur = await conn.execute(
                    "SELECT pg_is_in_recovery() AS standby, EXTRACT(EPOCH FROM "
                    "now() - pg_last_xact_replay_timestamp())::float8 AS lag"
                )
                row = await cur.fetchone()
        except (TimeoutError, PoolTimeout, psycopg.Error) as err:
            return f"not answering ({type(err).__name__})"
        if row is None or not row["standby"]:
            return "ok (not a standby: GTV_DATABASE_READ_URL names a primary)"
        lag = row["lag"]
        return "ok" if lag is None else f"ok, last replayed transaction {lag:.1f} s old"

    async def close(self) -> None:
        """Stop the probe and close the replica pool (the primary belongs to the app state)."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self.replica is not None:
            await self.replica.close()


async def pool_exhausted(request: Request, exc: Exception) -> Response:
    """503 + Retry-After when no database connection came free within ``POOL_WAIT_S``."""
    detail = f"database busy: no connection free within {POOL_WAIT_S:.0f} s; retry shortly"
    return problem(503, detail, headers={"Retry-After": "1"})
