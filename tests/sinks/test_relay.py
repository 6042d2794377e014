"""Outbox relay on real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import aio_pika
import pytest

from gtvision.events import parse_event
from gtvision.sinks.postgres import EventWriter, open_pool, stored_form
from gtvision.sinks.relay import OutboxRelay, RelayConfig

from .amqp_util import Received, backlog, bind_queue, drain
from .conftest import motion, plate_pass
from .services import PrivateRabbit


async def test_relay_publishes_confirmed_persistent_messages(
    fresh_pg_dsn: str, amqp_url: str
) -> None:
    events = [plate_pass(i) for i in range(20)] + [motion(i, city=7) for i in range(5)]
    with open_pool(fresh_pg_dsn) as pool:
        EventWriter(pool, None, None).write(events)
    queue = f"q_basic_{os.getpid()}"
    await bind_queue(amqp_url, queue)
    relay = OutboxRelay(RelayConfig(fresh_pg_dsn, amqp_url, batch=8))
    await relay.run(asyncio.Event(), until_empty=True)
    await relay.close()
    assert relay.sent == 25
    assert backlog(fresh_pg_dsn) == 0
    got = Received()
    await drain(amqp_url, queue, got, idle_s=0.1)
    assert got.ids == Counter({e.id: 1 for e in events})
    by_id = {str(m.message_id): m for m in got.messages}
    for event in events:
        msg = by_id[event.id]
        assert msg.content_type == "application/json"
        assert msg.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert msg.routing_key == f"{event.type}.{event.city_id}"
        assert msg.headers["schema_version"] == 1
        assert parse_event(msg.body) == stored_form(event, None)


async def test_two_relays_never_send_a_row_twice(fresh_pg_dsn: str, amqp_url: str) -> None:
    events = [plate_pass(i, crop=False) for i in range(600)]
    with open_pool(fresh_pg_dsn) as pool:
        EventWriter(pool, None, None).write(events)
    queue = f"q_two_{os.getpid()}"
    await bind_queue(amqp_url, queue)
    relays = [OutboxRelay(RelayConfig(fresh_pg_dsn, amqp_url, batch=25)) for _ in range(2)]
    await asyncio.gather(*(r.run(asyncio.Event(), until_empty=True) for r in relays))
    for r in relays:
        await r.close()
    assert sum(r.sent for r in relays) == 600
    assert all(r.sent > 0 for r in relays)
    got = Received()
    await drain(amqp_url, queue, got, idle_s=0.1)
    assert len(got.ids) == 600
    assert max(got.ids.values()) == 1


class LiveConsumer(threading.Thread):
    """Consumes ``queue`` the whole time through a robust (reconnecting) connection.

    Acks each message after a short delay, so some are in flight when the broker stops: those
    come back with ``redelivered`` set (broker redeliveries, counted apart from duplicates).
    """

    def __init__(self, url: str, queue: str) -> None:
        super().__init__(daemon=True)
        self.url, self.queue = url, queue
        self.got = Received()
        self.stop_flag = threading.Event()

    async def _main(self) -> None:
        conn = await aio_pika.connect_robust(self.url, reconnect_interval=1)
        async with conn:
            ch = await conn.channel()
            await ch.set_qos(prefetch_count=50)
            queue = await ch.declare_queue(self.queue, durable=True)

            async def on_message(msg: aio_pika.abc.AbstractIncomingMessage) -> None:
                self.got.ids[str(msg.message_id)] += 1
                self.got.redelivered += int(bool(msg.redelivered))
                await asyncio.sleep(0.05)
                try:
                    await msg.ack()
                except Exception:  # the channel died with the broker: it will come again
                    return

            await queue.consume(on_message)
            await asyncio.to_thread(self.stop_flag.wait)

    def run(self) -> None:
        asyncio.run(self._main())


@pytest.mark.slow
def test_broker_down_30s_every_event_arrives(
    fresh_pg_dsn: str, private_rabbit: PrivateRabbit
) -> None:
    queue = "q_outage"
    asyncio.run(bind_queue(private_rabbit.url, queue))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update(
        GTV_DATABASE_URL=fresh_pg_dsn,
        GTV_AMQP_URL=private_rabbit.url,
        GTV_RECONNECT_CAP_S="2",
        GTV_RELAY_POLL_S="0.2",
    )
    relay = subprocess.Popen(
        [sys.executable, "-m", "gtvision.cli", "relay"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    written: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        with open_pool(fresh_pg_dsn) as pool:
            writer = EventWriter(pool, None, None)
            i = 0
            while not stop.is_set():
                batch = [plate_pass(i + k, crop=False) for k in range(5)]
                writer.write(batch)
                written.extend(e.id for e in batch)
                i += 5
                time.sleep(0.1)

    consumer = LiveConsumer(private_rabbit.url, queue)
    consumer.start()
    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(5)
        before_stop = len(written)
        private_rabbit.stop()
        down_at = time.monotonic()
        time.sleep(30)
        during = len(written) - before_stop
        backlog_while_down = backlog(fresh_pg_dsn)
        private_rabbit.start()
        print(f"broker down {time.monotonic() - down_at:.1f}s")
        time.sleep(5)
    finally:
        stop.set()
        producer.join()
    deadline = time.monotonic() + 60
    while backlog(fresh_pg_dsn) and time.monotonic() < deadline:
        time.sleep(0.5)
    final_backlog = backlog(fresh_pg_dsn)
    relay.terminate()
    out, _ = relay.communicate(timeout=30)
    deadline = time.monotonic() + 60
    while set(consumer.got.ids) != set(written) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)
    consumer.stop_flag.set()
    consumer.join(timeout=30)
    got = consumer.got
    left = Received()
    asyncio.run(drain(private_rabbit.url, queue, left, idle_s=0.2))
    duplicates = sum(n - 1 for n in got.ids.values())
    print(
        f"events={len(written)} written_while_down={during} backlog_while_down="
        f"{backlog_while_down} received_unique={len(got.ids)} duplicates_by_message_id="
        f"{duplicates} broker_redeliveries={got.redelivered} final_backlog={final_backlog}"
        f" left_in_queue={sum(left.ids.values())}"
    )
    assert backlog_while_down > 0, "the broker outage did not hold anything back"
    assert final_backlog == 0, out[-2000:]
    assert len(written) == len(set(written))
    assert set(got.ids) == set(written)  # every event, deduped by message_id
    assert set(left.ids) <= set(written)


def test_relay_command_names_missing_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env["GTV_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/postgres"
    proc = subprocess.run(
        [sys.executable, "-m", "gtvision.cli", "relay", "--until-empty"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "GTV_AMQP_URL" in proc.stderr
