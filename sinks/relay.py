"""Outbox relay: publish unsent outbox rows to RabbitMQ, mark them sent after the broker confirms.

* Topic exchange ``gtvision.events`` (durable), routing key ``<event type>.<city id>``.
* Persistent messages, ``content_type`` ``application/json``, ``message_id`` = event id,
  ``type`` = event type, header ``schema_version``; body = the event JSON (``docs/events.md``).
* Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` inside a transaction held while the
  batch is published, so several relays can run side by side without sending a row twice.
* ``sent_at`` is set only for messages the broker confirmed (publisher confirms); unconfirmed
  ones keep ``sent_at`` NULL, get ``attempts``/``last_error`` and are retried.
* Broker or database outages: close, back off (capped), reconnect, carry on. With several
  broker nodes in ``GTV_AMQP_URL`` the relay reconnects to the next node (``sinks.amqp``), and
  the queues of ``GTV_AMQP_QUEUES`` are declared as quorum queues before publishing.

Delivery is at-least-once: a confirm lost in a broker crash makes the row go out again, so
consumers dedupe by ``message_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import aio_pika
import psycopg
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from gtvision import metrics
from gtvision.config import Settings
from gtvision.sinks.amqp import QueueBinding, broker_urls, connect_any, declare, parse_queues
from gtvision.sinks.backoff import Backoff

log = logging.getLogger(__name__)

_CLAIM = """
SELECT id, event_id::text, routing_key, payload FROM outbox
WHERE sent_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
"""
_SENT = "UPDATE outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY(%s)"
_FAILED = "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id = ANY(%s)"
_BACKLOG = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
_OLDEST = (
    "SELECT EXTRACT(EPOCH FROM now() - created_at)::float8 FROM outbox "
    "WHERE sent_at IS NULL ORDER BY id LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Where to read and publish, and how fast."""

    database_url: str
    amqp_url: str
    exchange: str = "gtvision.events"
    batch: int = 200
    poll_s: float = 0.5
    backoff_cap_s: float = 30.0
    confirm_timeout_s: float = 10.0
    stats_s: float = 5.0
    queues: tuple[QueueBinding, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> RelayConfig:
        """From ``GTV_DATABASE_URL``, ``GTV_AMQP_URL``, ``GTV_AMQP_EXCHANGE``, ``GTV_RELAY_*``."""
        return cls(
            database_url=settings.database_url,
            amqp_url=settings.amqp_url,
            exchange=settings.amqp_exchange,
            batch=settings.relay_batch,
            poll_s=settings.relay_poll_s,
            backoff_cap_s=settings.reconnect_cap_s,
            queues=tuple(parse_queues(settings.amqp_queues)),
        )


def build_message(event_id: str, payload: dict[str, Any]) -> aio_pika.Message:
    """The AMQP message of one outbox row."""
    return aio_pika.Message(
        body=json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(),
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event_id,
        type=str(payload.get("type", "")),
        headers={"schema_version": int(payload.get("schema_version", 1))},
    )


class OutboxRelay:
    """Moves outbox rows to RabbitMQ until ``stop`` is set."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.sent = 0
        self.failed = 0
        self._conn: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._db: psycopg.AsyncConnection[Any] | None = None
        self._urls = broker_urls(config.amqp_url)
        self.node = 0  # index in GTV_AMQP_URL of the node in use (or to try first)

    async def _ensure(self) -> tuple[psycopg.AsyncConnection[Any], AbstractExchange]:
        if self._db is None or self._db.closed:
            self._db = await psycopg.AsyncConnection.connect(
                self.config.database_url, connect_timeout=5
            )
        if self._exchange is None or self._conn is None or self._conn.is_closed:
            self._conn, self.node = await connect_any(self._urls, self.node)
            self._channel = await self._conn.channel(publisher_confirms=True)
            self._exchange = await declare(
                self._channel, self.config.exchange, list(self.config.queues)
            )
        return self._db, self._exchange

    async def _publish(self, exchange: AbstractExchange, row: tuple[Any, ...]) -> None:
        _id, event_id, key, payload = row
        await exchange.publish(
            build_message(event_id, payload),
            routing_key=key,
            timeout=self.config.confirm_timeout_s,
        )

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; return how many were confirmed."""
        db, exchange = await self._ensure()
        async with db.transaction():
            cur = await db.execute(_CLAIM, (self.config.batch,))
            rows = await cur.fetchall()
            if not rows:
                return 0
            results = await asyncio.gather(
                *(self._publish(exchange, row) for row in rows), return_exceptions=True
            )
            ok = [row[0] for row, res in zip(rows, results, strict=True) if res is None]
            bad = [(row, res) for row, res in zip(rows, results, strict=True) if res is not None]
            if ok:
                await db.execute(_SENT, (ok,))
            if bad:
                first = bad[0][1]
                err = f"{type(first).__name__}: {first}"[:500]
                await db.execute(_FAILED, (err, [row[0] for row, _ in bad]))
                log.warning(
                    "broker did not confirm %d messages (%s): %s",
                    len(bad),
                    err,
                    ", ".join(str(row[1]) for row, _ in bad[:20]),
                )
        self.sent += len(ok)
        self.failed += len(bad)
        metrics.RELAY_PUBLISHED.inc(len(ok))
        metrics.RELAY_UNCONFIRMED.inc(len(bad))
        if bad:
            await self._drop_broker()
            raise ConnectionError(err)
        return len(ok)

    async def backlog(self) -> int:
        """Rows not yet confirmed by the broker."""
        db, _ = await self._ensure()
        cur = await db.execute(_BACKLOG)
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _drop_broker(self) -> None:
        conn, self._conn, self._channel, self._exchange = self._conn, None, None, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception as err:
                log.debug("closing broken AMQP connection: %s", err)

    async def _drop_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                await db.close()
            except Exception as err:
                log.debug("closing broken database connection: %s", err)

    async def watch_outbox(self, stop: asyncio.Event) -> None:
        """Export the outbox backlog and its oldest unsent row's age every ``stats_s``.

        Its own connection, so the figures keep coming while the broker is down (that is when
        they matter); a database outage leaves the last figures and retries.
        """
        db: psycopg.AsyncConnection[Any] | None = None
        try:
            while not stop.is_set():
                try:
                    if db is None or db.closed:
                        db = await psycopg.AsyncConnection.connect(
                            self.config.database_url, connect_timeout=5, autocommit=True
                        )
                    row = await (await db.execute(_BACKLOG)).fetchone()
                    oldest = await (await db.execute(_OLDEST)).fetchone()
                    metrics.OUTBOX_BACKLOG.set(int(row[0]) if row else 0)
                    metrics.OUTBOX_OLDEST_AGE.set(max(0.0, float(oldest[0])) if oldest else 0.0)
                except (psycopg.Error, OSError) as err:
                    log.debug("outbox figures not measured: %s", err)
                    if db is not None:
                        await db.close()
                    db = None
                await _sleep_or_stop(stop, self.config.stats_s)
        finally:
            if db is not None:
                await db.close()

    async def run(self, stop: asyncio.Event, *, until_empty: bool = False) -> None:
        """Relay until ``stop`` is set (or, with ``until_empty``, until the backlog is empty)."""
        watcher = asyncio.create_task(self.watch_outbox(stop), name="gtv-outbox-figures")
        try:
            await self._relay(stop, until_empty=until_empty)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _relay(self, stop: asyncio.Event, *, until_empty: bool) -> None:
        backoff = Backoff(cap_s=self.config.backoff_cap_s)
        while not stop.is_set():
            try:
                count = await self.relay_once()
            except (psycopg.Error, OSError, aio_pika.exceptions.AMQPError, TimeoutError) as err:
                delay = backoff.next()
                log.warning(
                    "relay interrupted (%s: %s), reconnecting in %.1fs",
                    type(err).__name__,
                    str(err).strip().splitlines()[0] if str(err).strip() else "",
                    delay,
                )
                if isinstance(err, psycopg.Error):
                    await self._drop_db()
                else:
                    await self._drop_broker()
                    self.node = (self.node + 1) % len(self._urls)  # the next node first
                await _sleep_or_stop(stop, delay)
                continue
            backoff.reset()
            if count == 0:
                if until_empty:
                    return
                await _sleep_or_stop(stop, self.config.poll_s)

    async def close(self) -> None:
        """Close both connections."""
        await self._drop_broker()
        await self._drop_db()


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        return
