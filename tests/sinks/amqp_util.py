"""RabbitMQ and outbox helpers of the sink tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import aio_pika
import psycopg


def backlog(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class Received:
    """What a consumer got: message ids with counts, broker redeliveries, the messages."""

    ids: Counter[str] = field(default_factory=Counter)
    redelivered: int = 0
    messages: list[aio_pika.abc.AbstractIncomingMessage] = field(default_factory=list)


async def bind_queue(url: str, name: str) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        ex = await ch.declare_exchange("gtvision.events", aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await ch.declare_queue(name, durable=True)
        await queue.bind(ex, "#")


async def drain(
    url: str, name: str, into: Received, idle_s: float = 1.0, *, passive: bool = False
) -> None:
    """Consume and ack everything in queue ``name`` (``passive``: it exists, e.g. a quorum
    queue the relay declared, whose arguments a plain declare would contradict)."""
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        queue = await (ch.get_queue(name) if passive else ch.declare_queue(name, durable=True))
        while True:
            msg = await queue.get(fail=False, timeout=5)
            if msg is None:
                await asyncio.sleep(idle_s)
                msg = await queue.get(fail=False, timeout=5)
                if msg is None:
                    return
            into.ids[str(msg.message_id)] += 1
            into.redelivered += int(bool(msg.redelivered))
            into.messages.append(msg)
            await msg.ack()
