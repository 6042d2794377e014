"""RabbitMQ topology and node choice of the outbox relay, for one broker or a cluster.

* ``GTV_AMQP_URL`` may list the nodes of a cluster, comma-separated
  (``amqp://u:p@mq-0:5672/gtvision,amqp://u:p@mq-1:5672/gtvision``). :func:`connect_any`
  tries them in turn from a given position, so when the node a relay uses dies it moves to the
  next one at once instead of waiting for the dead one to come back.
* The exchange is a durable topic exchange (cluster-wide metadata: it exists on every node).
* Queues gtvision owns (``GTV_AMQP_QUEUES``: ``name=binding pattern``, e.g.
  ``gtvision.alerts=alert.triggered.#``) are declared **quorum** queues (durable, replicated
  by Raft over the cluster's nodes; a publisher confirm means a majority stored the message),
  bound to the exchange before the first publish, so nothing published while their consumers
  are away is lost. Queues of other applications are theirs to declare.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

log = logging.getLogger(__name__)
QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}


@dataclass(frozen=True, slots=True)
class QueueBinding:
    """A queue gtvision owns and one routing-key pattern bound to it."""

    queue: str
    pattern: str


def broker_urls(url: str) -> list[str]:
    """The node URLs of ``GTV_AMQP_URL`` (one, or a comma-separated list)."""
    return [part.strip() for part in url.split(",") if part.strip()]


def parse_queues(items: list[str]) -> list[QueueBinding]:
    """``["name=pattern", …]`` as bindings; ValueError naming a malformed item."""
    out: list[QueueBinding] = []
    for item in items:
        name, sep, pattern = item.partition("=")
        if not sep or not name.strip() or not pattern.strip():
            msg = f"expected queue=pattern (e.g. gtvision.alerts=alert.triggered.#), got {item!r}"
            raise ValueError(msg)
        out.append(QueueBinding(name.strip(), pattern.strip()))
    return out


async def connect_any(
    urls: list[str], start: int, timeout_s: float = 10.0
) -> tuple[AbstractConnection, int]:
    """A connection to the first node that accepts, trying ``urls`` from index ``start``.

    Returns it with the index of that node; raises the last error when none accepts.
    """
    last: BaseException | None = None
    for k in range(len(urls)):
        index = (start + k) % len(urls)
        try:
            return await aio_pika.connect(urls[index], timeout=timeout_s), index
        except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as err:
            log.warning("RabbitMQ node %d of %d refused: %s: %s", index + 1, len(urls),
                        type(err).__name__, err)  # fmt: skip
            last = err
    assert last is not None
    raise last


async def declare(
    channel: AbstractChannel, exchange: str, queues: list[QueueBinding]
) -> AbstractExchange:
    """The durable topic exchange, and every owned queue (quorum) bound to it."""
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    for binding in queues:
        queue = await channel.declare_queue(binding.queue, durable=True, arguments=QUORUM)
        await queue.bind(ex, binding.pattern)
    return ex
