"""LGPD retention and erasure on real Postgres, Redis and S3 (moto), written by the real sink."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis

from gtvision.events import EventBase, PlatePass
from gtvision.sinks.feed import MemoryFeed, RedisFeed, stream_key
from gtvision.sinks.objects import S3ObjectStore
from gtvision.sinks.postgres import EventWriter, open_pool
from gtvision.sinks.retention import Purged, Purger

from ..conftest import RedisTarget

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _pass(plate: str, city: int, camera: int, age_days: float, n: int = 0) -> PlatePass:
    ts = NOW - timedelta(days=age_days, seconds=n)
    return PlatePass(
        city_id=city,
        camera_id=camera,
        ts=ts,
        plate=plate,
        confidence=0.9,
        first_seen=ts,
        last_seen=ts,
        reads=3,
        crop_jpeg=b"\xff\xd8" + plate.encode(),
    )


@dataclass(frozen=True)
class World:
    """Cities 1 and 2; camera ids by retention: ``short`` 7 days, ``long`` 60 days."""

    city: int
    other_city: int
    short: int
    long: int


def _world(dsn: str) -> World:
    with psycopg.connect(dsn) as conn:
        ids = []
        for name in ("ret-a", "ret-b"):
            row = conn.execute(
                "INSERT INTO cities (name) VALUES (%s) RETURNING id", (name,)
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
        cams = []
        for name, days in (("short", 7), ("long", 60)):
            row = conn.execute(
                "INSERT INTO cameras (city_id, name, stream_url, retention_days)"
                " VALUES (%s, %s, 'rtsp://10.0.0.1/x', %s) RETURNING id",
                (ids[0], name, days),
            ).fetchone()
            assert row is not None
            cams.append(int(row[0]))
    return World(ids[0], ids[1], cams[0], cams[1])


def _feed(url: str, key: str) -> list[dict[str, str]]:
    """Fields of every entry of a stream."""
    client = redis.Redis.from_url(url, decode_responses=True)
    entries: Any = client.xrange(key)
    client.close()
    return [dict(fields) for _, fields in entries]


def _ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {str(r[0]) for r in conn.execute("SELECT id FROM events").fetchall()}


def _write(dsn: str, store: S3ObjectStore, feed: RedisFeed, events: Sequence[EventBase]) -> None:
    with open_pool(dsn) as pool:
        EventWriter(pool, store, feed).write(list(events))


def test_expire_removes_rows_objects_feed_and_outbox(
    fresh_pg_dsn: str,
    s3_store: S3ObjectStore,
    redis_feed: RedisFeed,
    feed_prefix: str,
    redis_target: RedisTarget,
) -> None:
    w = _world(fresh_pg_dsn)
    unknown = 999  # a camera that is not registered (any more): GTV_RETENTION_DAYS applies
    expired = [
        _pass("AAA0001", w.city, w.short, 10),
        _pass("AAA0002", w.city, w.short, 8),
        _pass("AAA0003", w.city, unknown, 40),
    ]
    kept = [
        _pass("BBB0001", w.city, w.short, 5),
        _pass("BBB0002", w.city, w.long, 50),
        _pass("BBB0003", w.city, unknown, 20),
    ]
    _write(fresh_pg_dsn, s3_store, redis_feed, [*expired, *kept])
    with psycopg.connect(fresh_pg_dsn) as conn:
        crops: dict[str, str] = dict(
            conn.execute("SELECT id::text, crop_key FROM events").fetchall()
        )
        conn.execute(  # an alert ack cascades with its event
            "INSERT INTO alert_acks (event_id, username) VALUES (%s, 'op')", (expired[0].id,)
        )
        conn.execute(
            "INSERT INTO audit_log (ts, action) VALUES (%s, 'old'), (%s, 'recent')",
            (NOW - timedelta(days=800), NOW - timedelta(days=10)),
        )
        conn.execute(
            "INSERT INTO recordings (id, city_id, camera_id, started_at, ended_at, object_key)"
            " VALUES ('rec-old', %(c)s, %(cam)s, %(old)s, %(old)s, 'rec/old.mp4'),"
            " ('rec-new', %(c)s, %(cam)s, %(new)s, %(new)s, 'rec/new.mp4')",
            {
                "c": w.city,
                "cam": w.short,
                "old": NOW - timedelta(days=9),
                "new": NOW - timedelta(days=1),
            },
        )
        conn.execute(  # exports copy recordings: they expire with the same retention
            "INSERT INTO exports (id, city_id, camera_id, range_start, range_end, started_at,"
            " ended_at, segments, object_key, bytes) VALUES"
            " ('exp-old', %(c)s, %(cam)s, %(old)s, %(old)s, %(old)s, %(old)s, 1, 'exp/old.mp4', 3),"
            " ('exp-new', %(c)s, %(cam)s, %(new)s, %(new)s, %(new)s, %(new)s, 1, 'exp/new.mp4', 3)",
            {
                "c": w.city,
                "cam": w.short,
                "old": NOW - timedelta(days=9),
                "new": NOW - timedelta(days=1),
            },
        )
    s3_store.put("rec/old.mp4", b"old", "video/mp4")
    s3_store.put("rec/new.mp4", b"new", "video/mp4")
    s3_store.put("exp/old.mp4", b"old", "video/mp4")
    s3_store.put("exp/new.mp4", b"new", "video/mp4")
    purger = Purger(fresh_pg_dsn, s3_store, redis_feed, batch=2)

    dry = purger.expire(NOW, default_days=30, audit_days=730, dry_run=True)
    assert dry == Purged(events=3, recordings=1, exports=1, audit=1)
    assert len(_ids(fresh_pg_dsn)) == 6

    done = purger.expire(NOW, default_days=30, audit_days=730)
    assert done == Purged(
        events=3, objects=3, feed_entries=3, outbox=3, recordings=1, exports=1, audit=1
    )
    assert not s3_store.exists("exp/old.mp4")
    assert s3_store.exists("exp/new.mp4")
    assert _ids(fresh_pg_dsn) == {e.id for e in kept}
    for e in expired:
        assert not s3_store.exists(crops[e.id])
    for e in kept:
        assert s3_store.exists(crops[e.id])
    assert not s3_store.exists("rec/old.mp4")
    assert s3_store.get("rec/new.mp4") == b"new"
    feed_ids = [f["id"] for f in _feed(redis_target.url, stream_key(feed_prefix, w.city))]
    assert sorted(feed_ids) == sorted(e.id for e in kept)
    with psycopg.connect(fresh_pg_dsn) as conn:
        outbox = {str(r[0]) for r in conn.execute("SELECT event_id FROM outbox").fetchall()}
        acks = conn.execute("SELECT count(*) FROM alert_acks").fetchone()
        audit = [r[0] for r in conn.execute("SELECT action FROM audit_log").fetchall()]
        recs = [r[0] for r in conn.execute("SELECT id FROM recordings").fetchall()]
    assert outbox == {e.id for e in kept}
    assert acks == (0,)
    assert audit == ["recent"]
    assert recs == ["rec-new"]
    assert purger.expire(NOW, default_days=30, audit_days=730) == Purged()  # idempotent


def test_erase_one_plate_in_a_city_then_everywhere(
    fresh_pg_dsn: str,
    s3_store: S3ObjectStore,
    redis_feed: RedisFeed,
    feed_prefix: str,
    redis_target: RedisTarget,
) -> None:
    w = _world(fresh_pg_dsn)
    mine_a = [_pass("ABC1D23", w.city, w.long, 0.5, n) for n in range(3)]
    mine_b = [_pass("ABC1D23", w.other_city, 5, 0.5)]
    others = [_pass("ABC1D24", w.city, w.long, 0.5), _pass("XYZ9876", w.other_city, 5, 0.5)]
    _write(fresh_pg_dsn, s3_store, redis_feed, [*mine_a, *mine_b, *others])
    purger = Purger(fresh_pg_dsn, s3_store, redis_feed)

    assert purger.erase("abc-1d23", city_id=w.city, actor="t", dry_run=True) == Purged(events=3)
    done = purger.erase("abc-1d23", city_id=w.city, actor="dpo", reference="LGPD 2026/17")
    assert done == Purged(events=3, objects=3, feed_entries=3, outbox=3)
    assert _ids(fresh_pg_dsn) == {e.id for e in [*mine_b, *others]}
    done = purger.erase("ABC1D23", city_id=None, actor="dpo", reference="LGPD 2026/18")
    assert done.events == 1
    assert _ids(fresh_pg_dsn) == {e.id for e in others}
    for city in (w.city, w.other_city):
        entries = _feed(redis_target.url, stream_key(feed_prefix, city))
        assert all("ABC1D23" not in f["json"] for f in entries)
    with psycopg.connect(fresh_pg_dsn) as conn:
        rows = conn.execute(
            "SELECT username, city_id, action, target, detail FROM audit_log ORDER BY id"
        ).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("dpo", w.city, "plate.erase", "plate"),
        ("dpo", None, "plate.erase", "plate"),
    ]
    assert rows[0][4]["reference"] == "LGPD 2026/17"
    assert rows[0][4]["events"] == "3"
    assert "ABC1D23" not in json.dumps([r[4] for r in rows]).upper()  # the log keeps no plate
    with pytest.raises(ValueError, match="letters or digits"):
        purger.erase("--", city_id=None, actor="t")


class _FlakyStore:
    """Deletes through S3 but fails on the n-th delete once."""

    def __init__(self, store: S3ObjectStore, fail_at: int) -> None:
        self.store = store
        self.calls = 0
        self.fail_at = fail_at

    def delete(self, key: str) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            msg = "object store unreachable"
            raise ConnectionError(msg)
        self.store.delete(key)


def test_a_failed_batch_is_rolled_back_and_redone(
    fresh_pg_dsn: str, s3_store: S3ObjectStore, redis_feed: RedisFeed
) -> None:
    w = _world(fresh_pg_dsn)
    old = [_pass(f"OLD{i:04d}", w.city, w.short, 9, i) for i in range(4)]
    _write(fresh_pg_dsn, s3_store, redis_feed, old)
    flaky = _FlakyStore(s3_store, fail_at=2)
    with pytest.raises(ConnectionError):
        Purger(fresh_pg_dsn, flaky, redis_feed, batch=10).expire(
            NOW, default_days=30, audit_days=730
        )
    assert _ids(fresh_pg_dsn) == {e.id for e in old}  # no row went: the batch rolled back
    done = Purger(fresh_pg_dsn, flaky, redis_feed, batch=10).expire(
        NOW, default_days=30, audit_days=730
    )
    assert done.events == 4
    assert done.objects == 4
    assert _ids(fresh_pg_dsn) == set()


def test_two_purgers_at_once_delete_each_event_once(
    fresh_pg_dsn: str, s3_store: S3ObjectStore
) -> None:
    w = _world(fresh_pg_dsn)
    old = [_pass(f"MNY{i:04d}", w.city, w.short, 9, i) for i in range(120)]
    with open_pool(fresh_pg_dsn) as pool:
        EventWriter(pool, s3_store, None).write(old)
    results: list[Purged] = []

    def run() -> None:
        purger = Purger(fresh_pg_dsn, s3_store, None, batch=7)
        results.append(purger.expire(NOW, default_days=30, audit_days=730))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.events for r in results) == 120
    assert sum(r.objects for r in results) == 120
    assert _ids(fresh_pg_dsn) == set()


def test_memory_feed_forgets_like_xdel() -> None:
    feed = MemoryFeed()
    events = [_pass(f"MEM{i:04d}", 1, 2, 0) for i in range(3)]
    ids = feed.publish_many(list(events))
    assert feed.forget(1, [ids[1], "9-9"]) == 1
    assert feed.forget(2, [ids[0]]) == 0
    left = asyncio.run(feed.read(1, "0-0", 0, 10))
    assert [i.event_id for i in left] == [events[0].id, events[2].id]
    assert asyncio.run(feed.history_lost(1, ids[0]))  # readers after ids[0] missed one


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gtvision.cli", "retention", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_run_and_erase(
    fresh_pg_dsn: str,
    service_env: dict[str, str],
    s3_store: S3ObjectStore,
    redis_feed: RedisFeed,
    feed_prefix: str,
) -> None:
    env = {**service_env, "GTV_DATABASE_URL": fresh_pg_dsn, "GTV_REDIS_PREFIX": feed_prefix}
    env["GTV_RETENTION_DAYS"] = "30"
    w = _world(fresh_pg_dsn)
    now = datetime.now(UTC)
    old = _pass("OLD1A23", w.city, 999, (now - NOW).total_seconds() / 86400 + 45)
    fresh = [_pass("NEW1A23", w.city, w.long, 0.1, n) for n in range(2)]
    _write(fresh_pg_dsn, s3_store, redis_feed, [old, *fresh])

    dry = _cli(env, "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["would_remove"]["events"] == 1
    run = _cli(env, "run")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["removed"] == {
        "events": 1, "objects": 1, "feed_entries": 1, "outbox": 1, "recordings": 0, "exports": 0,
        "audit": 0,
    }  # fmt: skip
    assert _ids(fresh_pg_dsn) == {e.id for e in fresh}

    unscoped = _cli(env, "erase", "NEW1A23")
    assert unscoped.returncode == 2
    assert unscoped.stderr.strip() == "gtvision: retention erase needs --city N or --all-cities"
    erase = _cli(env, "erase", "new-1a23", "--all-cities", "--reference", "req 9")
    assert erase.returncode == 0, erase.stderr
    assert json.loads(erase.stdout)["removed"]["events"] == 2
    assert _ids(fresh_pg_dsn) == set()
    nodb = _cli({**env, "GTV_DATABASE_URL": ""}, "run")
    assert nodb.returncode == 2
    assert "GTV_DATABASE_URL" in nodb.stderr
