"""Redis key names and clients, for one Redis server or a Redis Cluster (``GTV_REDIS_CLUSTER``).

A Redis Cluster spreads keys over 16384 hash slots and refuses a multi-key command, a
``MULTI``/``EXEC`` block or a Lua script whose keys fall in different slots. Only the part of a
key between the first ``{`` and the next ``}`` (its *hash tag*) decides the slot, so keys that
are used together are built as ``<prefix>{<tag>}:<part>:<part>…`` (:func:`rkey`) with a shared
tag:

* a city's live feed (stream + per-event dedupe ids) and its cached lists: ``c<city id>``
  (:func:`city_tag`); so the feed's publish script runs on one node and a city's data lives on
  one master;
* one rate-limit counter base (its per-minute windows): the base itself, e.g. ``rl:<who>``;
* single-key data (refresh tokens, sessions): any tag, usually the key's own kind and id.

Clients: :func:`connect` (synchronous, flow threads) and :func:`connect_async` (web loop) return
``redis.Redis`` / ``redis.asyncio.Redis`` for a single server and the ``RedisCluster`` classes
when ``cluster`` is set. A cluster URL names one or more seed nodes,
``redis://[user:pass@]host1:port1,host2:port2/0``: the client asks the first that answers for
the others, then follows ``MOVED`` redirections and fail-overs. Give several seeds: a process
that starts while its only seed is down cannot find the cluster.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

SyncRedis = redis.Redis | RedisCluster
AsyncRedis = aioredis.Redis | AsyncRedisCluster
ALL_CITIES_TAG = "all"


def rkey(prefix: str, tag: object, *parts: object) -> str:
    """``<prefix>{<tag>}:<parts joined by ':'>``: a key whose hash slot depends on ``tag`` only."""
    tail = ":".join(str(p) for p in parts)
    return f"{prefix}{{{tag}}}:{tail}" if tail else f"{prefix}{{{tag}}}"


def city_tag(city_id: int | None) -> str:
    """Hash tag of a city's keys (``c12``); ``None`` (data of every city) is ``all``."""
    return ALL_CITIES_TAG if city_id is None else f"c{int(city_id)}"


def check_prefix(prefix: str) -> str:
    """``prefix`` if it cannot disturb the hash tags (no ``{`` or ``}``), else ValueError."""
    if "{" in prefix or "}" in prefix:
        msg = f"expected a Redis key prefix without '{{' or '}}', got {prefix!r}"
        raise ValueError(msg)
    return prefix


def seed_urls(url: str) -> list[str]:
    """One URL per seed node of ``scheme://[auth@]h1:p1,h2:p2/db`` (credentials, db kept)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return [url]
    netloc, slash, tail = rest.partition("/")
    auth, at, hosts = netloc.rpartition("@")
    return [f"{scheme}://{auth}{at}{h.strip()}{slash}{tail}" for h in hosts.split(",")]


def seed_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """The URL of the first seed node, and (host, port) of the other seeds."""
    first, *others = seed_urls(url)
    seeds: list[tuple[str, int]] = []
    for other in others:
        parts = urlsplit(other)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        if not host or not port:
            msg = f"expected seed nodes as host:port, got {parts.netloc!r} in the Redis URL"
            raise ValueError(msg)
        seeds.append((host, port))
    return first, seeds


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> SyncRedis:
    """A synchronous client of ``url`` (``RedisCluster`` when ``cluster``), text replies."""
    if cluster:
        from redis.cluster import ClusterNode

        first, seeds = seed_nodes(url)
        nodes = [ClusterNode(h, p) for h, p in seeds]  # type: ignore[no-untyped-call]
        return RedisCluster.from_url(first, startup_nodes=nodes, decode_responses=True, **kwargs)
    return redis.Redis.from_url(url, decode_responses=True, **kwargs)


def connect_async(
    url: str,
    *,
    cluster: bool = False,
    max_connections: int = 100,
    pool_wait_s: float = 5.0,
    **kwargs: Any,
) -> AsyncRedis:
    """An asyncio client of ``url`` (``RedisCluster`` when ``cluster``), text replies.

    A single server's client opens at most ``max_connections`` connections and a command that
    finds them all busy waits up to ``pool_wait_s`` for one (``BlockingConnectionPool``): a
    burst of hundreds of SSE subscribers connecting at once queues for a few milliseconds
    instead of failing (redis-py 8's default pool refuses the 101st concurrent command with
    ``MaxConnectionsError``). A cluster client opens at most ``max_connections`` per node
    (redis-py's asyncio cluster has no waiting pool).
    """
    if max_connections < 1:
        msg = f"max_connections must be >= 1, got {max_connections}"
        raise ValueError(msg)
    if cluster:
        from redis.asyncio.cluster import ClusterNode as AsyncClusterNode

        first, seeds = seed_nodes(url)
        nodes = [AsyncClusterNode(h, p, max_connections=max_connections) for h, p in seeds]
        return AsyncRedisCluster.from_url(
            first,
            startup_nodes=nodes,
            decode_responses=True,
            max_connections=max_connections,
            **kwargs,
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=pool_wait_s,
        **kwargs,
    )
    return aioredis.Redis.from_pool(pool)
