"""Who the client is: forwarded headers, rate-limit identities, login limits (issue 13 §5–7).

Forwarded-header spoofing runs under a real uvicorn with the options ``gtvision serve`` uses
(uvicorn's default believes ``X-Forwarded-For`` from 127.0.0.1); the limit tests run in-process
with chosen peer addresses.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from gtvision.config import Settings
from gtvision.sinks.retention import plate_ref
from gtvision.web.app import create_app
from gtvision.web.auth import Role
from gtvision.web.clientip import TrustedProxies, limit_key
from tests.web.conftest import PASSWORD, World, running, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")
SPOOF = "203.0.113.7"


def settings_with(backend: Any, **kw: Any) -> Settings:
    """The module's settings changed by ``kw``, with Redis keys of their own."""
    settings: Settings = backend[0]
    prefix = f"{settings.redis_prefix}{uuid.uuid4().hex[:6]}:"
    return settings.model_copy(update={"redis_prefix": prefix, **kw})


@contextlib.asynccontextmanager
async def _app(backend: Any, **kw: Any) -> AsyncIterator[tuple[Any, World]]:
    _settings, feed, store, _writer, world = backend
    async with running(settings_with(backend, **kw), feed=feed, store=store) as app:
        yield app, world


def _client(app: Any, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def _audit_ips(dsn: str, target: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT ip FROM audit_log WHERE target = %s ORDER BY id", (target,)
        ).fetchall()
    return [r[0] for r in rows]


# (headers sent from 127.0.0.1, client seen without trusted proxy, with 127.0.0.1 trusted)
FORWARDED_CASES: list[tuple[dict[str, str], str, str]] = [
    ({"X-Forwarded-For": SPOOF}, "127.0.0.1", SPOOF),
    ({"X-Forwarded-For": f"198.51.100.1, {SPOOF}"}, "127.0.0.1", SPOOF),
    ({"X-Forwarded-For": f"{SPOOF}, 127.0.0.1"}, "127.0.0.1", SPOOF),  # trusted hops skipped
    ({"X-Forwarded-For": "not-an-ip"}, "127.0.0.1", "127.0.0.1"),
    ({"X-Forwarded-For": "[2001:db8::5]:1234"}, "127.0.0.1", "2001:db8::5"),
    ({"Forwarded": f"for={SPOOF}"}, "127.0.0.1", "127.0.0.1"),  # RFC 7239: never believed
    ({"X-Real-IP": SPOOF}, "127.0.0.1", "127.0.0.1"),
]


@pytest.mark.parametrize("trusted", [False, True], ids=["no-proxy", "proxy-127.0.0.1"])
async def test_forwarded_headers_are_believed_only_from_trusted_proxies(
    web_backend: Any, trusted: bool
) -> None:
    """Each case is an audited plate search (its row keeps the client address)."""
    kw = {"trusted_proxies": ["127.0.0.1/32"]} if trusted else {}
    settings, feed, store, _writer, world = web_backend
    app = create_app(settings_with(web_backend, **kw), feed=feed, store=store)
    targets = []
    async with serve(app) as base, httpx.AsyncClient() as c:
        token = app.state.gtv.tokens.issue(world.users[("a", Role.VIEWER)])[0]
        for headers, _, _ in FORWARDED_CASES:
            plate = "SPF" + uuid.uuid4().hex[:4].upper()
            targets.append(f"plate:{plate_ref(app.state.gtv.audit_key, plate)}")
            r = await c.get(
                f"{base}/events",
                params={"plate": plate},
                headers={**headers, "Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
    seen = [_audit_ips(settings.database_url, t) for t in targets]
    want = [[case[2] if trusted else case[1]] for case in FORWARDED_CASES]
    assert seen == want


async def test_trusted_proxy_walk_and_ipv6_limit_keys() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    assert proxies.client("8.8.8.8", [b"1.1.1.1"]) == "8.8.8.8"  # untrusted peer
    assert proxies.client("10.0.0.2", [b"1.1.1.1, 10.0.0.3"]) == "1.1.1.1"
    assert proxies.client("10.0.0.2", [b"9.9.9.9", b"1.1.1.1"]) == "1.1.1.1"  # two lines
    assert proxies.client("::1", [b"::ffff:1.2.3.4"]) == "1.2.3.4"
    assert proxies.client("10.0.0.2", [b"10.0.0.9"]) == "10.0.0.9"  # all trusted: leftmost
    assert proxies.client("10.0.0.2", [b"1.1.1.1, junk, 10.0.0.3"]) == "10.0.0.3"
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:2:aaaa::1") != limit_key("2001:db8:1:3::1")
    assert limit_key("::ffff:10.1.2.3") == "10.1.2.3"


async def test_login_ip_limit_is_not_bypassed_by_rotating_x_forwarded_for(web_backend: Any) -> None:
    _settings, feed, store, _writer, _world = web_backend
    s = settings_with(web_backend, login_ip_rate_limit_per_min=4, login_rate_limit_per_min=4)

    async with serve(create_app(s, feed=feed, store=store)) as base, httpx.AsyncClient() as c:
        codes = [
            (
                await c.post(
                    f"{base}/auth/login",
                    json={"username": f"spray-{i}", "password": "x"},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                )
            ).status_code
            for i in range(6)
        ]
    assert codes == [401] * 4 + [429] * 2


async def test_api_limit_keys_on_the_verified_identity_not_the_header(web_backend: Any) -> None:
    async with _app(web_backend, rate_limit_per_min=3) as (app, world):
        token = app.state.gtv.tokens.issue(world.users[("a", Role.VIEWER)])[0]
        async with _client(app, "127.0.0.41") as c:
            junk = [
                (await c.get("/me", headers={"Authorization": f"Bearer junk{i}"})).status_code
                for i in range(5)
            ]
            anonymous = (await c.get("/cameras")).status_code
        assert junk == [401, 401, 401, 429, 429]  # junk tokens share the address's bucket
        assert anonymous == 429
        async with _client(app, "127.0.0.42") as c:
            spellings = [
                f"Bearer {token}",
                f"bearer {token}",
                f"BEARER {token}",
                f"Bearer  {token}",
            ]
            codes = [
                (await c.get("/me", headers={"Authorization": h})).status_code for h in spellings
            ]
        assert codes == [200, 200, 200, 429]  # one token, one bucket, however it is spelled
        other = app.state.gtv.tokens.issue(world.users[("b", Role.VIEWER)])[0]
        async with _client(app, "127.0.0.42") as c:  # same address, another user: own bucket
            assert (
                await c.get("/me", headers={"Authorization": f"Bearer {other}"})
            ).status_code == 200


async def _login(app: Any, peer: str, username: str, password: str) -> int:
    async with _client(app, peer) as c:
        r = await c.post("/auth/login", json={"username": username, "password": password})
        return r.status_code


async def test_failed_logins_from_rotating_addresses_do_not_lock_the_owner_out(
    web_backend: Any,
) -> None:
    kw = {
        "login_rate_limit_per_min": 2,
        "login_ip_rate_limit_per_min": 4,
        "login_user_failures_per_hour": 8,
    }
    async with _app(web_backend, **kw) as (app, world):
        name = world.users[("a", Role.OPERATOR)].username
        wrong = [await _login(app, f"198.18.0.{i}", name, "wrong") for i in range(5)]
        assert wrong == [401] * 5  # more than the per-(user, address) limit: no lockout
        assert await _login(app, "198.18.1.1", name, PASSWORD) == 200  # a fresh address
        # one address guessing one user is stopped by the (username, address) limit
        same = [await _login(app, "198.18.2.1", name, "wrong") for _ in range(3)]
        assert same == [401, 401, 429]
        # one address trying many usernames is stopped by the address limit
        spray = [await _login(app, "198.18.3.1", f"nobody-{i}", "x") for i in range(5)]
        assert spray == [401] * 4 + [429]
        # a distributed attack past the per-username budget closes unknown addresses only
        more = [await _login(app, f"198.18.4.{i}", name, "wrong") for i in range(2)]
        assert more == [401, 429]  # 5 + 2 + 1 = 8 failures: the budget is spent
        assert await _login(app, "198.18.5.5", name, PASSWORD) == 429  # never seen: refused
        assert await _login(app, "198.18.1.1", name, PASSWORD) == 200  # logged in from before
