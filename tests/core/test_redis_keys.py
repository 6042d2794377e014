"""The asyncio Redis client's bounded, waiting connection pool (``gtvision.redis_keys``)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
import redis.exceptions

from gtvision.redis_keys import connect_async
from tests.conftest import RedisTarget


def _connections(admin: redis.Redis, name: str) -> int:
    return sum(1 for c in admin.client_list() if c.get("name") == name)


async def test_a_burst_larger_than_the_pool_waits_instead_of_failing(
    redis_target: RedisTarget,
) -> None:
    """30 concurrent blocking commands on 3 connections: all succeed, never a 4th connection.

    redis-py 8's default asyncio pool refuses the command after its 100th concurrent one
    (``MaxConnectionsError``): a burst of SSE subscribers got 503s from one web instance.
    """
    name = f"gtvtest-pool-{uuid.uuid4().hex[:8]}"
    client = connect_async(redis_target.url, max_connections=3, client_name=name)
    admin = redis.Redis.from_url(redis_target.url, decode_responses=True)
    key = f"{redis_target.prefix}pool:{name}"
    seen: list[int] = []

    async def watch() -> None:
        while True:
            seen.append(await asyncio.to_thread(_connections, admin, name))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        replies = await asyncio.gather(*(client.blpop([key], timeout=0.1) for _ in range(30)))
    finally:
        watcher.cancel()
        await client.aclose()
        admin.close()
    assert replies == [None] * 30
    assert seen, "the connection count was never sampled"
    assert max(seen) <= 3, seen
    assert max(seen) >= 2, seen  # the commands did run concurrently


async def test_the_wait_for_a_connection_is_bounded(redis_target: RedisTarget) -> None:
    client = connect_async(redis_target.url, max_connections=1, pool_wait_s=0.2)
    key = f"{redis_target.prefix}pool:{uuid.uuid4().hex[:8]}"

    async def occupy() -> object:
        return await client.blpop([key], timeout=1.0)

    try:
        hold = asyncio.create_task(occupy())
        await asyncio.sleep(0.1)
        with pytest.raises(redis.exceptions.ConnectionError, match="No connection available"):
            await client.ping()
        assert await hold is None
    finally:
        await client.aclose()


def test_a_pool_of_no_connections_is_refused() -> None:
    with pytest.raises(ValueError, match="max_connections must be >= 1, got 0"):
        connect_async("redis://127.0.0.1:1/0", max_connections=0)
