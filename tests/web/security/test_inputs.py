"""Every route × malformed ids, cursors, ``Last-Event-ID`` and NUL bytes (issue 13 §8, §14).

Routes come from the app's route table (and the request bodies from the tenancy matrix, which
must know every route), so a new route is covered without touching this file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from gtvision.web.app import ROUTES
from gtvision.web.auth import Role
from gtvision.web.endpoint import spec_of
from tests.web.conftest import Api, running
from tests.web.test_tenancy import _all_routes, _request

pytestmark = pytest.mark.asyncio(loop_scope="session")
PYTHON_WORDS = re.compile(
    r"Traceback|Exception|Error\b|NoneType|invalid literal|object has no attribute|psycopg|"
    r"violates|DETAIL:|line \d+|\bint\(\)|unhashable|codec can't"
)
BAD_INTS = ["-1", "0", "99999999999999999999", "9223372036854775808", "1e3", "0x10", "1_0",
            "%201", "%00", "１", "1.5", "+1", "NaN"]  # fmt: skip
BAD_UUIDS = ["not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%00", "1" * 100]
BAD_CURSORS = [
    "!!!", "%00", "A" * 199, "null", "e30", base64.urlsafe_b64encode(b"[1,2]").decode(),
    base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "x"]').decode(),
    base64.urlsafe_b64encode(b'["9999-99-99T00:00:00+00:00", 1]').decode(),
    base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00"]').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", "\u0000"]).encode()).decode(),
]  # fmt: skip
BAD_EVENT_IDS = ["99999999999999999999-0", "1_0-0", "0-99999999999999999999", "-1-0", "1-",
                 "abc", "1-2-3", "18446744073709551616-0", "１-0", "0x10-0", "1 -0", "1e5-0",
                 "9223372036854775808-0"]  # fmt: skip


# routes that fetch from a camera: 502/504 there is the camera's failure (the fixture's
# cameras deliver no video), not the server's; still a problem document without Python words
UPSTREAM_ROUTES = {("GET", "/cameras/{camera_id:int}/snapshot")}


def _problem(r: httpx.Response, where: Any, upstream: bool = False) -> None:
    allowed = {502, 504} if upstream else set()
    assert r.status_code < 500 or r.status_code in allowed, (where, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json", (where, r.text[:200])
        assert not PYTHON_WORDS.search(r.json()["detail"]), (where, r.json()["detail"])


async def test_malformed_path_ids_answer_4xx_problems_on_every_route(sapi: Api) -> None:
    h = sapi.auth(None, Role.ADMIN)
    checked = 0
    for method, path in _all_routes():
        for name, kind in re.findall(r"{(\w+)(?::(\w+))?}", path):
            bad = BAD_UUIDS if kind == "uuid" else BAD_INTS if kind == "int" else ["%00", "..%2f"]
            _, query, body = _request(sapi, method, path)
            for value in bad:
                url = path.replace(f"{{{name}:{kind}}}" if kind else f"{{{name}}}", value)
                url = re.sub(r"{(\w+):int}", "1", url)
                r = await sapi.client.request(method, url, params=query, json=body, headers=h)
                _problem(r, (method, path, value))
                checked += 1
    assert checked > 50


def _cursor_routes() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for route in ROUTES:
        spec = spec_of(getattr(route, "endpoint", None))
        if not isinstance(route, Route) or spec is None or spec.query is None:
            continue
        if "cursor" in spec.query.model_fields:
            out.extend((m, route.path) for m in sorted((route.methods or set()) - {"HEAD"}))
    return out


async def test_malformed_cursors_answer_422_naming_the_cursor(sapi: Api) -> None:
    routes = _cursor_routes()
    assert ("GET", "/events") in routes
    assert ("GET", "/recordings") in routes
    h = sapi.auth(None, Role.ADMIN)
    for method, path in routes:
        for cursor in BAD_CURSORS:
            r = await sapi.client.request(method, path, params={"cursor": cursor}, headers=h)
            _problem(r, (path, cursor))
            assert r.status_code == 422, (path, cursor, r.text)
            assert "cursor" in json.dumps(r.json()["errors"]), (path, cursor)
    # event ids are UUIDs (recording ids are free text: this one is a valid recordings cursor)
    not_uuid = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", "not-a-uuid"]').decode()
    r = await sapi.client.get("/events", params={"cursor": not_uuid}, headers=h)
    assert r.status_code == 422


async def _stream(api: Api, headers: dict[Any, Any], query: str = "") -> int:
    """Status of ``GET /stream/events``; a stream that started (still running after 3 s) is
    200 — it must not start for a bad id."""
    try:
        r = await asyncio.wait_for(api.client.get(f"/stream/events?{query}", headers=headers), 3)
    except TimeoutError:
        return 200
    _problem(r, (headers, query))
    return r.status_code


async def test_bad_last_event_ids_are_refused_before_the_stream_starts(sapi: Api) -> None:
    h = sapi.auth("a", Role.VIEWER)
    for value in BAD_EVENT_IDS:
        assert await _stream(sapi, {**h, "Last-Event-ID": value.encode()}) == 400, value
        assert await _stream(sapi, h, f"last_event_id={value}") == 422, value


async def test_nul_bytes_in_any_string_field_answer_422_naming_it(sapi: Api) -> None:
    h = sapi.auth(None, Role.ADMIN)
    checked = 0
    for method, path in _all_routes():
        url, query, body = _request(sapi, method, path)
        for field, value in (body or {}).items():
            if not isinstance(value, str):
                continue
            r = await sapi.client.request(
                method, url, params=query, json={**body, field: value[:5] + "\x00x"}, headers=h
            )
            _problem(r, (method, path, field))
            assert r.status_code == 422, (method, path, field, r.text[:200])
            assert field in json.dumps(r.json().get("errors", [])), (method, path, field)
            checked += 1
        for field in query if method == "GET" else ():  # reads only: nothing is changed
            r = await sapi.client.get(url, params={field: "1\x00"}, headers=h)
            _problem(r, (method, path, field), upstream=(method, path) in UPSTREAM_ROUTES)
    r = await sapi.client.get("/events", params={"type": "lpr\x00detected"}, headers=h)
    assert r.status_code == 422
    assert checked >= 15


async def test_readiness_names_the_failing_service_without_its_error_text(sapi: Api) -> None:
    from tests.conftest import free_port

    closed = free_port()
    settings = sapi.settings.model_copy(
        update={"redis_url": f"redis://:pw-ready@127.0.0.1:{closed}/0"}
    )
    async with running(settings, feed=sapi.feed, store=sapi.store) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5557))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["postgres"] == "ok"
    assert r.json()["checks"]["redis"].startswith("down")
    assert not PYTHON_WORDS.search(r.text), r.text
    assert str(closed) not in r.text
    assert "pw-ready" not in r.text
