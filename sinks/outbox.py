"""Transactional outbox: the row that tells RabbitMQ about a change, written with that change.

Callers write their change and call :func:`enqueue` on the same connection inside the same
transaction; the relay (``gtvision relay``) publishes unsent rows later and marks them sent only
after the broker confirmed them. ``ON CONFLICT (event_id) DO NOTHING`` makes re-enqueueing the
same (deterministic) event id a no-op, so replays never publish twice from the outbox.
"""

from __future__ import annotations

from typing import Any

import psycopg

from gtvision.events import EventBase

_INSERT = (
    "INSERT INTO outbox (event_id, routing_key, payload) VALUES (%s, %s, %s::jsonb) "
    "ON CONFLICT (event_id) DO NOTHING"
)


def routing_key(event: EventBase) -> str:
    """RabbitMQ routing key ``<event type>.<city id>``, e.g. ``lpr.detected.12``."""
    return f"{event.type}.{event.city_id}"


def event_json(event: EventBase) -> str:
    """Event JSON without crop bytes (``crop_jpeg`` lives in the object store)."""
    return event.model_dump_json(exclude={"crop_jpeg"})


def enqueue(conn: psycopg.Connection[Any], event: EventBase) -> bool:
    """Add ``event`` to the outbox on ``conn`` (inside the caller's transaction).

    Returns True when a row was inserted, False when the event id was already enqueued.
    """
    cur = conn.execute(_INSERT, (event.id, routing_key(event), event_json(event)))
    return cur.rowcount == 1


async def enqueue_async(conn: psycopg.AsyncConnection[Any], event: EventBase) -> bool:
    """:func:`enqueue` on an async connection (the web app's pool)."""
    cur = await conn.execute(_INSERT, (event.id, routing_key(event), event_json(event)))
    return cur.rowcount == 1
