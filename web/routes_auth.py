"""``/auth/*`` and ``/me``: login, refresh rotation, logout, stream tokens."""

from __future__ import annotations

import uuid

from starlette.responses import Response
from starlette.routing import Route

from gtvision.web import ratelimit
from gtvision.web.auth import (
    Perm,
    Principal,
    Role,
    family_key,
    new_refresh_token,
    refresh_key,
    used_key,
    verify_password,
)
from gtvision.web.common import audit, ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import LoginIn, RefreshIn
from gtvision.web.problems import ApiError
from gtvision.web.state import AppState

_USER_SQL = "SELECT id, username, password_hash, role, city_id, disabled FROM users WHERE "


async def _limit_login(state: AppState, ip: str, username: str) -> None:
    per_min = state.settings.login_rate_limit_per_min
    if per_min <= 0:
        return
    keys = [state.key("rl-login", "ip", ip), state.key("rl-login", "u", username)]
    verdict = await ratelimit.hit(state.redis, keys, per_min)
    if verdict.limited:
        retry = verdict.retry_after_s
        detail = f"too many login attempts (limit {per_min}/min); retry in {retry} s"
        raise ApiError(429, detail, headers={"Retry-After": str(retry)})


async def _tokens(state: AppState, who: Principal, family: str | None = None) -> Response:
    """A new access token and a refresh token of ``family`` (a new one at login)."""
    access, ttl = state.tokens.issue(who)
    refresh = new_refresh_token()
    rttl = state.settings.refresh_ttl_s
    prefix = state.settings.redis_prefix
    family = family or uuid.uuid4().hex
    async with state.redis.pipeline(transaction=True) as pipe:
        pipe.set(refresh_key(prefix, refresh), f"{who.user_id}:{family}", ex=rttl)
        pipe.set(family_key(prefix, family), who.user_id, ex=rttl)
        await pipe.execute()
    return ok(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": ttl,
            "refresh_token": refresh,
            "refresh_expires_in": rttl,
        }
    )


def _text(value: object) -> str:
    """A Redis reply as text (bytes unless the client decodes responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


async def _reused(call: Call, used: str) -> ApiError:
    """A rotated-away token came back: revoke its whole family (RFC 9700 §4.14.2), audit it."""
    uid, _, family = used.partition(":")
    await call.state.redis.delete(family_key(call.state.settings.redis_prefix, family))
    async with call.state.pool.connection() as conn:
        await audit(
            conn, None, "refresh.reuse", f"user:{uid}", call.ip, {"family": family[:8]},
            username=f"user:{uid}",
        )  # fmt: skip
    return ApiError(401, "refresh token was already used: its session is revoked, log in again")


def _principal(row: dict[str, object]) -> Principal:
    city = row["city_id"]
    return Principal(
        user_id=int(str(row["id"])),
        username=str(row["username"]),
        role=Role(str(row["role"])),
        city_id=None if city is None else int(str(city)),
    )


@endpoint(
    None, "Log in with username and password", body=LoginIn, responses={401: "bad", 429: "limited"}
)
async def login(call: Call) -> Response:
    """Exchange credentials for an access token and a refresh token."""
    body = call.body(LoginIn)
    await _limit_login(call.state, call.ip, body.username)
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(_USER_SQL + "username = %s", (body.username,))
        row = await cur.fetchone()
        good = verify_password(row["password_hash"] if row else None, body.password)
        if row is None or not good or row["disabled"]:
            await audit(conn, None, "login.failed", body.username, call.ip, username=body.username)
            await conn.commit()
            raise ApiError(401, f"wrong username or password for {body.username!r}")
        who = _principal(row)
        await audit(conn, who, "login", who.username, call.ip)
    return await _tokens(call.state, who)


@endpoint(None, "Rotate a refresh token", body=RefreshIn, responses={401: "revoked"})
async def refresh(call: Call) -> Response:
    """Consume a refresh token (single use) and issue a new access/refresh pair."""
    token = call.body(RefreshIn).refresh_token
    redis, prefix = call.state.redis, call.state.settings.redis_prefix
    key, tomb = refresh_key(prefix, token), used_key(prefix, token)
    value = await redis.getdel(key)
    if value is None:
        used = await redis.get(tomb)
        if used is not None:
            raise await _reused(call, _text(used))
        msg = "refresh token unknown, expired or revoked"
        raise ApiError(401, msg)
    text = _text(value)
    await redis.set(tomb, text, ex=call.state.settings.refresh_ttl_s)
    user_id, _, family = text.partition(":")
    if not await redis.exists(family_key(prefix, family)):
        msg = "refresh token's session was revoked (logout or reuse of a rotated token)"
        raise ApiError(401, msg)
    async with call.state.pool.connection() as conn:
        uid = int(user_id)
        cur = await conn.execute(_USER_SQL + "id = %s", (uid,))
        row = await cur.fetchone()
    if row is None or row["disabled"]:
        msg = f"user {uid} no longer exists or is disabled"
        raise ApiError(401, msg)
    return await _tokens(call.state, _principal(row), family)


@endpoint(Perm.ME, "Revoke a refresh token", body=RefreshIn)
async def logout(call: Call) -> Response:
    """End the refresh token's session (its family); the short-lived access token expires."""
    token = call.body(RefreshIn).refresh_token
    prefix = call.state.settings.redis_prefix
    value = await call.state.redis.getdel(refresh_key(prefix, token))
    if value is not None:
        text = _text(value)
        await call.state.redis.delete(family_key(prefix, text.partition(":")[2]))
    async with call.state.pool.connection() as conn:
        await audit(conn, call.user, "logout", call.user.username, call.ip)
    return Response(status_code=204)


@endpoint(Perm.STREAM, "Short-lived token for EventSource (?token=)")
async def stream_token(call: Call) -> Response:
    """A token accepted only by ``GET /stream/events?token=``, valid for a minute or so."""
    token, ttl = call.state.tokens.issue(call.user, typ="stream")
    return ok({"token": token, "expires_in": ttl})


@endpoint(Perm.ME, "The caller")
async def me(call: Call) -> Response:
    """Who the token belongs to: id, name, role, city."""
    who = call.user
    return ok(
        {
            "id": who.user_id,
            "username": who.username,
            "role": who.role.value,
            "city_id": who.city_id,
        }
    )


ROUTES = [
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/refresh", refresh, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/auth/stream-token", stream_token, methods=["POST"]),
    Route("/me", me, methods=["GET"]),
]
