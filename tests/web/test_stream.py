"""SSE under a real uvicorn: resume with Last-Event-ID (stream and Postgres), tenancy, tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from gtvision.events import PlatePass
from gtvision.redis_keys import connect
from gtvision.sinks.feed import stream_key
from gtvision.web.auth import Role
from tests.web.conftest import Api, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass(frozen=True)
class Sse:
    id: str
    event: str
    data: str


async def read_events(resp: httpx.Response, n: int, wait_s: float = 10) -> list[Sse]:
    """The next ``n`` SSE events of ``resp`` (comments/pings skipped)."""
    out: list[Sse] = []
    fields: dict[str, str] = {}
    lines = resp.extensions.setdefault("sse_lines", resp.aiter_lines())

    async def run() -> None:
        async for line in lines:
            if not line:
                if "data" in fields:
                    out.append(Sse(fields.get("id", ""), fields.get("event", ""), fields["data"]))
                    if len(out) == n:
                        return
                fields.clear()
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    await asyncio.wait_for(run(), wait_s)
    return out


def passes(api: Api, city: str, n: int, tag: str) -> list[PlatePass]:
    w = api.world
    base = datetime.now(UTC) + timedelta(minutes=hash(tag) % 1000)
    return [
        PlatePass(
            city_id=w.cities[city],
            camera_id=w.cameras[city],
            ts=base + timedelta(seconds=i),
            plate=f"SSE{i:04d}",
            confidence=0.8,
            first_seen=base + timedelta(seconds=i),
            last_seen=base + timedelta(seconds=i, milliseconds=500),
            reads=2,
        )
        for i in range(n)
    ]


@contextlib.asynccontextmanager
async def subscribe(
    client: httpx.AsyncClient, base: str, query: str = "", last: str = "", token: str = ""
) -> AsyncIterator[httpx.Response]:
    headers = {"Last-Event-ID": last} if last else {}
    url = f"{base}/stream/events?token={token}{query}"
    async with client.stream("GET", url, headers=headers) as resp:
        assert resp.status_code == 200, await resp.aread()
        yield resp


async def _stream_token(api: Api, city: str, role: Role) -> str:
    r = await api.client.post("/auth/stream-token", headers=api.auth(city, role))
    assert r.status_code == 200
    token: str = r.json()["token"]
    return token


async def until_subscribed(api: Api, city: str, within_s: float = 15.0) -> None:
    """Wait until the city's hub reader runs with a subscriber (the response headers come
    before the stream's generator subscribes, so events published before that are missed)."""
    hub = api.app.state.gtv.hub
    cid = api.world.cities[city]
    for _ in range(int(within_s / 0.02)):
        if hub.reading(cid) and hub.subscribers(cid) > 0:
            return
        await asyncio.sleep(0.02)
    msg = f"no SSE subscriber of city {cid} after {within_s} s"
    raise AssertionError(msg)


async def _live_first(api: Api, base: str, client: httpx.AsyncClient, token: str) -> Sse:
    """Connect, receive one fresh event, disconnect; return it."""
    async with subscribe(client, base, token=token) as resp:
        await until_subscribed(api, "a")
        first = passes(api, "a", 1, "first-" + str(asyncio.get_running_loop().time()))
        await asyncio.to_thread(api.writer.write, first)
        (got,) = await read_events(resp, 1)
    assert got.event == "lpr.detected"
    assert first[0].id in got.data
    return got


async def test_resume_after_disconnect_gets_exactly_the_missed_20_in_order(api: Api) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    token = await _stream_token(api, "a", Role.OPERATOR)
    async with serve(app) as base, httpx.AsyncClient(timeout=10) as client:
        got = await _live_first(api, base, client, token)
        missed = passes(api, "a", 20, "missed-resume")
        await asyncio.to_thread(api.writer.write, missed)
        async with subscribe(client, base, last=got.id, token=token) as resp:
            again = await read_events(resp, 20)
            # nothing more than those 20 arrives
            with pytest.raises(TimeoutError):
                await read_events(resp, 1, wait_s=1.5)
    assert [e.event for e in again] == ["lpr.detected"] * 20
    assert [next(p.id for p in missed if p.id in e.data) for e in again] == [p.id for p in missed]
    with psycopg.connect(api.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT stream_id FROM events WHERE id = ANY(%s)", ([p.id for p in missed],)
        ).fetchall()
    ids = [e.id for e in again]
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert ids == sorted(ids, key=lambda s: tuple(int(x) for x in s.split("-")))


