"""Fixtures and helpers of the sink tests."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import pytest
import redis

from gtvision.events import MotionIncident, PlatePass
from gtvision.sinks.clips import PacketRing
from gtvision.sinks.feed import RedisFeed
from gtvision.sinks.objects import S3ObjectStore

from ..conftest import RedisTarget, S3Target, free_port
from .services import PrivatePostgres, PrivateRabbit

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def feed_ring(
    ring: PacketRing, video: Path, offset_s: float = 0.0, until_s: float = 1e9,
    city: int | None = None,
) -> int:  # fmt: skip
    """Tap a file's packets into ``ring`` as one connection at ``T0 + offset_s``; the count."""
    n = 0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 90000)
        ring.reset(stream, city)
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            seconds = float(packet.pts * tb)
            if seconds > until_s:
                break
            ring.push(packet, T0 + timedelta(seconds=offset_s + seconds))
            n += 1
    return n


def plate_pass(i: int, city: int = 12, camera: int = 3, crop: bool = True) -> PlatePass:
    """A deterministic plate pass number ``i``."""
    ts = T0 + timedelta(seconds=i)
    return PlatePass(
        city_id=city,
        camera_id=camera,
        ts=ts,
        plate=f"ABC{i:04d}",
        confidence=0.9,
        first_seen=ts,
        last_seen=ts,
        reads=2,
        crop_jpeg=b"\xff\xd8crop%d" % i if crop else None,
    )


def motion(i: int, city: int = 12, camera: int = 4) -> MotionIncident:
    """A deterministic motion incident number ``i``."""
    ts = T0 + timedelta(seconds=i)
    return MotionIncident(
        city_id=city, camera_id=camera, ts=ts, start=ts, end=ts, peak_score=0.4, frames=3
    )


@pytest.fixture
def feed_prefix(redis_target: RedisTarget) -> Iterator[str]:
    """A Redis key prefix private to one test."""
    prefix = f"{redis_target.prefix}{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_target.url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def redis_feed(redis_target: RedisTarget, feed_prefix: str) -> Iterator[RedisFeed]:
    """A RedisFeed on the test prefix."""
    feed = RedisFeed(redis_target.url, feed_prefix)
    yield feed
    feed.close()


@pytest.fixture
def s3_store(s3_target: S3Target) -> S3ObjectStore:
    """The object store on moto."""
    return S3ObjectStore(
        s3_target.endpoint, s3_target.access_key, s3_target.secret_key, s3_target.bucket
    )


@pytest.fixture
def private_rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRabbit]:
    """A RabbitMQ node private to one test (it may be stopped and started)."""
    node = PrivateRabbit(tmp_path_factory.mktemp("rabbit"), free_port(), free_port())
    node.start()
    yield node
    node.stop()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster private to one test (it may be restarted), database migrated.

    Lives under ``/tmp`` (not pytest's 0700 tmp dir) because the ``postgres`` user runs it.
    """
    base = Path(tempfile.mkdtemp(prefix="gtv-pg-"))
    cluster = PrivatePostgres(base, free_port())
    cluster.start()
    cluster.create()
    yield cluster
    with contextlib.suppress(RuntimeError):
        cluster.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)
