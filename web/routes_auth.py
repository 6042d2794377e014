"""``/auth/*`` and ``/me``: login, refresh rotation, logout, stream tokens.

Two ways to hold the refresh token. API clients get it in the JSON body and send it back in
the body. The console logs in with ``"cookie": true``: the refresh token then lives only in an
``HttpOnly; SameSite=Strict`` cookie (``Secure`` over HTTPS) scoped to ``/auth``, never
readable by the page's script; ``/auth/refresh`` and ``/auth/logout`` with an empty body use
it, rotate it and clear it. Cookie calls must carry the ``X-GTV-Client`` header, which a
cross-site form cannot send (CSRF protection beside SameSite).

Sessions and login limits live in Redis: while it does not answer, login, refresh and logout
answer 503 with ``Retry-After`` (``web/redisguard.py``), before any password is checked.
"""

from __future__ import annotations

import hashlib
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gtvision.redis_keys import rkey
from gtvision.web import ratelimit
from gtvision.web.auth import (
    ROLE_PERMS,
    Perm,
    Principal,
    Role,
    family_key,
    new_refresh_token,
    refresh_key,
    used_key,
    verify_password,
)
from gtvision.web.clientip import limit_key
from gtvision.web.common import audit, ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import LoginIn, RefreshIn
from gtvision.web.problems import ApiError
from gtvision.web.state import AppState

_USER_SQL = (
    "SELECT id, username, password_hash, role, city_id, disabled, token_gen FROM users WHERE "
)
COOKIE = "gtv_refresh"
COOKIE_PATH = "/auth"
SESSION_FLAG = "gtv_session"
CLIENT_HEADER = "x-gtv-client"


KNOWN_ADDRESS_TTL_S = 30 * 24 * 3600


def _user_tag(username: str) -> str:
    """A username as it appears in limit keys (hashed: no user text in key names)."""
    return hashlib.sha256(username.encode()).hexdigest()[:24]


def _refuse(detail: str, retry: int) -> ApiError:
    return ApiError(429, f"{detail}; retry in {retry} s", headers={"Retry-After": str(retry)})


async def _limit_login(state: AppState, ip: str, username: str) -> None:
    """Login limits that keep guessing expensive without locking the owner out.

    * ``GTV_LOGIN_RATE_LIMIT_PER_MIN`` attempts per (username, client address);
    * ``GTV_LOGIN_IP_RATE_LIMIT_PER_MIN`` attempts per client address, all usernames;
    * ``GTV_LOGIN_USER_FAILURES_PER_HOUR`` failed attempts per username from all addresses:
      past it, only addresses the user logged in from in the last 30 days may try.
    """
    s, redis, prefix = state.settings, state.redis, state.settings.redis_prefix
    who, user = limit_key(ip), _user_tag(username)
    for per_min, kind, ident, what in (
        (s.login_rate_limit_per_min, "login", f"{user}:{who}", "for this user from this address"),
        (s.login_ip_rate_limit_per_min, "login-ip", who, "from this address"),
    ):
        if per_min > 0:
            verdict = await ratelimit.hit(redis, [ratelimit.base(prefix, kind, ident)], per_min)
            if verdict.limited:
                detail = f"too many login attempts {what} (limit {per_min}/min)"
                raise _refuse(detail, verdict.retry_after_s)
    budget = s.login_user_failures_per_hour
    if budget > 0:
        fails = ratelimit.base(prefix, "login-fail", user)
        verdict = await ratelimit.peek(redis, fails, budget, window_s=3600)
        if verdict.limited and not await redis.exists(_known_key(prefix, user, who)):
            detail = f"too many failed logins for {username!r}; new addresses must wait"
            raise _refuse(detail, verdict.retry_after_s)


def _known_key(prefix: str, user: str, who: str) -> str:
    return rkey(prefix, f"login-known:{user}", who)


async def _login_result(state: AppState, ip: str, username: str, good: bool) -> None:
    """Count a failure against the username, or remember the address of a success."""
    budget = state.settings.login_user_failures_per_hour
    if budget <= 0:
        return
    prefix, user = state.settings.redis_prefix, _user_tag(username)
    if good:
        key = _known_key(prefix, user, limit_key(ip))
        await state.redis.set(key, 1, ex=KNOWN_ADDRESS_TTL_S)
    else:
        fails = ratelimit.base(prefix, "login-fail", user)
        await ratelimit.hit(state.redis, [fails], budget, window_s=3600)