async def test_resume_reads_postgres_for_entries_trimmed_from_the_stream(api: Api) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    token = await _stream_token(api, "a", Role.VIEWER)
    async with serve(app) as base, httpx.AsyncClient(timeout=10) as client:
        got = await _live_first(api, base, client, token)
        missed = passes(api, "a", 20, "missed-trim")
        await asyncio.to_thread(api.writer.write, missed)
        r = connect(api.settings.redis_url, cluster=api.settings.redis_cluster)
        key = stream_key(api.settings.redis_prefix, api.world.cities["a"])
        assert r.xtrim(key, maxlen=5, approximate=False) > 0
        r.close()
        async with subscribe(client, base, last=got.id, token=token) as resp:
            again = await read_events(resp, 20)
    assert [next(p.id for p in missed if p.id in e.data) for e in again] == [p.id for p in missed]


async def test_stream_is_scoped_to_own_city_and_filters(api: Api) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    b = api.world.cities["b"]
    token = await _stream_token(api, "a", Role.ANALYST)
    async with (
        serve(app) as base,
        httpx.AsyncClient(timeout=10) as client,
        subscribe(client, base, query=f"&city_id={b}&types=lpr.detected", token=token) as resp,
    ):
        await until_subscribed(api, "a")  # an analyst of city a gets city a, whatever it asks
        theirs = passes(api, "b", 3, "theirs")
        ours = passes(api, "a", 2, "ours")
        await asyncio.to_thread(api.writer.write, theirs)
        await asyncio.to_thread(api.writer.write, ours)
        got = await read_events(resp, 2)
        with pytest.raises(TimeoutError):
            await read_events(resp, 1, wait_s=1.0)
    assert [next(p.id for p in ours if p.id in e.data) for e in got] == [p.id for p in ours]
    for e in got:
        assert f'"city_id":{b}' not in e.data


async def test_stream_auth_errors(api: Api) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    async with serve(app) as base, httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{base}/stream/events")).status_code == 401
        assert (await client.get(f"{base}/stream/events?token=bad")).status_code == 401
        admin = api.auth(None, Role.ADMIN)
        # admin must choose a city
        assert (await client.get(f"{base}/stream/events", headers=admin)).status_code == 422


async def test_disconnect_releases_every_per_connection_task(api: Api) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    token = await _stream_token(api, "a", Role.VIEWER)
    async with serve(app) as base, httpx.AsyncClient(timeout=10) as client:
        hub = app.state.gtv.hub  # the lifespan of this server made a new one
        # warm-up: sse-starlette starts ONE shutdown watcher per event loop (not per connection)
        async with subscribe(client, base, token=token):
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)
        before = {t for t in asyncio.all_tasks() if not t.get_name().startswith("pool-")}
        baseline = len(asyncio.all_tasks())
        async with contextlib.AsyncExitStack() as stack:
            resps = [
                await stack.enter_async_context(subscribe(client, base, token=token))
                for _ in range(8)
            ]
            await asyncio.sleep(0.3)
            assert hub.subscribers() == 8
            during = len(asyncio.all_tasks())
            assert during > baseline
            await asyncio.to_thread(api.writer.write, passes(api, "a", 1, "leak"))
            for resp in resps:
                assert len(await read_events(resp, 1)) == 1
        for _ in range(100):
            if len(asyncio.all_tasks()) <= baseline and hub.subscribers() == 0:
                break
            await asyncio.sleep(0.05)
        assert hub.subscribers() == 0
        extra = {t for t in asyncio.all_tasks() if not t.get_name().startswith("pool-")} - before
        assert len(asyncio.all_tasks()) <= baseline, [repr(t.get_coro()) for t in extra]
