"""Tenant matrix: every city role × every route × a resource of another city → nothing leaks."""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
import pytest
from starlette.routing import Route

from gtvision.web.app import ROUTES
from gtvision.web.auth import Role
from tests.web.conftest import ROLES, Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

# SSE never ends under ASGITransport; its tenancy is tested live in test_stream.py.
LIVE_ONLY = {("GET", "/stream/events")}


def _markers(api: Api) -> list[str]:
    w = api.world
    b = w.cities["b"]
    return [
        f"b-{w.tag}",
        "cam-b",
        "s3cret-b",
        "secret-reason-b",
        "HOTB123",
        w.plates["b"],
        w.events["b"],
        w.alerts["b"],
        f"-b-{w.tag}",
        f'"city_id":{b},',
        f'"city_id":{b}}}',
    ]


def _request(api: Api, method: str, path: str) -> tuple[str, dict[str, Any], Any]:
    """URL, query and JSON body that aim ``method path`` at city b's resources."""
    w = api.world
    b = w.cities["b"]
    uniq = uuid.uuid4().hex[:8]
    params = {
        "city_id": b,
        "user_id": w.users[("b", Role.VIEWER)].user_id,
        "camera_id": w.cameras["b"],
        "entry_id": w.hotlists["b"],
        "event_id": w.alerts["b"] if path.startswith("/alerts") else w.events["b"],
        "key": f"{b}/{w.cameras['b']}/x/b.jpg",
    }
    url = re.sub(r"{(\w+)(?::\w+)?}", lambda m: str(params[m.group(1)]), path)
    query: dict[str, Any] = {"city_id": b}
    if path.startswith("/events"):
        query["plate"] = w.plates["b"][:3] + "*"
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/auth/login"): {"username": f"nobody-{uniq}", "password": "x"},
        ("POST", "/auth/refresh"): {"refresh_token": "r" * 40},
        ("POST", "/auth/logout"): {"refresh_token": "r" * 40},
        ("POST", "/cities"): {"name": f"new-{uniq}"},
        ("PATCH", "/cities/{city_id:int}"): {"name": f"hacked-{uniq}"},
        ("POST", "/users"): {
            "username": f"u-{uniq}",
            "password": "longpassword",
            "role": "viewer",
            "city_id": b,
        },
        ("PATCH", "/users/{user_id:int}"): {"disabled": True},
        ("POST", "/cameras"): {
            "name": f"c-{uniq}",
            "stream_url": "rtsp://10.9.9.9/x",
            "city_id": b,
        },
        ("PATCH", "/cameras/{camera_id:int}"): {"name": f"hacked-{uniq}"},
        ("POST", "/hotlists"): {"pattern": "ZZZ9999", "city_id": b},
        ("POST", "/hotlists/import"): {"csv": "pattern\nZZZ9998\n", "city_id": b},
        ("PATCH", "/hotlists/{entry_id:int}"): {"reason": "hacked"},
        ("POST", "/alerts/{event_id:uuid}/ack"): {"note": "not mine"},
        ("POST", "/cameras/{camera_id:int}/webrtc"): {"type": "offer", "sdp": "v=0 " * 4},
        ("POST", "/cameras/{camera_id:int}/exports"): {
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-01T00:05:00Z",
        },
        ("POST", "/erasures"): {"plate": w.plates["b"], "city_id": b},
    }
    return url, query, bodies.get((method, path))


def _all_routes() -> list[tuple[str, str]]:
    out = []
    for route in ROUTES:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue  # the console pages and their static files: no city data
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out.append((method, route.path))
    # logging out everywhere revokes the caller's own tokens: send it after everything else
    out.sort(key=lambda r: r == ("POST", "/auth/logout-all"))
    return out


def _b_untouched(api: Api) -> None:
    w = api.world
    with psycopg.connect(api.settings.database_url) as conn:
        cam = conn.execute("SELECT name FROM cameras WHERE id = %s", (w.cameras["b"],)).fetchone()
        hot = conn.execute(
            "SELECT reason FROM hotlists WHERE id = %s", (w.hotlists["b"],)
        ).fetchone()
        user = conn.execute(
            "SELECT disabled FROM users WHERE id = %s", (w.users[("b", Role.VIEWER)].user_id,)
        ).fetchone()
        city = conn.execute("SELECT name FROM cities WHERE id = %s", (w.cities["b"],)).fetchone()
        ack = conn.execute(
            "SELECT count(*) FROM alert_acks WHERE event_id = %s", (w.alerts["b"],)
        ).fetchone()
        events = conn.execute(
            "SELECT count(*) FROM events WHERE city_id = %s AND plate = %s",
            (w.cities["b"], w.plates["b"]),
        ).fetchone()
        new = conn.execute(
            "SELECT (SELECT count(*) FROM cameras WHERE city_id = %(b)s) "
            "+ (SELECT count(*) FROM hotlists WHERE city_id = %(b)s) "
            "+ (SELECT count(*) FROM users WHERE city_id = %(b)s)",
            {"b": w.cities["b"]},
        ).fetchone()
    assert cam == ("cam-b",)
    assert hot == ("secret-reason-b",)
    assert user == (False,)
    assert city == (f"b-{w.tag}",)
    assert ack == (0,)
    assert events == (2,)  # the pass and its alert: not erased from another city
    assert new == (1 + 1 + len(ROLES),)


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
async def test_no_route_leaks_another_city(api: Api, role: Role) -> None:
    markers = _markers(api)
    headers = api.auth("a", role)
    checked = 0
    for method, path in _all_routes():
        if (method, path) in LIVE_ONLY:
            continue
        url, query, body = _request(api, method, path)
        r = await api.client.request(method, url, params=query, json=body, headers=headers)
        assert r.status_code < 500, (method, path, r.text)
        # ids the caller put in the URL may be echoed back ("event X not found"): not a leak
        scan = r.text
        for part in url.split("/"):
            if len(part) >= 8:
                scan = scan.replace(part, "<asked>")
        leaked = [m for m in markers if m in scan]
        assert not leaked, (role.value, method, path, r.status_code, leaked, r.text[:300])
        if "{" in path and path != "/files/{key:path}":
            assert r.status_code in (403, 404), (role.value, method, path, r.status_code)
        if r.status_code == 201:
            assert r.json().get("city_id") == api.world.cities["a"], (method, path)
        checked += 1
    assert checked == len(_all_routes()) - len(LIVE_ONLY)
    _b_untouched(api)


async def test_markers_do_show_for_admin(api: Api) -> None:
    """Positive control: the markers above do appear where city b's data is legitimately read."""
    b = api.world.cities["b"]
    h = api.auth(None, Role.ADMIN)
    cams = await api.client.get("/cameras", params={"city_id": b}, headers=h)
    assert "cam-b" in cams.text
    assert f'"city_id":{b},' in cams.text
    assert "s3cret-b" not in cams.text  # credentials stay masked even for admin
    hot = await api.client.get(f"/hotlists/{api.world.hotlists['b']}", headers=h)
    assert "secret-reason-b" in hot.text
    ev = await api.client.get("/events", params={"plate": api.world.plates["b"]}, headers=h)
    assert api.world.events["b"] in ev.text
    own = await api.client.get("/events", headers=api.auth("b", Role.VIEWER))
    assert api.world.events["b"] in own.text
