"""GTV_DATABASE_READ_URL on a real streaming replica: routing, fallback, pool bounds.

The module starts a private PostgreSQL primary and a hot standby cloned from it with
``pg_basebackup -R``. Pausing WAL replay on the standby makes routing visible: a row written on
the primary is invisible to queries served by the replica until replay resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gtvision.config import Settings
from gtvision.events import PlatePass
from gtvision.sinks.objects import LocalObjectStore
from gtvision.sinks.postgres import EventWriter, open_pool
from gtvision.web.auth import Role, TokenIssuer
from gtvision.web.pools import APPLICATION_NAME
from tests.conftest import RedisTarget, free_port
from tests.sinks.services import PrivatePostgres
from tests.web.conftest import SECRET, World, make_settings, running, seed

aio = pytest.mark.asyncio(loop_scope="session")
POOL = 3


@dataclass
class Pair:
    primary: PrivatePostgres
    replica: PrivatePostgres
    dsn: str
    read_dsn: str
    writer: EventWriter
    world: World
    settings: Settings


@pytest.fixture(scope="module")
def pair(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = Path(tempfile.mkdtemp(prefix="gtv-pgrep-"))  # the postgres user runs both servers
    base.chmod(0o755)
    primary = PrivatePostgres(base / "primary", free_port())
    replica: PrivatePostgres | None = None
    pool = None
    try:
        primary.start()
        dsn = primary.create()
        replica = PrivatePostgres(base / "replica", free_port(), primary=primary)
        replica.start()
        read_dsn = f"postgresql://postgres@127.0.0.1:{replica.port}/gtv"
        assert replica.sql("SELECT pg_is_in_recovery()", "gtv") == [(True,)]
        tmp = tmp_path_factory.mktemp("replica-web")
        store = LocalObjectStore(tmp / "objects", b"store-secret", "http://testserver")
        pool = open_pool(dsn)
        writer = EventWriter(pool, store, None)
        world = seed(dsn, writer)
        settings = make_settings(
            dsn, redis_target, tmp, database_read_url=read_dsn, db_pool_size=POOL
        )
        yield Pair(primary, replica, dsn, read_dsn, writer, world, settings)
    finally:
        if pool is not None:
            pool.close()
        for server in (replica, primary):
            if server is not None:
                with contextlib.suppress(RuntimeError):
                    server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Web:
    client: httpx.AsyncClient
    app: Any
    head: dict[str, str]


@pytest.fixture
async def web(pair: Pair) -> AsyncIterator[Web]:
    issuer = TokenIssuer(SECRET.encode(), 900, 60)
    who = pair.world.users[("a", Role.CITY_ADMIN)]
    head = {"Authorization": f"Bearer {issuer.issue(who)[0]}"}
    async with running(pair.settings) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Web(c, app, head)


def new_pass(pair: Pair, plate: str) -> PlatePass:
    now = datetime.now(UTC)
    w = pair.world
    return PlatePass(
        city_id=w.cities["a"], camera_id=w.cameras["a"], ts=now, plate=plate, confidence=0.9,
        first_seen=now, last_seen=now, reads=1,
    )  # fmt: skip


async def plates(web: Web) -> list[str]:
    r = await web.client.get("/events?limit=50", headers=web.head)
    assert r.status_code == 200, r.text
    return [e["plate"] for e in r.json()["items"]]


async def until(check: Any, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


@aio
async def test_lag_tolerant_reads_use_the_replica_and_fresh_reads_the_primary(
    pair: Pair, web: Web
) -> None:
    plate = f"RPL{uuid.uuid4().hex[:4].upper()}"
    pair.replica.sql("SELECT pg_wal_replay_pause()")
    try:
        event = new_pass(pair, plate)
        await asyncio.to_thread(pair.writer.write, [event])
        name = f"cam-fresh-{uuid.uuid4().hex[:6]}"
        r = await web.client.post(
            "/cameras", json={"name": name, "stream_url": "rtsp://10.0.0.9/s"}, headers=web.head
        )
        assert r.status_code == 201, r.text
        # the search runs on the paused replica: the new event is not there yet
        assert plate not in await plates(web)
        r = await web.client.get(f"/events/export?plate={plate}", headers=web.head)
        assert r.status_code == 200
        assert plate not in r.text
        # what must be fresh reads the primary: the event's detail, the camera list
        r = await web.client.get(f"/events/{event.id}", headers=web.head)
        assert r.status_code == 200, r.text
        r = await web.client.get("/cameras", headers=web.head)
        assert name in [c["name"] for c in r.json()["items"]]
    finally:
        pair.replica.sql("SELECT pg_wal_replay_resume()")

    async def replicated() -> bool:
        return plate in await plates(web)

    await until(replicated)
    r = await web.client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["replica"].startswith("ok"), r.json()


@aio
async def test_replica_down_reads_fall_back_to_the_primary_and_return(pair: Pair, web: Web) -> None:
    await plates(web)  # the replica pool is open and serving
    pair.replica.stop("immediate")
    plate = f"DWN{uuid.uuid4().hex[:4].upper()}"
    await asyncio.to_thread(pair.writer.write, [new_pass(pair, plate)])
    t0 = time.monotonic()
    assert plate in await plates(web)  # served by the primary
    first = time.monotonic() - t0
    t0 = time.monotonic()
    for _ in range(5):
        assert plate in await plates(web)
    after = (time.monotonic() - t0) / 5
    assert first < 5.0
    assert after < 0.5, f"reads stay slow while the replica is down: {after:.2f} s each"
    r = await web.client.get("/readyz")
    assert r.status_code == 200, r.text  # the instance still serves
    assert r.json()["replica"].startswith("down"), r.json()

    await asyncio.to_thread(pair.replica.start)

    async def back() -> bool:
        r = await web.client.get("/readyz")
        return bool(r.json()["replica"].startswith("ok"))

    await until(back)
    pair.replica.sql("SELECT pg_wal_replay_pause()")
    try:
        hidden = f"BCK{uuid.uuid4().hex[:4].upper()}"
        await asyncio.to_thread(pair.writer.write, [new_pass(pair, hidden)])
        assert hidden not in await plates(web)  # reads are on the replica again
    finally:
        pair.replica.sql("SELECT pg_wal_replay_resume()")


def _web_connections(server: PrivatePostgres) -> int:
    rows = server.sql(
        f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}'"
    )
    return int(str(rows[0][0]))


@aio
async def test_pools_stay_bounded_under_concurrent_requests_and_say_503_when_exhausted(
    pair: Pair, web: Web
) -> None:
    seen = {"primary": 0, "replica": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen["primary"] = max(seen["primary"], _web_connections(pair.primary))
            seen["replica"] = max(seen["replica"], _web_connections(pair.replica))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        gets = [
            web.client.get(path, headers=web.head)
            for _ in range(15)
            for path in ("/events?plate=ABC&fuzzy=true", "/audit", "/users")
        ]
        codes = [r.status_code for r in await asyncio.gather(*gets)]
    finally:
        stop.set()
        sampler.join(5)
    assert codes == [200] * len(codes)
    assert 1 <= seen["primary"] <= POOL, seen
    assert 1 <= seen["replica"] <= POOL, seen

    state = web.app.state.gtv
    state.pool.timeout = 0.3  # wait briefly for a free connection, then 503
    held = [await state.pool.getconn() for _ in range(POOL)]
    try:
        r = await web.client.get("/users", headers=web.head)
    finally:
        for conn in held:
            await state.pool.putconn(conn)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert "database busy" in r.json()["detail"]
