"""Auth, contract and per-resource behaviour of the web API on real PostgreSQL/Redis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from starlette.routing import Route

from gtvision.web.auth import Role
from gtvision.web.openapi import build_openapi
from tests.conftest import RedisTarget
from tests.web.conftest import PASSWORD, SECRET, Api, make_settings, running

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_login_me_refresh_rotation_and_logout(api: Api) -> None:
    who = api.world.users[("a", Role.OPERATOR)]
    r = await api.client.post("/auth/login", json={"username": who.username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    tokens = r.json()
    me = await api.client.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    body = me.json()
    assert {k: body[k] for k in ("id", "username", "role", "city_id")} == {
        "id": who.user_id,
        "username": who.username,
        "role": "operator",
        "city_id": who.city_id,
    }
    assert body["city"]["timezone"] == "America/Sao_Paulo"
    assert "alerts:ack" in body["permissions"]
    assert "hotlists:write" not in body["permissions"]
    r2 = await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r2.status_code == 200
    # the old refresh token was consumed by the rotation
    again = await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401
    assert again.headers["content-type"] == "application/problem+json"
    new = r2.json()
    out = await api.client.post(
        "/auth/logout",
        json={"refresh_token": new["refresh_token"]},
        headers={"Authorization": f"Bearer {new['access_token']}"},
    )
    assert out.status_code == 204
    revoked = await api.client.post("/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert revoked.status_code == 401


async def test_reused_refresh_token_revokes_its_session_only(api: Api) -> None:
    who = api.world.users[("a", Role.ANALYST)]

    async def login() -> dict[str, str]:
        r = await api.client.post(
            "/auth/login", json={"username": who.username, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        tokens: dict[str, str] = r.json()
        return tokens

    async def rotate(token: str) -> Any:
        return await api.client.post("/auth/refresh", json={"refresh_token": token})

    stolen, other = await login(), await login()  # two sessions (e.g. laptop and phone)
    r = await rotate(stolen["refresh_token"])  # the thief rotates first
    assert r.status_code == 200
    thief = r.json()
    replay = await rotate(stolen["refresh_token"])  # the owner's copy comes back: reuse
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]
    assert (await rotate(thief["refresh_token"])).status_code == 401  # whole family revoked
    assert (await rotate(other["refresh_token"])).status_code == 200  # other session lives
    with psycopg.connect(api.settings.database_url) as conn:
        row = conn.execute(
            "SELECT target FROM audit_log WHERE action = 'refresh.reuse' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row == (f"user:{who.user_id}",)


async def test_wrong_password_is_401_and_audited(api: Api) -> None:
    who = api.world.users[("b", Role.VIEWER)]
    r = await api.client.post("/auth/login", json={"username": who.username, "password": "nope"})
    assert r.status_code == 401
    audit = await api.client.get(
        "/audit", params={"action": "login.failed"}, headers=api.auth(None, Role.ADMIN)
    )
    assert any(row["username"] == who.username for row in audit.json()["items"])


def _forge(claims: dict[str, object], key: str, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


async def test_bad_tokens_are_401(api: Api) -> None:
    good = api.token("a", Role.VIEWER)
    head, body, sig = good.split(".")
    now = int(time.time())
    base = {"sub": "1", "name": "x", "role": "admin", "city": None, "typ": "access", "iat": now}
    none_alg = _forge({**base, "exp": now + 60}, "", "none")
    cases = {
        "tampered": f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{sig}",
        "bad signature": f"{head}.{body}.{sig[::-1]}",
        "expired": _forge({**base, "exp": now - 5, "iat": now - 100}, SECRET),
        "alg none": none_alg,
        "wrong key": _forge({**base, "exp": now + 60}, "another-key-" + "y" * 40),
        "HS512": _forge({**base, "exp": now + 60}, SECRET, "HS512"),
        "stream token as access": api.issuer.issue(api.world.users[("a", Role.VIEWER)], "stream")[
            0
        ],
        "garbage": "not-a-jwt",
    }
    for name, token in cases.items():
        r = await api.client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.headers["content-type"] == "application/problem+json", name
    assert (await api.client.get("/me")).status_code == 401


async def test_login_brute_force_gets_429(
    pg_dsn: str, redis_target: RedisTarget, tmp_path: Path, web_backend: Any
) -> None:
    world = web_backend[4]
    settings = make_settings(pg_dsn, redis_target, tmp_path, login_rate_limit_per_min=5)

    async with running(settings, feed=web_backend[1], store=web_backend[2]) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            name = world.users[("a", Role.ANALYST)].username
            codes = [
                (await client.post("/auth/login", json={"username": name, "password": f"g{i}"}))
                for i in range(8)
            ]
    assert [r.status_code for r in codes[:5]] == [401] * 5
    assert {r.status_code for r in codes[5:]} == {429}
    assert 1 <= int(codes[-1].headers["retry-after"]) <= 60
    # even the right password is refused while limited
    assert codes[-1].json()["status"] == 429


async def test_openapi_documents_every_route(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    app_routes = api.client._transport.app.routes  # type: ignore[attr-defined]
    assert doc == build_openapi(app_routes)
    documented = [r for r in app_routes if isinstance(r, Route) and r.include_in_schema]
    assert len(documented) >= 30
    for route in documented:
        path = route.path.replace(":int", "").replace(":uuid", "").replace(":path", "")
        for method in (route.methods or set()) - {"HEAD"}:
            op = doc["paths"][path][method.lower()]
            assert op["summary"], (path, method)
            assert op["responses"], (path, method)


async def test_problem_json_and_field_errors(api: Api) -> None:
    h = api.auth("a", Role.CITY_ADMIN)
    r = await api.client.post("/cameras", json={"name": "", "stream_url": "http://x"}, headers=h)
    assert r.status_code == 422
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "name"), ("body", "stream_url")}
    assert (await api.client.get("/nope")).headers["content-type"] == "application/problem+json"
    big = await api.client.post(
        "/auth/login",
        content=b"x" * (api.settings.max_body_bytes + 1),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413


async def test_health_ready_metrics(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}
    await api.client.get(f"/cameras/{api.world.cameras['a']}", headers=api.auth("a", Role.VIEWER))
    text = (await api.client.get("/metrics")).text
    assert 'route="/cameras/{camera_id:int}"' in text
    assert "gtvision_sse_subscribers" in text


async def test_general_rate_limit_per_token_answers_429(
    pg_dsn: str, redis_target: RedisTarget, tmp_path: Path, web_backend: Any
) -> None:
    world = web_backend[4]
    settings = make_settings(pg_dsn, redis_target, tmp_path, rate_limit_per_min=3)
    async with running(settings, feed=web_backend[1], store=web_backend[2]) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.8", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            issuer = app.state.gtv.tokens
            one = {"Authorization": f"Bearer {issuer.issue(world.users[('a', Role.VIEWER)])[0]}"}
            two = {"Authorization": f"Bearer {issuer.issue(world.users[('b', Role.VIEWER)])[0]}"}
            codes = [(await client.get("/me", headers=one)).status_code for _ in range(5)]
            other = (await client.get("/me", headers=two)).status_code
            limited = await client.get("/me", headers=one)
            health = (await client.get("/healthz")).status_code
    assert codes == [200, 200, 200, 429, 429]
    assert other == 200  # counted per token
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["content-type"] == "application/problem+json"
    assert health == 200  # probes are never limited
