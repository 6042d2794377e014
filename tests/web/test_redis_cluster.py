"""The live feed, SSE resume, caches, tokens and rate limits on a real Redis Cluster.

The module starts its own cluster (3 masters, one replica each, private ports) and points the
web fixtures at it (``web_redis`` override, ``GTV_REDIS_CLUSTER=true``). The last test kills the
master that holds a city's slot and checks that nothing published meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from gtvision.config import mask_url
from gtvision.events import PlatePass
from gtvision.redis_keys import connect, seed_urls
from gtvision.sinks.feed import RedisFeed, dedupe_key, stream_key
from gtvision.sinks.postgres import TRANSIENT, is_transient
from gtvision.web.auth import Role
from gtvision.web.common import cache_key
from tests.conftest import RedisTarget, free_port
from tests.sinks.services import PrivateRedisCluster
from tests.web import test_stream
from tests.web.conftest import PASSWORD, Api, running, serve
from tests.web.test_stream import _live_first, _stream_token, passes, read_events, subscribe

aio = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedisCluster]:
    ports = [(free_port(), free_port()) for _ in range(6)]
    nodes = PrivateRedisCluster(tmp_path_factory.mktemp("rcluster"), ports, replicas=1)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def web_redis(cluster: PrivateRedisCluster) -> tuple[RedisTarget, bool]:
    return RedisTarget(cluster.url, f"gtvtest:{uuid.uuid4().hex[:8]}:"), True


@pytest.fixture(scope="module")
def admin(cluster: PrivateRedisCluster) -> Iterator[RedisCluster]:
    client = connect(cluster.url, cluster=True)
    assert isinstance(client, RedisCluster)
    yield client
    client.close()


def slot(key: str) -> int:
    return key_slot(key.encode())


def master_of(cluster: PrivateRedisCluster, key: str) -> int:
    """Port of the live master serving ``key``'s slot (from CLUSTER NODES)."""
    wanted = slot(key)
    for port, ranges in cluster.masters().items():
        for part in ranges.split():
            low, _, high = part.partition("-")
            if int(low) <= wanted <= int(high or low):
                return port
    msg = f"no live master serves slot {wanted} of {key!r}"
    raise AssertionError(msg)


def _pass(city: int, i: int) -> PlatePass:
    ts = datetime(2026, 12, 3, 12, 0, tzinfo=UTC) + timedelta(seconds=i)
    return PlatePass(
        city_id=city, camera_id=1, ts=ts, plate=f"CLU{i:04d}", confidence=0.9,
        first_seen=ts, last_seen=ts, reads=1,
    )  # fmt: skip


def test_a_citys_keys_share_one_slot_and_cities_spread_over_the_masters(
    cluster: PrivateRedisCluster,
) -> None:
    prefix = "gtv:"
    for city in range(1, 60):
        keys = [stream_key(prefix, city)] + [
            dedupe_key(prefix, city, str(uuid.uuid4())) for _ in range(5)
        ]
        assert len({slot(k) for k in keys}) == 1, keys
    masters = set(cluster.masters())
    assert len(masters) == 3
    assert {master_of(cluster, stream_key(prefix, c)) for c in range(1, 60)} == masters


@aio
async def test_feed_batch_over_three_masters_is_idempotent_and_readable(
    admin: RedisCluster, cluster: PrivateRedisCluster, web_redis: tuple[RedisTarget, bool]
) -> None:
    target, _ = web_redis
    prefix = f"{target.prefix}feed-{uuid.uuid4().hex[:6]}:"
    cities: dict[int, int] = {}  # master port -> a city whose stream it holds
    for city in range(1000, 1100):
        cities.setdefault(master_of(cluster, stream_key(prefix, city)), city)
    assert len(cities) == 3
    events = [_pass(city, i) for i in range(4) for city in cities.values()]
    feed = RedisFeed(target.url, prefix, cluster=True)
    try:
        sids = feed.publish_many(events)
        assert len({(e.city_id, sid) for e, sid in zip(events, sids, strict=True)}) == 12
        assert feed.publish_many(list(reversed(events))) == list(reversed(sids))
        assert feed.publish(events[0]) == sids[0]
        for city in cities.values():
            assert admin.xlen(stream_key(prefix, city)) == 4
            items = await feed.read(city, "0-0", 0, 100)
            assert [it.event_id for it in items] == [e.id for e in events if e.city_id == city]
            assert await feed.last_id(city) == items[-1].stream_id
            assert not await feed.history_lost(city, items[0].stream_id)
            assert await feed.read(city, items[-1].stream_id, 200, 10) == []
    finally:
        await feed.aclose()
        feed.close()


