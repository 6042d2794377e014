"""Tokens: revocation, logout owner, tokens in URLs and the access log (issue 13 §9–11)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gtvision.web.auth import Role, hash_password
from tests.conftest import free_port
from tests.web.conftest import PASSWORD, SECRET, Api, running, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _user(api: Api, role: Role = Role.OPERATOR) -> tuple[int, str]:
    """A fresh user of city a (so revocations do not touch the seeded ones)."""
    name = f"tok-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(api.settings.database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO users (username, password_hash, role, city_id) VALUES (%s, %s, %s, %s)"
            " RETURNING id",
            (name, hash_password(PASSWORD), role.value, api.world.cities["a"]),
        ).fetchone()
    assert row is not None
    return int(row[0]), name


async def _login(client: httpx.AsyncClient, name: str, secrets: set[str]) -> dict[str, Any]:
    r = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    secrets.update({body["access_token"], body["refresh_token"]})
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _stream_status(api: Api, token: str) -> int:
    """Status of ``GET /stream/events?token=``; an accepted stream never ends in-process, so
    a request still running after 3 s counts as accepted (200)."""
    try:
        r = await asyncio.wait_for(api.client.get(f"/stream/events?token={token}"), 3)
    except TimeoutError:
        return 200
    return r.status_code


@pytest.mark.parametrize(
    "change",
    [{"disabled": True}, {"role": "viewer"}, {"password": "another long password"}, "logout-all"],
    ids=["disable", "role", "password", "logout-all"],
)
async def test_access_and_refresh_tokens_die_at_once_when_the_user_changes(
    sapi: Api, secrets: set[str], change: Any
) -> None:
    uid, name = _user(sapi)
    tokens = await _login(sapi.client, name, secrets)
    stream = (
        await sapi.client.post("/auth/stream-token", headers=_bearer(tokens["access_token"]))
    ).json()["token"]
    secrets.add(stream)
    assert (
        await sapi.client.get("/me", headers=_bearer(tokens["access_token"]))
    ).status_code == 200
    if change == "logout-all":
        r = await sapi.client.post("/auth/logout-all", headers=_bearer(tokens["access_token"]))
        assert r.status_code == 204, r.text
    else:
        r = await sapi.client.patch(
            f"/users/{uid}", json=change, headers=sapi.auth("a", Role.CITY_ADMIN)
        )
        assert r.status_code == 200, r.text
    me = await sapi.client.get("/me", headers=_bearer(tokens["access_token"]))
    assert me.status_code == 401, me.text
    assert "revoked" in me.json()["detail"]
    assert await _stream_status(sapi, stream) == 401
    again = await sapi.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401
    if change in ({"role": "viewer"}, {"password": "another long password"}, "logout-all"):
        password = "another long password" if "password" in str(change) else PASSWORD
        fresh = await sapi.client.post("/auth/login", json={"username": name, "password": password})
        assert fresh.status_code == 200  # a new login works with the new state
        secrets.update({fresh.json()["access_token"], fresh.json()["refresh_token"]})
        me2 = await sapi.client.get("/me", headers=_bearer(fresh.json()["access_token"]))
        assert me2.status_code == 200


async def test_other_processes_see_a_revocation_within_the_cache_bound(
    sapi: Api, secrets: set[str]
) -> None:
    """Two app instances on the same Redis/PostgreSQL: revoked in one, refused by the other
    within ``GEN_CACHE_S``; the Redis copy lost, PostgreSQL still knows."""
    from gtvision.web.revocation import GEN_CACHE_S

    uid, name = _user(sapi)
    tokens = await _login(sapi.client, name, secrets)
    async with running(sapi.settings, feed=sapi.feed, store=sapi.store) as other:
        transport = httpx.ASGITransport(app=other, client=("127.0.0.1", 5556))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c2:
            h = _bearer(tokens["access_token"])
            assert (await c2.get("/me", headers=h)).status_code == 200  # memo filled
            r = await sapi.client.patch(
                f"/users/{uid}", json={"disabled": True}, headers=sapi.auth(None, Role.ADMIN)
            )
            assert r.status_code == 200
            t0 = time.monotonic()
            while (await c2.get("/me", headers=h)).status_code == 200:
                assert time.monotonic() - t0 < GEN_CACHE_S + 0.5, "revocation not seen in time"
                await asyncio.sleep(0.05)
            state = other.state.gtv
            await state.redis.delete(state.revocation.key(uid))
            state.revocation.forget()
            assert (await c2.get("/me", headers=h)).status_code == 401  # from PostgreSQL


async def test_deleted_users_tokens_are_refused(sapi: Api, secrets: set[str]) -> None:
    uid, name = _user(sapi)
    tokens = await _login(sapi.client, name, secrets)
    d = await sapi.client.delete(f"/users/{uid}", headers=sapi.auth("a", Role.CITY_ADMIN))
    assert d.status_code == 204
    assert (
        await sapi.client.get("/me", headers=_bearer(tokens["access_token"]))
    ).status_code == 401


async def test_logout_ends_only_the_callers_own_session(sapi: Api, secrets: set[str]) -> None:
    _, victim = _user(sapi)
    _, attacker = _user(sapi)
    v = await _login(sapi.client, victim, secrets)
    a = await _login(sapi.client, attacker, secrets)
    r = await sapi.client.post(
        "/auth/logout",
        json={"refresh_token": v["refresh_token"]},
        headers=_bearer(a["access_token"]),
    )
    assert r.status_code == 403, r.text
    # the victim's session lives on
    ok = await sapi.client.post("/auth/refresh", json={"refresh_token": v["refresh_token"]})
    assert ok.status_code == 200, ok.text
    secrets.update({ok.json()["access_token"], ok.json()["refresh_token"]})
    # an admin may end it
    r = await sapi.client.post(
        "/auth/logout",
        json={"refresh_token": ok.json()["refresh_token"]},
        headers=sapi.auth(None, Role.ADMIN),
    )
    assert r.status_code == 204
    gone = await sapi.client.post(
        "/auth/refresh", json={"refresh_token": ok.json()["refresh_token"]}
    )
    assert gone.status_code == 401


async def test_access_tokens_are_refused_in_the_query_string(sapi: Api) -> None:
    token = sapi.token("a", Role.VIEWER)
    assert await _stream_status(sapi, token) == 401


async def test_stream_tokens_work_and_no_token_reaches_the_access_log(
    sapi: Api, tmp_path: Path, secrets: set[str]
) -> None:
    """``gtvision serve --access-log`` as deployed; its log file is read back."""
    port, log_file = free_port(), tmp_path / "serve.jsonl"
    env = {
        **os.environ,
        "GTV_DATABASE_URL": sapi.settings.database_url,
        "GTV_REDIS_URL": sapi.settings.redis_url,
        "GTV_REDIS_PREFIX": sapi.settings.redis_prefix,
        "GTV_JWT_SECRET": SECRET,
        "GTV_DATA_DIR": str(tmp_path),
        "GTV_LOG_FILE": str(log_file),
        "GTV_LOG_FORMAT": "json",
        "GTV_RATE_LIMIT_PER_MIN": "0",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped in finally
        [sys.executable, "-m", "gtvision.cli", "serve", "--port", str(port), "--access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as c:
            for _ in range(100):
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            h = sapi.auth("a", Role.VIEWER)
            stream = (await c.post("/auth/stream-token", headers=h)).json()["token"]
            access = sapi.token("a", Role.VIEWER)
            secrets.update({stream, access})
            async with c.stream("GET", f"/stream/events?token={stream}") as resp:
                assert resp.status_code == 200
            refused = await c.get(f"/stream/events?token={access}")
            assert refused.status_code == 401
            assert "only a stream token" in refused.json()["detail"]
            await c.get("/files/x.jpg?exp=1&sig=deadbeefdeadbeef")
            await asyncio.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(10)
    lines = [json.loads(x)["msg"] for x in log_file.read_text().splitlines()]
    access_lines = [m for m in lines if "/stream/events" in m or "/files/" in m]
    assert len(access_lines) >= 3, lines
    text = "\n".join(lines)
    for secret in (stream, access, "deadbeefdeadbeef"):
        assert secret not in text


async def test_an_open_event_stream_ends_when_its_token_is_revoked(
    sapi: Api, secrets: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gtvision.web import revocation
    from gtvision.web.app import create_app

    monkeypatch.setattr(revocation, "STREAM_CHECK_S", 0.2)
    uid, name = _user(sapi)
    app = create_app(sapi.settings, feed=sapi.feed, store=sapi.store)
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        tokens = await _login(c, name, secrets)
        h = _bearer(tokens["access_token"])
        stream = (await c.post("/auth/stream-token", headers=h)).json()["token"]
        secrets.add(stream)
        async with c.stream("GET", f"/stream/events?token={stream}") as resp:
            assert resp.status_code == 200
            r = await c.patch(
                f"/users/{uid}", json={"disabled": True}, headers=sapi.auth(None, Role.ADMIN)
            )
            assert r.status_code == 200
            t0 = time.monotonic()
            async with asyncio.timeout(5):
                async for _ in resp.aiter_bytes():  # pings until the server ends the stream
                    pass
            ended_after = time.monotonic() - t0
    assert ended_after < 3
