"""The sinks' metrics: events counted once, sink failures by step, the outbox figures."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

from gtvision.events import PlatePass
from gtvision.sinks.postgres import EventWriter, open_pool
from gtvision.sinks.relay import OutboxRelay, RelayConfig


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _pass(city: int) -> PlatePass:
    now = datetime.now(UTC)
    return PlatePass(
        city_id=city, camera_id=7, ts=now, plate=f"MTR{uuid.uuid4().hex[:4].upper()}",
        confidence=0.9, first_seen=now, last_seen=now, reads=2,
    )  # fmt: skip


def test_events_are_counted_once_per_stored_row_by_type_and_city(fresh_pg_dsn: str) -> None:
    city = str(900_000 + uuid.uuid4().int % 1000)
    pool = open_pool(fresh_pg_dsn)
    writer = EventWriter(pool, None, None)
    before = _value("gtvision_events_total", type="lpr.detected", city=city)
    batches = _value("gtvision_sink_write_seconds_count")
    events = [_pass(int(city)) for _ in range(3)]
    writer.write(events)
    writer.write(events[:2])  # a re-emission after a restart: stored once, counted once
    pool.close()
    assert _value("gtvision_events_total", type="lpr.detected", city=city) - before == 3
    assert _value("gtvision_sink_write_seconds_count") - batches == 2


def test_sink_failures_are_counted_by_step_and_kind() -> None:
    # nothing listens on port 1: the pool gives up after 0.5 s, a transient failure
    pool: ConnectionPool[Any] = ConnectionPool(
        "postgresql://postgres@127.0.0.1:1/nothing", min_size=1, timeout=0.5, open=True
    )
    writer = EventWriter(pool, None, None, sleep=lambda _s: (_ for _ in ()).throw(TimeoutError()))
    before = _value("gtvision_sink_errors_total", step="event_insert", kind="transient")
    try:
        writer.write([_pass(1)])
    except TimeoutError:
        pass
    finally:
        pool.close(timeout=1)
    assert _value("gtvision_sink_errors_total", step="event_insert", kind="transient") > before


def test_relay_exports_the_backlog_and_the_age_of_the_oldest_unsent_row(
    fresh_pg_dsn: str,
) -> None:
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        for age in (120, 30):
            conn.execute(
                "INSERT INTO outbox (event_id, routing_key, payload, created_at) "
                "VALUES (%s, 'x.1', '{}', now() - make_interval(secs => %s))",
                (str(uuid.uuid4()), age),
            )
        conn.execute(
            "INSERT INTO outbox (event_id, routing_key, payload, created_at, sent_at) "
            "VALUES (%s, 'x.1', '{}', now() - interval '1 hour', now())",
            (str(uuid.uuid4()),),
        )
    relay = OutboxRelay(RelayConfig(fresh_pg_dsn, "amqp://guest:guest@127.0.0.1:1/", stats_s=0.1))

    async def watch_once() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(relay.watch_outbox(stop))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(watch_once())
    assert _value("gtvision_outbox_backlog") == 2  # the sent row does not count
    assert 120 <= _value("gtvision_outbox_oldest_unsent_age_seconds") < 130