@aio
async def test_tokens_cache_and_limits_work_on_the_cluster(api: Api, admin: RedisCluster) -> None:
    w, state = api.world, api.app.state.gtv
    user = w.users[("a", Role.CITY_ADMIN)]
    r = await api.client.post("/auth/login", json={"username": user.username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    first = r.json()["refresh_token"]
    r = await api.client.post("/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200, r.text
    second = r.json()["refresh_token"]
    r = await api.client.post("/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401  # reuse of a rotated token revokes the session
    r = await api.client.post("/auth/refresh", json={"refresh_token": second})
    assert r.status_code == 401

    head = api.auth("a", Role.CITY_ADMIN)
    before = await api.client.get("/cameras", headers=head)
    assert before.status_code == 200
    key = cache_key(state, "cameras", w.cities["a"])
    assert admin.exists(key)
    assert slot(key) == slot(stream_key(state.settings.redis_prefix, w.cities["a"]))
    body = {"name": f"cam-cluster-{w.tag}", "stream_url": "rtsp://10.9.9.9/s"}
    r = await api.client.post("/cameras", json=body, headers=head)
    assert r.status_code == 201, r.text
    assert not admin.exists(key)
    state.local_cache.clear()
    after = await api.client.get("/cameras", headers=head)
    assert body["name"] in [c["name"] for c in after.json()["items"]]

    limited = api.settings.model_copy(
        update={"rate_limit_per_min": 5, "login_rate_limit_per_min": 3}
    )
    async with running(limited, feed=api.feed, store=api.store) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            codes = [(await c.get("/me", headers=head)).status_code for _ in range(7)]
            assert codes[:5] == [200] * 5
            assert codes[5:] == [429, 429]
            login = {"username": f"nobody-{w.tag}", "password": "wrong"}
            codes = [(await c.post("/auth/login", json=login)).status_code for _ in range(5)]
            assert codes[:3] == [401] * 3
            assert codes[3:] == [429, 429]


@aio
async def test_sse_resume_on_the_cluster_gets_exactly_the_missed_events(api: Api) -> None:
    await test_stream.test_resume_after_disconnect_gets_exactly_the_missed_20_in_order(api)


@aio
async def test_sse_resume_on_the_cluster_reads_postgres_for_trimmed_entries(api: Api) -> None:
    await test_stream.test_resume_reads_postgres_for_entries_trimmed_from_the_stream(api)


def test_doctor_checks_the_cluster_and_the_cluster_setting(
    cluster: PrivateRedisCluster, redis_target: RedisTarget
) -> None:
    from gtvision.doctor import check_redis

    good = check_redis(cluster.url, 3, cluster=True)
    assert good.status == "OK", good
    assert "cluster ok, 3 masters" in good.reason
    wrong = check_redis(seed_urls(cluster.url)[1], 3, cluster=False)
    assert wrong.status == "FAILED"
    assert "GTV_REDIS_CLUSTER" in wrong.reason
    assert "set it to true" in wrong.reason
    single = check_redis(redis_target.url, 3, cluster=True)
    assert single.status == "FAILED"
    assert "set it to false" in single.reason


def test_a_cluster_client_starts_while_its_first_seed_node_is_down(
    cluster: PrivateRedisCluster,
) -> None:
    url = f"redis://u:s3cret@127.0.0.1:{free_port()}," + cluster.url.removeprefix("redis://")
    assert mask_url(url).startswith("redis://u:***@127.0.0.1:")
    assert mask_url(url).endswith(cluster.url.removeprefix("redis://"))
    client = connect(url.replace("u:s3cret@", ""), cluster=True)
    try:
        assert client.ping()
        assert client.set("{seed-test}k", "v")
    finally:
        client.close()


def test_a_feed_made_while_no_cluster_node_answers_holds_then_publishes(
    cluster: PrivateRedisCluster,
) -> None:
    # a flow process starts while the whole cluster is unreachable: making the feed must not
    # fail, and a publish must fail as a transient error (the sink holds the batch and retries)
    dead = f"redis://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/0"
    feed = RedisFeed(dead, f"gtv-hold-{uuid.uuid4().hex[:6]}:", cluster=True)
    try:
        with pytest.raises(TRANSIENT) as caught:
            feed.publish(_pass(7, 1))
        assert is_transient(caught.value), repr(caught.value)
    finally:
        feed.close()
    # the same kind of feed pointed at a live seed list publishes (nothing was made eagerly)
    live = RedisFeed(cluster.url, f"gtv-hold-{uuid.uuid4().hex[:6]}:", cluster=True)
    try:
        assert live.publish(_pass(7, 1))
    finally:
        live.close()


@aio
async def test_master_of_a_city_dies_events_wait_and_sse_resumes_after_failover(
    api: Api, cluster: PrivateRedisCluster
) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    city = api.world.cities["a"]
    victim = master_of(cluster, stream_key(api.settings.redis_prefix, city))
    token = await _stream_token(api, "a", Role.OPERATOR)
    async with serve(app) as base, httpx.AsyncClient(timeout=30) as client:
        got = await _live_first(api, base, client, token)
        cluster.kill(victim)
        during = passes(api, "a", 10, "failover")
        # the writer holds the batch (retrying) until a replica of the dead master is promoted
        await asyncio.wait_for(asyncio.to_thread(api.writer.write, during), 60)
        await asyncio.to_thread(cluster.wait_failover, victim)
        assert master_of(cluster, stream_key(api.settings.redis_prefix, city)) != victim
        async with subscribe(client, base, last=got.id, token=token) as resp:
            again = await read_events(resp, 10, wait_s=20)
        ready = await client.get(f"{base}/readyz")
    assert [next(p.id for p in during if p.id in e.data) for e in again] == [p.id for p in during]
    assert ready.status_code == 200, ready.text
