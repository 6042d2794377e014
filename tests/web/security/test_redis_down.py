"""The API while Redis is down or hung (issue 13): fail closed or open per route, never a 500.

A private Redis (``tests.sinks.services.PrivateRedis``, never the machine's) is stopped and
frozen under one app. Routes that cannot work without Redis (sessions, live events) answer 503
with ``Retry-After`` and a problem in the API's words; routes that only use it for limits,
caches and token-generation copies keep answering from PostgreSQL. See docs/security.md
"When Redis is down".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gtvision.sinks.feed import RedisFeed
from gtvision.web.auth import Role
from gtvision.web.redisguard import DOWN_S, REDIS_TIMEOUT_S
from tests.conftest import RedisTarget, free_port
from tests.sinks.services import PrivateRedis
from tests.web.conftest import PASSWORD, Api, api_over, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rapi(
    private_redis: PrivateRedis, web_backend: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """The app on the private Redis, with every limit on (they all need Redis)."""
    settings, _, store, writer, world = web_backend
    s = make_settings(
        settings.database_url, RedisTarget(private_redis.url, "down:"),
        tmp_path_factory.mktemp("rdown"), rate_limit_per_min=600, login_rate_limit_per_min=10,
        login_ip_rate_limit_per_min=30, login_user_failures_per_hour=100,
    )  # fmt: skip
    feed = RedisFeed(s.redis_url, s.redis_prefix)
    async with api_over(s, feed, store, writer, world) as api:
        yield api
    await feed.aclose()


def _unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) > 0
    assert "Redis" in r.json()["detail"], r.text
    assert "retry in" in r.json()["detail"], r.text


async def test_redis_stopped(rapi: Api, private_redis: PrivateRedis, secrets: set[str]) -> None:
    c = rapi.client
    user = rapi.world.users[("a", Role.OPERATOR)].username
    good = {"username": user, "password": PASSWORD}
    first = await c.post("/auth/login", json=good)
    assert first.status_code == 200, first.text
    tokens = first.json()
    secrets.update({tokens["access_token"], tokens["refresh_token"]})
    h = {"Authorization": f"Bearer {tokens['access_token']}"}
    private_redis.stop()
    try:
        # fail closed: sessions and the live feed live in Redis
        _unavailable(await c.post("/auth/login", json=good))
        _unavailable(await c.post("/auth/login", json={**good, "password": "wrong"}))
        _unavailable(await c.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}))
        _unavailable(
            await c.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=h)
        )
        _unavailable(await c.get("/stream/events", headers=h))
        # fail open: limits skipped, caches missed, token generations read from PostgreSQL
        assert (await c.get("/cameras", headers=h)).status_code == 200
        assert (await c.get("/hotlists", headers=h)).status_code == 200
        admin = rapi.auth("a", Role.CITY_ADMIN)
        made = await c.post(
            "/hotlists", json={"pattern": f"RD{uuid.uuid4().hex[:5].upper()}", "kind": "exact"},
            headers=admin,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        assert (await c.get("/readyz")).status_code == 503
        out = await c.post("/auth/logout-all", headers=h)  # PostgreSQL is the truth
        assert out.status_code == 204, out.text
        assert (await c.get("/me", headers=h)).status_code == 401
    finally:
        private_redis.start()
    await _logs_in_again(c, good, secrets)


async def _logs_in_again(c: httpx.AsyncClient, good: dict[str, str], secrets: set[str]) -> None:
    """Within the guard's down period of Redis answering again, login works."""
    t0 = time.monotonic()
    while (again := await c.post("/auth/login", json=good)).status_code == 503:
        assert time.monotonic() - t0 < DOWN_S + 1, "login still 503 after Redis came back"
        await asyncio.sleep(0.2)
    assert again.status_code == 200, again.text
    secrets.update({again.json()["access_token"], again.json()["refresh_token"]})


async def test_redis_hung(rapi: Api, private_redis: PrivateRedis, secrets: set[str]) -> None:
    """A frozen Redis (connections open, no answer) costs one timeout, then 503s come at once
    and routes that fail open answer at their usual speed."""
    c = rapi.client
    good = {"username": rapi.world.users[("a", Role.VIEWER)].username, "password": PASSWORD}
    h = rapi.auth("a", Role.VIEWER)
    assert (await c.get("/cameras", headers=h)).status_code == 200
    private_redis.freeze()
    try:
        t0 = time.monotonic()
        _unavailable(await c.post("/auth/login", json=good))
        first = time.monotonic() - t0
        assert first < REDIS_TIMEOUT_S * 2 + 1, first
        t1 = time.monotonic()
        for _ in range(5):
            _unavailable(await c.post("/auth/login", json=good))
            assert (await c.get("/cameras", headers=h)).status_code == 200
        _unavailable(await c.get("/stream/events", headers=h))
        assert time.monotonic() - t1 < 1.5  # no request waited for Redis again
    finally:
        private_redis.freeze(False)
    await _logs_in_again(c, good, secrets)


async def test_an_unreachable_redis_cluster_fails_open_too(
    web_backend: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With GTV_REDIS_CLUSTER the client raises RedisClusterException (not a RedisError) when no
    node answers: the limit and the caches still fail open instead of answering 500."""
    settings, feed, store, writer, world = web_backend
    nowhere = f"redis://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/0"
    s = make_settings(
        settings.database_url, RedisTarget(nowhere, "cdown:"), tmp_path_factory.mktemp("cdown"),
        redis_cluster=True, rate_limit_per_min=600,
    )  # fmt: skip
    async with api_over(s, feed, store, writer, world) as api:
        h = api.auth("a", Role.CITY_ADMIN)  # the operator logged out everywhere above
        for path in ("/cameras", "/hotlists", "/me"):
            r = await api.client.get(path, headers=h)
            assert r.status_code == 200, (path, r.text)