def _set_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    """Set (or clear, with an empty ``token``) the refresh cookie and its flag.

    ``gtv_session=1`` is a flag without any secret that lets the page know a session may
    exist, so a fresh tab without one does not ask ``/auth/refresh`` for nothing.
    """
    secure = request.url.scheme == "https"
    response.set_cookie(
        COOKIE, token, max_age=max_age, path=COOKIE_PATH, secure=secure, httponly=True,
        samesite="strict",
    )  # fmt: skip
    flag = "1" if token else ""
    response.set_cookie(
        SESSION_FLAG, flag, max_age=max_age, path="/", secure=secure, samesite="strict"
    )


def _require_client_header(call: Call) -> None:
    """403 unless the request carries ``X-GTV-Client``, as every cookie-session call must."""
    if not call.request.headers.get(CLIENT_HEADER):
        msg = f"a cookie session needs the {CLIENT_HEADER} header (CSRF protection)"
        raise ApiError(403, msg)


def _cookie_token(call: Call, given: str | None) -> tuple[str | None, bool]:
    """The refresh token of the body, else of the cookie; and whether the cookie was used."""
    if given:
        return given, False
    token = call.request.cookies.get(COOKIE)
    if token:
        _require_client_header(call)
    return token, bool(token)


async def _tokens(
    state: AppState,
    who: Principal,
    family: str | None = None,
    *,
    cookie_for: Request | None = None,
) -> Response:
    """A new access token and a refresh token of ``family`` (a new one at login).

    With ``cookie_for`` the refresh token goes into the session cookie, not the body.
    """
    access, ttl = state.tokens.issue(who)
    refresh = new_refresh_token()
    rttl = state.settings.refresh_ttl_s
    prefix = state.settings.redis_prefix
    family = family or uuid.uuid4().hex
    # not a MULTI: the two keys may sit on different Redis Cluster nodes, and a half-done pair
    # is harmless (a family without token expires; a token without family is refused)
    async with state.redis.pipeline(transaction=False) as pipe:
        pipe.set(family_key(prefix, family), who.user_id, ex=rttl)
        pipe.set(refresh_key(prefix, refresh), f"{who.user_id}:{family}:{who.gen}", ex=rttl)
        await pipe.execute()
    body: dict[str, object] = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ttl,
        "refresh_expires_in": rttl,
    }
    if cookie_for is None:
        return ok({**body, "refresh_token": refresh})
    response = ok(body)
    _set_cookie(response, cookie_for, refresh, rttl)
    return response


def _text(value: object) -> str:
    """A Redis reply as text (bytes unless the client decodes responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _session(value: object) -> tuple[int, str, int]:
    """``(user id, family, token generation)`` of a refresh token's Redis value."""
    uid, _, rest = _text(value).partition(":")
    family, _, gen = rest.partition(":")
    return int(uid), family, int(gen or 0)


async def _reused(call: Call, used: str) -> ApiError:
    """A rotated-away token came back: revoke its whole family (RFC 9700 §4.14.2), audit it."""
    uid, family, _ = _session(used)
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
        gen=int(str(row["token_gen"])),
    )


@endpoint(
    None,
    "Log in with username and password",
    body=LoginIn,
    responses={401: "bad", 429: "limited", 503: "Redis unavailable"},
)
async def login(call: Call) -> Response:
    """Exchange credentials for an access token and a refresh token."""
    body = call.body(LoginIn)
    if body.cookie:
        _require_client_header(call)
    call.state.redis_guard.require("log in")
    await _limit_login(call.state, call.ip, body.username)
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(_USER_SQL + "username = %s", (body.username,))
        row = await cur.fetchone()
        good = verify_password(row["password_hash"] if row else None, body.password)
        await _login_result(call.state, call.ip, body.username, good and row is not None)
        if row is None or not good or row["disabled"]:
            await audit(conn, None, "login.failed", body.username, call.ip, username=body.username)
            await conn.commit()
            raise ApiError(401, f"wrong username or password for {body.username!r}")
        who = _principal(row)
        await audit(conn, who, "login", who.username, call.ip)
        # stored before the audit row commits: a session Redis could not store is no login
        return await _tokens(call.state, who, cookie_for=call.request if body.cookie else None)


