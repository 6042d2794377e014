"""Postgres event sink on real Postgres, Redis and S3 (moto)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import redis
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from gtvision.events import parse_event
from gtvision.sinks.feed import RedisFeed, stream_key
from gtvision.sinks.objects import S3ObjectStore, object_key
from gtvision.sinks.postgres import EventSink, EventWriter, open_pool

from ..conftest import RedisTarget, free_port
from .conftest import motion, plate_pass


def _counts(dsn: str) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox),"
            " (SELECT count(*) FROM events WHERE stream_id IS NOT NULL)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_writer_is_idempotent_and_links_crops(
    fresh_pg_dsn: str,
    s3_store: S3ObjectStore,
    redis_feed: RedisFeed,
    feed_prefix: str,
    redis_target: RedisTarget,
) -> None:
    events = [plate_pass(i) for i in range(10)] + [motion(i) for i in range(5)]
    with open_pool(fresh_pg_dsn) as pool:
        writer = EventWriter(pool, s3_store, redis_feed)
        writer.write(events)
        writer.write(events[3:12])  # re-emission
        writer.write(events + events)
    assert _counts(fresh_pg_dsn) == (15, 15, 15)
    client = redis.Redis.from_url(redis_target.url, decode_responses=True)
    assert client.xlen(stream_key(feed_prefix, 12)) == 15
    with psycopg.connect(fresh_pg_dsn) as conn:
        row = conn.execute(
            "SELECT crop_key, payload, plate, stream_id FROM events WHERE id = %s",
            (events[2].id,),
        ).fetchone()
    assert row is not None
    crop_key, payload, plate, stream_id = row
    assert crop_key == object_key(events[2], "jpg")
    assert s3_store.get(crop_key) == b"\xff\xd8crop2"
    stored = parse_event(payload)
    assert stored == events[2].model_copy(update={"crop_jpeg": None, "crop_key": crop_key})
    assert plate == "ABC0002"
    entry: Any = client.xrange(stream_key(feed_prefix, 12), stream_id, stream_id)
    assert entry[0][1]["id"] == events[2].id
    client.close()


def test_crash_between_publish_and_stream_id_does_not_duplicate(
    fresh_pg_dsn: str, redis_feed: RedisFeed, feed_prefix: str, redis_target: RedisTarget
) -> None:
    events = [motion(i) for i in range(4)]
    with open_pool(fresh_pg_dsn) as pool:
        EventWriter(pool, None, redis_feed).write(events)
        with psycopg.connect(fresh_pg_dsn) as conn:  # crash after XADD, before UPDATE
            conn.execute("UPDATE events SET stream_id = NULL")
        EventWriter(pool, None, redis_feed).write(events)
    assert _counts(fresh_pg_dsn) == (4, 4, 4)
    client = redis.Redis.from_url(redis_target.url)
    assert client.xlen(stream_key(feed_prefix, 12)) == 4
    client.close()


def test_bytewax_flow_into_sink(
    fresh_pg_dsn: str, s3_store: S3ObjectStore, redis_feed: RedisFeed
) -> None:
    events = [plate_pass(i, city=i % 3) for i in range(30)]
    flow = Dataflow("sink_test")
    stream = op.input("in", flow, TestingSource(events + events[:10], batch_size=7))
    op.output(
        "out",
        stream,
        EventSink(fresh_pg_dsn, store_factory=lambda: s3_store, feed_factory=lambda: redis_feed),
    )
    run_main(flow)
    assert _counts(fresh_pg_dsn) == (30, 30, 30)


def test_object_store_down_holds_the_batch_until_it_is_back(fresh_pg_dsn: str) -> None:
    from minio import Minio
    from moto.server import ThreadedMotoServer

    port = free_port()
    store = S3ObjectStore(f"127.0.0.1:{port}", "testing", "testing", "held")
    events = [plate_pass(i) for i in range(3)]
    with open_pool(fresh_pg_dsn) as pool:
        writer = EventWriter(pool, store, None, backoff_cap_s=0.5)
        worker = threading.Thread(target=writer.write, args=(events,))
        worker.start()
        time.sleep(10.0)  # longer than the SDK's own retries (~6 s): the sink's retry holds
        assert worker.is_alive()  # held, not dropped, not crashed
        assert _counts(fresh_pg_dsn) == (0, 0, 0)  # the row waits for its crop
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            Minio(f"127.0.0.1:{port}", "testing", "testing", secure=False).make_bucket("held")
            worker.join(timeout=60)
            assert not worker.is_alive()
            assert writer.retries > 0
            assert _counts(fresh_pg_dsn) == (3, 3, 0)
            assert store.get(object_key(events[0], "jpg")) == b"\xff\xd8crop0"
        finally:
            server.stop()
