"""Contract modules of the sinks: outbox helper, feed (Redis and in-memory), object stores."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from gtvision.events import MotionIncident, PlatePass, parse_event
from gtvision.sinks.feed import MemoryFeed, RedisFeed, parse_stream_id
from gtvision.sinks.objects import LocalObjectStore, S3ObjectStore, check_key, object_key
from gtvision.sinks.outbox import enqueue, routing_key

from ..conftest import RedisTarget, S3Target

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _pass(i: int, city: int = 12, crop: bytes | None = b"\xff\xd8jpeg") -> PlatePass:
    ts = T0 + timedelta(seconds=i)
    return PlatePass(
        city_id=city,
        camera_id=3,
        ts=ts,
        plate=f"ABC{i:04d}",
        confidence=0.9,
        first_seen=ts,
        last_seen=ts,
        reads=2,
        crop_jpeg=crop,
    )


def test_routing_key_is_type_dot_city() -> None:
    assert routing_key(_pass(1)) == "lpr.detected.12"


def test_enqueue_is_idempotent_and_drops_crop(fresh_pg_dsn: str) -> None:
    event = _pass(1)
    with psycopg.connect(fresh_pg_dsn) as conn:
        with conn.transaction():
            assert enqueue(conn, event) is True
        with conn.transaction():
            assert enqueue(conn, event) is False
        rows = conn.execute("SELECT event_id::text, routing_key, payload FROM outbox").fetchall()
    assert len(rows) == 1
    event_id, key, payload = rows[0]
    assert (event_id, key) == (event.id, "lpr.detected.12")
    assert "crop_jpeg" not in payload
    assert parse_event(payload) == event.model_copy(update={"crop_jpeg": None})


def test_enqueue_rolls_back_with_the_transaction(fresh_pg_dsn: str) -> None:
    with psycopg.connect(fresh_pg_dsn) as conn:

        def failing_change() -> None:
            with conn.transaction():
                enqueue(conn, _pass(2))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing_change()
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def test_stream_id_parsing() -> None:
    assert parse_stream_id("5-2") < parse_stream_id("6-0")
    assert parse_stream_id("0") == (0, 0)
    with pytest.raises(ValueError, match="x-1"):
        parse_stream_id("x-1")


async def test_redis_feed_publish_read_after_and_dedupe(redis_target: RedisTarget) -> None:
    prefix = f"{redis_target.prefix}{uuid.uuid4().hex[:6]}:"
    feed = RedisFeed(redis_target.url, prefix, maxlen=100)
    try:
        ids = [feed.publish(_pass(i)) for i in range(5)]
        assert feed.publish(_pass(0)) == ids[0]  # re-emitted event: same entry
        assert feed.publish_many([_pass(i) for i in range(5)]) == ids  # pipelined, same entries
        items = await feed.read(12, "0-0", 0, 100)
        assert [i.stream_id for i in items] == ids
        assert items[0].event_id == _pass(0).id
        assert items[0].type == "lpr.detected"
        assert items[0].camera_id == 3
        assert "crop_jpeg" not in json.loads(items[0].json)
        assert [i.stream_id for i in await feed.read(12, ids[2], 0, 100)] == ids[3:]
        assert await feed.read(99, "0-0", 0, 10) == []
        assert await feed.oldest_id(12) == ids[0]
        assert not await feed.history_lost(12, "0-0")
        # blocking read woken by a publish from another thread
        timer = threading.Timer(0.2, feed.publish, args=(_pass(50),))
        timer.start()
        got = await feed.read(12, ids[-1], 3000, 10)
        assert [i.event_id for i in got] == [_pass(50).id]
        timer.join()
    finally:
        await feed.aclose()
        feed.close()


async def test_redis_feed_trim_detected(redis_target: RedisTarget) -> None:
    prefix = f"{redis_target.prefix}{uuid.uuid4().hex[:6]}:"
    feed = RedisFeed(redis_target.url, prefix, maxlen=100)
    try:
        first = feed.publish(_pass(0))
        for i in range(1, 400):
            feed.publish(_pass(i))
        oldest = await feed.oldest_id(12)
        assert oldest is not None
        assert parse_stream_id(oldest) > parse_stream_id(first)
        assert await feed.history_lost(12, first)
        assert not await feed.history_lost(12, oldest)
    finally:
        await feed.aclose()
        feed.close()


async def test_memory_feed_semantics() -> None:
    feed = MemoryFeed(maxlen=3)
    ids = [feed.publish(_pass(i)) for i in range(5)]
    assert feed.publish(_pass(4)) == ids[4]
    assert len(set(ids)) == 5
    assert ids == sorted(ids, key=parse_stream_id)
    assert [i.stream_id for i in await feed.read(12, "0", 0, 10)] == ids[2:]
    assert await feed.oldest_id(12) == ids[2]
    assert await feed.history_lost(12, ids[0])
    assert not await feed.history_lost(12, ids[1])
    assert await feed.read(12, ids[4], 50, 10) == []

    def later() -> None:
        time.sleep(0.2)
        feed.publish(_pass(9))

    threading.Thread(target=later).start()
    got = await asyncio.wait_for(feed.read(12, "$", 5000, 10), 5)
    assert [i.event_id for i in got] == [_pass(9).id]


def test_object_key_layout() -> None:
    event = MotionIncident(city_id=2, camera_id=7, ts=T0, start=T0, end=T0, peak_score=0.5)
    assert object_key(event, "mp4") == f"2/7/2026/03/04/{event.id}.mp4"
    for bad in ("../x", "/abs", "a/../b", ""):
        with pytest.raises(ValueError, match="object key"):
            check_key(bad)


def test_local_store_roundtrip_and_signature(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, b"k" * 32, "http://127.0.0.1:8080/")
    store.put("1/2/x.jpg", b"abc", "image/jpeg")
    assert store.get("1/2/x.jpg") == b"abc"
    assert store.exists("1/2/x.jpg")
    url = store.presigned_get("1/2/x.jpg", 60)
    assert url.startswith("http://127.0.0.1:8080/files/1/2/x.jpg?exp=")
    query = dict(p.split("=") for p in url.split("?")[1].split("&"))
    assert store.verify("1/2/x.jpg", query["exp"], query["sig"])
    assert not store.verify("1/2/y.jpg", query["exp"], query["sig"])
    assert not store.verify("1/2/x.jpg", str(int(query["exp"]) + 1), query["sig"])
    assert not store.verify("1/2/x.jpg", str(int(time.time()) - 1), query["sig"])
    other = LocalObjectStore(tmp_path, b"j" * 32, "")
    assert not other.verify("1/2/x.jpg", query["exp"], query["sig"])
    store.delete("1/2/x.jpg")
    assert not store.exists("1/2/x.jpg")
    with pytest.raises(KeyError):
        store.get("1/2/x.jpg")


def test_s3_store_presigned_url_is_readable(s3_target: S3Target) -> None:
    store = S3ObjectStore(
        s3_target.endpoint, s3_target.access_key, s3_target.secret_key, s3_target.bucket
    )
    key = object_key(_pass(1), "jpg")
    store.put(key, b"\xff\xd8crop", "image/jpeg")
    assert store.exists(key)
    assert store.get(key) == b"\xff\xd8crop"
    url = store.presigned_get(key, 300)
    assert url.startswith(f"http://{s3_target.endpoint}/")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"\xff\xd8crop"
        assert resp.headers["Content-Type"] == "image/jpeg"
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(KeyError):
        store.get(key)


def test_make_store_and_feed_follow_settings(
    tmp_path: Path, s3_target: S3Target, redis_target: RedisTarget
) -> None:
    from gtvision.config import load_settings
    from gtvision.sinks.feed import make_feed
    from gtvision.sinks.objects import make_store

    local = make_store(load_settings(data_dir=tmp_path, s3_endpoint=""))
    assert isinstance(local, LocalObjectStore)
    key_file = tmp_path / "objects" / ".signing-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = make_store(load_settings(data_dir=tmp_path, s3_endpoint=""))
    assert isinstance(again, LocalObjectStore)
    url = local.presigned_get("1/2/a.jpg", 60)
    exp, sig = (part.split("=")[1] for part in url.split("?")[1].split("&"))
    assert again.verify("1/2/a.jpg", exp, sig)  # the same key across processes
    s3 = make_store(
        load_settings(
            s3_endpoint=s3_target.endpoint,
            s3_access_key=s3_target.access_key,
            s3_secret_key=s3_target.secret_key,
            s3_bucket=f"made-{uuid.uuid4().hex[:8]}",
        )
    )
    assert isinstance(s3, S3ObjectStore)
    s3.put("k/x.jpg", b"1", "image/jpeg")  # the bucket was created
    assert isinstance(make_feed(load_settings(redis_url="")), MemoryFeed)
    feed = make_feed(load_settings(redis_url=redis_target.url, redis_prefix=redis_target.prefix))
    assert isinstance(feed, RedisFeed)
    feed.close()