@endpoint(
    None,
    "Rotate a refresh token",
    body=RefreshIn,
    responses={401: "revoked", 503: "Redis unavailable"},
)
async def refresh(call: Call) -> Response:
    """Consume a refresh token (single use) and issue a new access/refresh pair.

    ``{}`` uses (and rotates) the session cookie set by a ``"cookie": true`` login.
    """
    token, by_cookie = _cookie_token(call, call.body(RefreshIn).refresh_token)
    if token is None:
        msg = "no refresh token: give refresh_token or log in with a cookie session"
        raise ApiError(401, msg)
    call.state.redis_guard.require("refresh a session")
    redis, prefix = call.state.redis, call.state.settings.redis_prefix
    key, tomb = refresh_key(prefix, token), used_key(prefix, token)
    value = await redis.getdel(key)
    if value is None:
        used = await redis.get(tomb)
        if used is not None:
            raise await _reused(call, _text(used))
        msg = "refresh token unknown, expired or revoked"
        raise ApiError(401, msg)
    await redis.set(tomb, _text(value), ex=call.state.settings.refresh_ttl_s)
    uid, family, gen = _session(value)
    if not await redis.exists(family_key(prefix, family)):
        msg = "refresh token's session was revoked (logout or reuse of a rotated token)"
        raise ApiError(401, msg)
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(_USER_SQL + "id = %s", (uid,))
        row = await cur.fetchone()
    if row is None or row["disabled"]:
        msg = f"user {uid} no longer exists or is disabled"
        raise ApiError(401, msg)
    if gen < int(row["token_gen"]):
        msg = "refresh token revoked (logout everywhere, password or role change): log in again"
        raise ApiError(401, msg)
    cookie_for = call.request if by_cookie else None
    return await _tokens(call.state, _principal(row), family, cookie_for=cookie_for)


@endpoint(
    Perm.ME,
    "Revoke a refresh token",
    body=RefreshIn,
    responses={403: "another user's session", 503: "Redis unavailable"},
)
async def logout(call: Call) -> Response:
    """End the refresh token's session (its family); the short-lived access token expires.

    Only the token's owner, or an admin, may end a session. ``{}`` ends the cookie session and
    clears the cookie.
    """
    token, by_cookie = _cookie_token(call, call.body(RefreshIn).refresh_token)
    if token:
        call.state.redis_guard.require("end a session")
    redis, prefix = call.state.redis, call.state.settings.redis_prefix
    value = await redis.get(refresh_key(prefix, token)) if token else None
    target = call.user.username
    if value is not None and token is not None:
        uid, family, _ = _session(value)
        if uid != call.user.user_id and not call.user.is_admin:
            msg = "this refresh token belongs to another user's session: only they may end it"
            raise ApiError(403, msg)
        await redis.delete(refresh_key(prefix, token), family_key(prefix, family))
        target = f"user:{uid}"
    async with call.state.pool.connection() as conn:
        await audit(conn, call.user, "logout", target, call.ip)
    response = Response(status_code=204)
    if by_cookie or COOKIE in call.request.cookies:
        _set_cookie(response, call.request, "", 0)
    return response


@endpoint(Perm.ME, "Log out everywhere: revoke every token of the caller")
async def logout_all(call: Call) -> Response:
    """Every access, stream and refresh token of the caller stops working (all sessions)."""
    revocation = call.state.revocation
    assert revocation is not None
    async with call.state.pool.connection() as conn:
        gen = await revocation.bump(conn, call.user.user_id)
        await audit(conn, call.user, "logout.all", call.user.username, call.ip)
    await revocation.publish(call.user.user_id, gen)
    response = Response(status_code=204)
    if COOKIE in call.request.cookies:
        _set_cookie(response, call.request, "", 0)
    return response


@endpoint(Perm.STREAM, "Short-lived token for EventSource (?token=)")
async def stream_token(call: Call) -> Response:
    """A token accepted only by ``GET /stream/events?token=``, valid for a minute or so."""
    token, ttl = call.state.tokens.issue(call.user, typ="stream")
    return ok({"token": token, "expires_in": ttl})


@endpoint(Perm.ME, "The caller, their permissions and city")
async def me(call: Call) -> Response:
    """Who the token belongs to: id, name, role, ``permissions`` and ``city``.

    ``city`` carries the time zone; it is ``null`` for an admin, who sees every city.
    """
    who = call.user
    city = None
    if who.city_id is not None:
        async with call.state.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, name, timezone FROM cities WHERE id = %s", (who.city_id,)
            )
            city = await cur.fetchone()
    return ok(
        {
            "id": who.user_id,
            "username": who.username,
            "role": who.role.value,
            "city_id": who.city_id,
            "city": city,
            "permissions": sorted(p.value for p in ROLE_PERMS[who.role]),
        }
    )


ROUTES = [
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/refresh", refresh, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/auth/logout-all", logout_all, methods=["POST"]),
    Route("/auth/stream-token", stream_token, methods=["POST"]),
    Route("/me", me, methods=["GET"]),
]
