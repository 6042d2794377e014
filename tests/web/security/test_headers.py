"""Security headers on every kind of response, one CSP for the page (issue 13 §12)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from gtvision.web.app import ROUTES
from gtvision.web.auth import Role
from gtvision.web.endpoint import spec_of
from gtvision.web.middleware import page_policy
from tests.web.conftest import Api, running
from tests.web.test_tenancy import _all_routes, _request

pytestmark = pytest.mark.asyncio(loop_scope="session")
SETTINGS = {
    "s3_endpoint": "minio.example:9000",
    "s3_secure": True,
    "mediamtx_public_url": "https://media.example:8889/",
}
COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _common(r: httpx.Response, where: Any) -> None:
    for name, value in COMMON.items():
        assert r.headers.get(name) == value, (where, name, dict(r.headers))
    csp = _directives(r.headers.get("content-security-policy", ""))
    assert csp.get("frame-ancestors") == ["'none'"], (where, csp)


CONSOLE_ASSETS = Path(__file__).resolve().parents[3] / "web" / "static" / "console" / "assets"


def _console_files() -> list[str]:
    """URL paths of the built console's assets (``.ci/build-console``; CI builds it)."""
    assets = resources.files("gtvision.web.static").joinpath("console", "assets")
    return [f"/static/console/assets/{f.name}" for f in assets.iterdir()] if assets.is_dir() else []


async def test_the_pages_and_their_files_get_the_strict_policy(sapi: Api) -> None:
    files = _console_files()
    assert files, "the console is not built: run bash .ci/build-console"
    for path in ("/", "/docs", *files[:4], "/static/console/assets/missing.js"):
        r = await sapi.client.get(path)
        assert r.status_code in (200, 404), path
        _common(r, path)
        csp = _directives(r.headers["content-security-policy"])
        assert csp["script-src"] == ["'self'"], csp
        assert csp["style-src"] == ["'self'"], csp
        assert csp["object-src"] == ["'none'"]
        assert csp["base-uri"] == ["'none'"]
        assert "https://minio.example:9000" in csp["img-src"]  # presigned crops
        assert "https://minio.example:9000" in csp["media-src"]  # clips, recordings
        assert "https://media.example:8889" in csp["connect-src"]  # WHEP / LL-HLS
        assert not any("unsafe" in v for vs in csp.values() for v in vs)


async def test_every_api_route_answers_with_the_headers_and_no_store(sapi: Api) -> None:
    h = sapi.auth(None, Role.ADMIN)
    checked = 0
    perms = {
        (m, r.path): spec_of(r.endpoint)
        for r in ROUTES
        if isinstance(r, Route)
        for m in r.methods or ()
    }
    for method, path in _all_routes():
        if method != "GET" or path == "/stream/events":
            continue
        url, query, _ = _request(sapi, method, path)
        r = await sapi.client.get(url, params=query, headers=h)
        _common(r, path)
        spec = perms[(method, path)]
        if spec is not None and spec.perm is not None:  # authenticated answers are not kept
            assert r.headers.get("cache-control") == "no-store", (path, r.status_code)
        assert "cache-control" in r.headers, path  # public ones say how long they may be
        checked += 1
    for r in (
        await sapi.client.get("/no/such/route"),
        await sapi.client.get("/me"),  # 401
        await sapi.client.post("/auth/login", json={"username": "x", "password": "y"}),
    ):
        _common(r, r.request.url.path)
    assert checked >= 15


async def test_the_policy_lives_in_one_place_and_takes_only_origins(sapi: Api) -> None:
    policy = page_policy(sapi.settings)
    assert (await sapi.client.get("/docs")).headers["content-security-policy"] == policy
    hostile = sapi.settings.model_copy(
        update={"mediamtx_public_url": "https://x.example; script-src *", "s3_endpoint": ""}
    )
    assert "script-src *" not in page_policy(hostile)
    assert "x.example;" not in page_policy(hostile)


async def test_https_behind_a_trusted_proxy_adds_hsts(sapi: Api) -> None:
    settings = sapi.settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    async with running(settings, feed=sapi.feed, store=sapi.store) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5558))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            tls = await c.get("/healthz", headers={"X-Forwarded-Proto": "https"})
            plain = await c.get("/healthz")
    assert tls.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in plain.headers


async def test_pages_and_scripts_hold_no_inline_code() -> None:
    """What the policy forbids is not in the built console (so it works under the policy)."""
    console = resources.files("gtvision.web.static").joinpath("console")
    entries = [*console.iterdir(), *console.joinpath("assets").iterdir()]
    checked = 0
    for entry in entries:
        if not entry.name.endswith((".html", ".js", ".css")):
            continue
        text = entry.read_text("utf-8")
        if entry.name.endswith(".html"):
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), entry.name
            assert not re.search(r"\son[a-z]+\s*=", text), entry.name
            assert not re.search(r"\sstyle\s*=", text), entry.name
            assert "<style" not in text, entry.name
        else:
            assert not re.search(r"\beval\(|new Function\(", text), entry.name
        checked += 1
    assert checked >= 3
