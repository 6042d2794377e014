"""Helpers shared by route modules: JSON responses, the audit log, the Redis cache."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from psycopg import AsyncConnection
from pydantic_core import to_json
from starlette.responses import Response

from gtvision.redis_keys import city_tag
from gtvision.web.auth import Principal
from gtvision.web.endpoint import Call
from gtvision.web.problems import not_found
from gtvision.web.redisguard import REDIS_ERRORS
from gtvision.web.state import AppState

log = logging.getLogger(__name__)
CACHE_TTL_S = 300
LOCAL_TTL_S = 1.0


def ok(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON response (datetimes ISO 8601, UUIDs as strings)."""
    return Response(
        to_json(data), status_code=status, headers=headers, media_type="application/json"
    )


def raw_json(text: str | bytes, status: int = 200) -> Response:
    """A response whose JSON body is already rendered (from the cache)."""
    return Response(text, status_code=status, media_type="application/json")


async def audit(
    conn: AsyncConnection[Any],
    who: Principal | None,
    action: str,
    target: str,
    ip: str,
    detail: dict[str, Any] | None = None,
    *,
    username: str = "",
    city_id: int | None = None,
) -> None:
    """Append one row to ``audit_log`` on ``conn`` (inside the caller's transaction)."""
    await conn.execute(
        "INSERT INTO audit_log (user_id, username, city_id, action, target, detail, ip) "
        "VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)",
        (
            who.user_id if who else None,
            who.username if who else username,
            city_id if city_id is not None else (who.city_id if who else None),
            action,
            target,
            json.dumps(detail or {}, default=str),
            ip,
        ),
    )


def cache_key(state: AppState, kind: str, city: int | None) -> str:
    """Key of a cached list (``cameras`` / ``hotlists``) of one city (or ``all``)."""
    return state.key(city_tag(city), "cache", kind)


async def cache_get(state: AppState, kind: str, city: int | None) -> str | None:
    """Cached JSON text: this process's copy (up to ``LOCAL_TTL_S`` old), else Redis's.

    When the local copy expires, one request refreshes it from Redis while concurrent ones keep
    answering from the expiring copy (no burst of identical Redis reads).
    """
    key = cache_key(state, kind, city)
    local = state.local_cache.get(key)
    now = time.monotonic()
    if local is not None and (local[0] > now or key in state.refreshing):
        return local[1]
    if state.redis_guard.down:
        return None
    state.refreshing.add(key)
    try:
        value = await state.redis.get(key)
    except REDIS_ERRORS as err:
        state.redis_guard.failed(err, f"the {kind} cache (read from PostgreSQL)")
        return None
    finally:
        state.refreshing.discard(key)
    if value is None:
        return None
    text = str(value)
    state.local_cache[key] = (now + LOCAL_TTL_S, text)
    return text


async def cache_put(state: AppState, kind: str, city: int | None, text: str) -> None:
    """Store rendered JSON in Redis for ``CACHE_TTL_S`` and locally for ``LOCAL_TTL_S``."""
    key = cache_key(state, kind, city)
    state.local_cache[key] = (time.monotonic() + LOCAL_TTL_S, text)
    if state.redis_guard.down:
        return
    try:
        await state.redis.set(key, text, ex=CACHE_TTL_S)
    except REDIS_ERRORS as err:
        state.redis_guard.failed(err, f"the {kind} cache")


async def cache_drop(state: AppState, kind: str, city: int) -> None:
    """Invalidate the city's list and the cross-city list after a change.

    Redis (shared by every worker) is cleared at once; other worker processes may serve
    their local copy for at most ``LOCAL_TTL_S`` more. The two keys have different hash tags
    (city / all), so they are deleted one by one (a Redis Cluster refuses a cross-slot DEL).
    """
    for key in (cache_key(state, kind, city), cache_key(state, kind, None)):
        state.local_cache.pop(key, None)
        try:  # the write is committed: failing the request now would invite a duplicate retry
            await state.redis.delete(key)
        except REDIS_ERRORS as err:
            state.redis_guard.failed(err, f"the {kind} cache invalidation")
            log.error(
                "the %s list cache of city %s was not cleared (%s): other web processes may "
                "serve the old list for up to %s s", kind, city, type(err).__name__, CACHE_TTL_S,
            )  # fmt: skip


async def scoped_rows(
    call: Call, table: str, cols: str, city: int | None, city_col: str = "city_id"
) -> list[dict[str, Any]]:
    """All rows of ``table`` in ``city`` (``None``: every city), ordered by id."""
    sql = f"SELECT {cols} FROM {table}"
    async with call.state.pool.connection() as conn:
        if city is None:
            cur = await conn.execute(f"{sql} ORDER BY id".encode())
        else:
            cur = await conn.execute(f"{sql} WHERE {city_col} = %s ORDER BY id".encode(), (city,))
        return await cur.fetchall()


async def scoped_row(
    call: Call, table: str, cols: str, ident: int, kind: str, city_col: str = "city_id"
) -> dict[str, Any]:
    """Row ``ident`` of ``table`` if it is in the caller's city (admin: any), else 404."""
    city = call.user.scope()
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(f"SELECT {cols} FROM {table} WHERE id = %s".encode(), (ident,))
        row = await cur.fetchone()
    if row is None or (city is not None and row[city_col] != city):
        raise not_found(ident, kind=kind)
    return row
