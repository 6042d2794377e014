"""Postgres restarted while a flow writes events: nothing is lost, nothing duplicated."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import psycopg
import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from gtvision.events import EventBase
from gtvision.sinks.postgres import EventSink
from gtvision.sinks.relay import OutboxRelay, RelayConfig

from .amqp_util import Received, backlog, bind_queue, drain
from .conftest import motion, plate_pass
from .services import PrivatePostgres


def _slow(event: EventBase) -> EventBase:
    time.sleep(0.004)
    return event


def _count(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(DISTINCT id) FROM events").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
def test_postgres_restart_mid_flow_loses_nothing(
    private_pg: PrivatePostgres, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[EventBase] = [plate_pass(i, crop=False) for i in range(1500)]
    events += [motion(i) for i in range(500)]
    flow = Dataflow("pg_restart")
    stream = op.map("slow", op.input("in", flow, TestingSource(events, batch_size=20)), _slow)
    op.output("out", stream, EventSink(private_pg.dsn, backoff_cap_s=1.0))
    queue = f"q_pg_restart_{os.getpid()}"
    asyncio.run(bind_queue(amqp_url, queue))
    relay_stop = threading.Event()
    relay = OutboxRelay(RelayConfig(private_pg.dsn, amqp_url, poll_s=0.1, backoff_cap_s=1.0))

    async def relay_main() -> None:
        stop = asyncio.Event()
        watcher = asyncio.create_task(asyncio.to_thread(relay_stop.wait))
        watcher.add_done_callback(lambda _: stop.set())
        await relay.run(stop)
        await relay.close()

    relayer = threading.Thread(target=asyncio.run, args=(relay_main(),))
    relayer.start()
    runner = threading.Thread(target=run_main, args=(flow,))
    runner.start()
    time.sleep(2.0)
    before = _count(private_pg.dsn)
    private_pg.stop("immediate")  # crash-like: connections cut, no checkpoint
    time.sleep(12.0)  # longer than the pool's 10 s wait: the sink's own retry must hold
    private_pg.start()
    runner.join(timeout=120)
    assert not runner.is_alive()
    deadline = time.monotonic() + 60
    while backlog(private_pg.dsn) and time.monotonic() < deadline:
        time.sleep(0.2)
    relay_stop.set()
    relayer.join(timeout=30)
    got = Received()
    asyncio.run(drain(amqp_url, queue, got, idle_s=0.2))
    with psycopg.connect(private_pg.dsn) as conn:
        ids = {str(r[0]) for r in conn.execute("SELECT id FROM events").fetchall()}
        outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()
    retried = [r for r in caplog.records if "holding" in r.getMessage()]
    print(
        f"events={len(events)} stored_before_restart={before} stored={len(ids)} "
        f"retry_logs={len(retried)} relayed_unique={len(got.ids)} "
        f"duplicates_by_message_id={sum(n - 1 for n in got.ids.values())}"
    )
    assert 0 < before < len(events), "the restart did not happen mid-flow"
    assert retried, "the sink never saw the outage"
    assert ids == {e.id for e in events}
    assert outbox == (len(events),)
    assert backlog(private_pg.dsn) == 0  # the relay survived the restart too
    assert set(got.ids) == ids
