"""Resources of the web app, opened in the lifespan and shared by every request.

The feed and object store follow the sinks contracts (``gtvision.sinks.feed`` /
``gtvision.sinks.objects``); the protocols below are the part of them the web app uses, so a
test can pass any conforming implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import SecretStr
from starlette.applications import Starlette

from gtvision.config import ConfigError, Settings
from gtvision.redis_keys import AsyncRedis, connect_async, rkey
from gtvision.web.auth import TokenIssuer
from gtvision.web.hub import FeedReaderLike, Hub
from gtvision.web.mediamtx import mediamtx_for
from gtvision.web.pools import REPLICA_WAIT_S, Conn, Pool, ReadRouter, make_pool
from gtvision.web.redisguard import REDIS_TIMEOUT_S, RedisGuard
from gtvision.web.revocation import Generations

log = logging.getLogger(__name__)
SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name, not a secret
T = TypeVar("T")


class ObjectStoreLike(Protocol):
    """The object store methods the web app calls."""

    def get(self, key: str) -> bytes:
        """Bytes of ``key``."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        ...

    def presigned_get(self, key: str, ttl_s: int) -> str:
        """A URL reading ``key`` for ``ttl_s`` seconds."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when missing): LGPD erasure."""
        ...

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file ``path`` as ``key`` (exports)."""
        ...


@dataclass(slots=True)
class AppState:
    """What handlers reach through ``request.app.state.gtv``."""

    settings: Settings
    pool: Pool
    redis: AsyncRedis
    tokens: TokenIssuer
    store: ObjectStoreLike | None
    hub: Hub
    local_cache: dict[str, tuple[float, str]] = field(default_factory=dict)
    refreshing: set[str] = field(default_factory=set)
    live: Any = None  # gtvision.web.live.LiveRelay, made on the first live-video request
    revocation: Generations | None = None  # token generations (set by the lifespan)
    audit_key: bytes = b""  # key of plate references in the audit log (set by the lifespan)
    live_sources: dict[int, Path] = field(default_factory=dict)  # camera id -> local file (demo)
    mediamtx: Any = None  # gtvision.web.mediamtx.MediaMtx while the integration is on
    exports_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    reads: ReadRouter | None = None  # lag-tolerant reads: replica, else the primary
    redis_guard: RedisGuard = field(default_factory=RedisGuard)  # is Redis answering

    async def read_only(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run a read-only, lag-tolerant ``fn(conn)`` on the replica, else on the primary.

        The replica is ``GTV_DATABASE_READ_URL``; the primary serves when none is set or it
        cannot serve (``web.pools``).
        """
        if self.reads is None:
            self.reads = ReadRouter(self.pool, None)
        return await self.reads.run(fn)

    def key(self, tag: object, *parts: object) -> str:
        """A Redis key under ``settings.redis_prefix`` with hash tag ``tag`` (``redis_keys``)."""
        return rkey(self.settings.redis_prefix, tag, *parts)


def _long_secret(value: SecretStr, variable: str) -> bytes:
    """A secret setting's bytes (empty when unset); ConfigError when shorter than 32."""
    given = value.get_secret_value()
    if given and len(given) < 32:
        msg = f"invalid configuration: {variable}='***': expected at least 32 characters"
        raise ConfigError(msg)
    return given.encode()


def jwt_secret(settings: Settings) -> bytes:
    """``GTV_JWT_SECRET``, or a random one persisted as ``<data_dir>/jwt_secret`` (mode 0600).

    A persisted secret keeps tokens valid across restarts of a single-host demo; deployments
    with several hosts must set ``GTV_JWT_SECRET`` to the same value everywhere.
    """
    given = _long_secret(settings.jwt_secret, "GTV_JWT_SECRET")
    if given:
        return given
    path = Path(settings.data_dir) / SECRET_FILE
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    log.warning("GTV_JWT_SECRET is empty: generated one and stored it in %s", path)
    return value


