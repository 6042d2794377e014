"""Access-token revocation: a per-user token generation, checked on every authenticated request.

* ``users.token_gen`` (PostgreSQL) is the truth. It is bumped (+1) by ``POST /auth/logout-all``
  and by ``PATCH /users/{id}`` when it disables the user or changes the role or password;
  deleting a user (or its city) marks it gone.
* Every access and stream token carries the generation its user had at issue (claim ``gen``);
  a token whose generation is below the user's current one answers 401. Refresh tokens carry it
  too, so a revoked session cannot mint new access tokens.
* Where the current generation comes from, cheapest first: this process's memo (at most
  :data:`GEN_CACHE_S` old), the Redis copy ``<prefix>{user:<id>}:gen`` (written after every
  bump; filled from PostgreSQL with ``SET NX`` on a miss, so a reader never overwrites a newer
  value; expires after :data:`REDIS_TTL_S`), PostgreSQL.
* Staleness: the process that bumps sees it at once; every other process within
  :data:`GEN_CACHE_S` plus one Redis read (one lookup per user runs at a time; requests
  meanwhile use the expiring value). If the Redis write after a bump fails, other processes
  may keep the old copy for up to :data:`REDIS_TTL_S`. If Redis is down, requests are checked
  against PostgreSQL (one query per user per :data:`GEN_CACHE_S` per process).

Open server-sent-event streams and live-video (WebRTC relay) sessions are checked every
:data:`STREAM_CHECK_S` by :func:`until_revoked` and end when their token is revoked (the
browser's reconnect then gets 401).

Cost: one dict lookup per request, one Redis GET per user per second per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import RedisError

from gtvision.redis_keys import rkey
from gtvision.web.redisguard import RedisGuard

log = logging.getLogger(__name__)
GEN_CACHE_S = 1.0
STREAM_CHECK_S = 5.0  # an open stream/session of a revoked token ends within this (+ GEN_CACHE_S)
REDIS_TTL_S = 60
GONE = -1  # the user does not exist (deleted): every token refused
_MEMO_MAX = 100_000


class Generations:
    """Current token generations of users (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]],
        prefix: str,
        guard: RedisGuard | None = None,
    ) -> None:
        self.redis = redis
        self.guard = guard or RedisGuard()
        self.pool = pool
        self.prefix = prefix
        self._memo: dict[int, tuple[float, int]] = {}
        self._pending: dict[int, asyncio.Future[int]] = {}

    def key(self, user_id: int) -> str:
        """Redis key of the user's generation (its own hash tag)."""
        return rkey(self.prefix, f"user:{user_id}", "gen")

    def forget(self) -> None:
        """Drop this process's memo (tests)."""
        self._memo.clear()

    def _remember(self, user_id: int, gen: int) -> int:
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[user_id] = (time.monotonic() + GEN_CACHE_S, gen)
        return gen

    async def current(self, user_id: int) -> int:
        """The user's generation now (:data:`GONE` for a user that does not exist).

        One lookup per user at a time: while it runs, concurrent requests use the expiring
        value (or wait for the lookup when there is none), so a burst of requests costs one
        Redis read, not one per request.
        """
        hit = self._memo.get(user_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._pending.get(user_id)
        if pending is None:
            pending = self._pending[user_id] = asyncio.ensure_future(self._lookup(user_id))
            pending.add_done_callback(lambda _: self._pending.pop(user_id, None))
        elif hit is not None:
            return hit[1]
        return await asyncio.shield(pending)

    async def _lookup(self, user_id: int) -> int:
        key = self.key(user_id)
        if self.guard.down:  # skip Redis while it does not answer: PostgreSQL is the truth
            return self._remember(user_id, await self._from_db(user_id))
        try:
            cached = await self.redis.get(key)
        except RedisError as err:
            self.guard.failed(err, "token generation check")
            cached = None
        if cached is not None:
            return self._remember(user_id, int(cached))
        gen = await self._from_db(user_id)
        if not self.guard.down:
            with contextlib.suppress(RedisError):  # NX: never overwrite a newer published value
                await self.redis.set(key, gen, ex=REDIS_TTL_S, nx=True)
        return self._remember(user_id, gen)

    async def _from_db(self, user_id: int) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT token_gen FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        return GONE if row is None else int(row["token_gen"])

    async def bump(self, conn: AsyncConnection[Any], user_id: int) -> int:
        """Raise the user's generation in ``conn``'s transaction; :meth:`publish` after commit."""
        cur = await conn.execute(
            "UPDATE users SET token_gen = token_gen + 1 WHERE id = %s RETURNING token_gen",
            (user_id,),
        )
        row = await cur.fetchone()
        return GONE if row is None else int(row["token_gen"])

    async def publish(self, user_id: int, gen: int) -> None:
        """Make a committed generation (or :data:`GONE`) visible to every process."""
        self._remember(user_id, gen)
        try:
            await self.redis.set(self.key(user_id), gen, ex=REDIS_TTL_S)
        except RedisError as err:
            self.guard.failed(err, "token generation publish")
            log.error(
                "token generation of user %s not published (%s): other processes may accept "
                "its old tokens for up to %s s",
                user_id, err, REDIS_TTL_S,
            )  # fmt: skip

    def known(self, user_id: int, token_gen: int) -> bool | None:
        """:meth:`valid` from this process's fresh memo without awaiting; ``None``: ask it."""
        hit = self._memo.get(user_id)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1] != GONE and token_gen >= hit[1]

    async def valid(self, user_id: int, token_gen: int) -> bool:
        """Whether a token of ``user_id`` issued at ``token_gen`` is still good."""
        current = await self.current(user_id)
        return current != GONE and token_gen >= current


async def until_revoked(gens: Generations | None, user_id: int, token_gen: int) -> bool:
    """Return ``True`` once a token of ``user_id`` issued at ``token_gen`` is revoked.

    Polls every :data:`STREAM_CHECK_S` (a revocation made by another process has no event to
    wait for here). A failed check (PostgreSQL and Redis both unreachable) is logged and tried
    again at the next tick: an open stream is not cut because a store blinked. Returns
    ``False`` at once when revocation is off (no Redis/PostgreSQL state in this app).
    """
    if gens is None:
        return False
    while True:
        try:
            if not await gens.valid(user_id, token_gen):
                return True
        except Exception as err:  # psycopg/pool errors: keep the session, ask again later
            log.warning("token generation of user %s not checked: %s", user_id, err)
        await asyncio.sleep(STREAM_CHECK_S)
