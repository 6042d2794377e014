"""Throughput of the Postgres event sink vs a bare INSERT, measured in the same run.

* baseline: ``executemany`` of the same ``INSERT INTO events … ON CONFLICT DO NOTHING`` rows in
  one transaction per batch (no outbox, no feed);
* sink: ``EventWriter.write`` — events + outbox rows in one transaction, the pending check, the
  pipelined idempotent Redis publish and the ``stream_id`` update;
* re-emit: ``EventWriter.write`` of batches already stored (what a resumed flow costs).

Needs the local PostgreSQL (``GTV_TEST_PG_ADMIN``) and Redis (``GTV_TEST_REDIS``).
Usage: ``.venv/bin/python bench/sink.py [--events 5000] [--batch 100]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import create_database, drop_database  # type: ignore[import-not-found]  # noqa: E402

from gtvision.events import PlatePass  # noqa: E402
from gtvision.sinks.feed import RedisFeed  # noqa: E402
from gtvision.sinks.postgres import _INSERT_EVENT, EventWriter, event_row, open_pool  # noqa: E402

PG_ADMIN = os.environ.get("GTV_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("GTV_TEST_REDIS", "redis://127.0.0.1:6379/0")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _events(n: int, camera: int) -> list[PlatePass]:
    out = []
    for i in range(n):
        ts = T0 + timedelta(milliseconds=i)
        out.append(
            PlatePass(
                city_id=1, camera_id=camera, ts=ts, plate=f"ABC{i % 10000:04d}", confidence=0.9,
                first_seen=ts, last_seen=ts, reads=3,
            )
        )  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    name = f"gtv_bench_sink_{tag}"
    dsn = create_database(PG_ADMIN, name)
    prefix = f"gtvbench:{tag}:"
    feed = RedisFeed(REDIS, prefix)
    try:
        base_events, sink_events = _events(args.events, 1), _events(args.events, 2)
        b = args.batch
        with psycopg.connect(dsn) as conn:
            t = time.perf_counter()
            for i in range(0, len(base_events), b):
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        _INSERT_EVENT, [event_row(e, None) for e in base_events[i : i + b]]
                    )
            base_s = time.perf_counter() - t
        with open_pool(dsn) as pool:
            writer = EventWriter(pool, None, feed)
            t = time.perf_counter()
            for i in range(0, len(sink_events), b):
                writer.write(sink_events[i : i + b])
            sink_s = time.perf_counter() - t
            t = time.perf_counter()
            for i in range(0, len(sink_events), b):
                writer.write(sink_events[i : i + b])
            again_s = time.perf_counter() - t
    finally:
        feed.close()
        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()
        drop_database(PG_ADMIN, name)
    n = args.events
    print(f"baseline INSERT      {n / base_s:8.0f} events/s")
    print(f"sink (row+outbox+feed) {n / sink_s:6.0f} events/s  ratio {base_s / sink_s:.2f}")
    print(f"re-emitted batches   {n / again_s:8.0f} events/s  ratio {base_s / again_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