def audit_key(settings: Settings) -> bytes:
    """Key of the plate references in the audit log (``sinks.retention.plate_ref``).

    ``GTV_AUDIT_KEY``, else derived from the JWT signing secret (so a single-host demo needs
    nothing). Changing it (or the JWT secret it is derived from) makes older references
    unsearchable and lets an erasure miss them: set it explicitly and keep it.
    """
    given = _long_secret(settings.audit_key, "GTV_AUDIT_KEY")
    if given:
        return given
    return hmac.new(jwt_secret(settings), b"gtvision audit plate references v1", "sha256").digest()


def _default_feed(settings: Settings) -> FeedReaderLike:
    from gtvision.sinks.feed import make_feed

    reader: FeedReaderLike = make_feed(settings)
    return reader


def _default_store(settings: Settings) -> ObjectStoreLike | None:
    try:
        from gtvision.sinks.objects import make_store
    except ImportError:  # pragma: no cover - sinks package without object store
        return None
    store: ObjectStoreLike = make_store(settings)
    return store


def _import_live() -> None:
    # aiortc is the webrtc extra: without it the live route answers 501
    with contextlib.suppress(ImportError):
        importlib.import_module("gtvision.web.live")


def lifespan_for(
    settings: Settings,
    *,
    feed: FeedReaderLike | None = None,
    store: ObjectStoreLike | None = None,
    redis_client: AsyncRedis | None = None,
    live_sources: dict[int, Path] | None = None,
) -> Any:
    """Lifespan opening the Postgres pool, Redis, store and SSE hub; closing them after.

    ``redis_client`` replaces ``GTV_REDIS_URL`` (``gtvision demo`` passes an in-process one);
    ``live_sources`` maps camera ids to local video files the live relay plays instead of
    their stream (the demo's sample camera).
    """
    if not settings.database_url:
        msg = "invalid configuration: GTV_DATABASE_URL='': the web API needs PostgreSQL"
        raise ConfigError(msg)
    if not settings.redis_url and redis_client is None:
        msg = "invalid configuration: GTV_REDIS_URL='': the web API needs Redis"
        raise ConfigError(msg)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = make_pool(settings.database_url, settings)
        await pool.open(wait=True, timeout=30)
        replica = None
        if settings.database_read_url:
            replica = make_pool(
                settings.database_read_url, settings, timeout=REPLICA_WAIT_S, check=True
            )
            await replica.open(wait=False)  # a replica down at start: reads use the primary
        client = redis_client or connect_async(
            settings.redis_url,
            cluster=settings.redis_cluster,
            max_connections=settings.redis_max_connections,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
        )
        tokens = TokenIssuer(jwt_secret(settings), settings.jwt_ttl_s, settings.stream_token_ttl_s)
        the_store = store if store is not None else _default_store(settings)
        own_feed = _default_feed(settings) if feed is None else None
        hub = Hub(feed if feed is not None else own_feed)  # type: ignore[arg-type]
        state = AppState(settings, pool, client, tokens, the_store, hub)
        state.live_sources = dict(live_sources or {})
        state.audit_key = audit_key(settings)
        extras = AsyncExitStack()
        state.mediamtx = await extras.enter_async_context(mediamtx_for(settings))
        # importing aiortc takes ~0.5 s: do it now, off the loop, not in the first viewer's wait
        asyncio.get_running_loop().run_in_executor(None, _import_live)
        state.reads = ReadRouter(pool, replica, settings.database_read_url)
        from gtvision.web.routes_stream import hub_renderer

        hub.render = hub_renderer(state)
        state.revocation = Generations(client, pool, settings.redis_prefix, state.redis_guard)
        app.state.gtv = state
        try:
            yield
        finally:
            await extras.aclose()
            if state.live is not None:
                await state.live.close()
            await hub.close()
            closer = getattr(own_feed, "aclose", None)
            if closer is not None:
                await closer()
            await client.aclose()
            await state.reads.close()
            await pool.close()

    return lifespan
