"""API additions of the operator console: plates as typed, acks with history, true totals,
event detail, CSV in and out, city time zone, ``/me`` permissions, camera health, SSE resume
by query parameter."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from gtvision.events import Alert, CameraEvent, HotlistMatch, PlateCandidate, PlatePass
from gtvision.web.auth import Role
from gtvision.web.routes_events import csv_cell
from tests.web.conftest import Api, serve
from tests.web.test_stream import _live_first, _stream_token, passes, read_events, subscribe

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _plate(tag: str) -> str:
    """A plate unique to one test, like ``KLM3907`` (three letters, four digits)."""
    n = int(uuid.uuid4().int % 10_000)
    return f"{tag[:3].upper()}{n:04d}"


def _pass_and_alert(api: Api, plate: str, when: datetime) -> tuple[PlatePass, Alert]:
    w = api.world
    city, cam = w.cities["a"], w.cameras["a"]
    passed = PlatePass(
        city_id=city,
        camera_id=cam,
        ts=when,
        plate=plate,
        confidence=0.93,
        first_seen=when,
        last_seen=when + timedelta(seconds=2),
        reads=5,
        candidates=(
            PlateCandidate(text=plate, confidence=0.93),
            PlateCandidate(text=plate[:-1] + "8", confidence=0.05),
        ),
        crop_key=f"{city}/{cam}/x/{plate}.jpg",
        clip_key=f"{city}/{cam}/x/{plate}.mp4",
    )
    match = HotlistMatch(entry_id=w.hotlists["a"], pattern=plate, kind="exact", reason="roubado")
    alert = Alert(city_id=city, camera_id=cam, ts=when, pass_id=passed.id, plate=plate, match=match)
    api.writer.write([passed, alert])
    return passed, alert


async def test_plate_as_printed_is_found_and_stored_normalised(api: Api) -> None:
    plate = _plate("klm")
    passed, _ = _pass_and_alert(api, plate, datetime.now(UTC) - timedelta(minutes=5))
    h = api.auth("a", Role.VIEWER)
    printed = f"{plate[:3]}-{plate[3:]}"
    for typed in (printed, printed.lower(), f"{plate[:3].lower()} {plate[3:]}", plate):
        r = await api.client.get(
            "/events", params={"plate": typed, "type": "lpr.detected"}, headers=h
        )
        assert r.status_code == 200, (typed, r.text)
        assert [i["id"] for i in r.json()["items"]] == [passed.id], typed
    bad = await api.client.get("/events", params={"plate": " - "}, headers=h)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "plate"]
    r = await api.client.post(
        "/hotlists",
        json={"pattern": "abc-1d23", "reason": "x"},
        headers=api.auth("a", Role.CITY_ADMIN),
    )
    assert r.status_code == 201, r.text
    assert r.json()["pattern"] == "ABC1D23"


async def test_ack_with_note_history_totals_and_filter(api: Api) -> None:
    plate = _plate("ack")
    _, alert = _pass_and_alert(api, plate, datetime.now(UTC) - timedelta(minutes=1))
    viewer = api.auth("a", Role.VIEWER)
    before = (await api.client.get("/alerts/summary", headers=viewer)).json()
    assert before["unacknowledged"] >= 1
    unacked = await api.client.get(
        "/events",
        params={"type": "alert.triggered", "acked": "false", "limit": 500},
        headers=viewer,
    )
    assert alert.id in [i["id"] for i in unacked.json()["items"]]
    op = api.world.users[("a", Role.OPERATOR)]
    r = await api.client.post(
        f"/alerts/{alert.id}/ack",
        json={"note": "viatura enviada"},
        headers=api.auth("a", Role.OPERATOR),
    )
    assert r.status_code == 200, r.text
    ack = r.json()
    assert (ack["username"], ack["note"]) == (op.username, "viatura enviada")
    assert [(h["action"], h["note"]) for h in ack["history"]] == [("ack", "viatura enviada")]
    # a second operator's call adds a note; the acknowledgement stays the first one's
    admin = api.world.users[("a", Role.CITY_ADMIN)]
    r = await api.client.post(
        f"/alerts/{alert.id}/ack",
        json={"note": "veículo abordado"},
        headers=api.auth("a", Role.CITY_ADMIN),
    )
    assert r.json()["username"] == op.username
    history = [(h["action"], h["username"], h["note"]) for h in r.json()["history"]]
    assert history == [
        ("ack", op.username, "viatura enviada"),
        ("note", admin.username, "veículo abordado"),
    ]
    after = (await api.client.get("/alerts/summary", headers=viewer)).json()
    assert after["unacknowledged"] == before["unacknowledged"] - 1
    acked = await api.client.get(
        "/events", params={"type": "alert.triggered", "acked": "true", "limit": 500}, headers=viewer
    )
    row = next(i for i in acked.json()["items"] if i["id"] == alert.id)
    assert row["acked_by"] == op.username
    refused = await api.client.post(f"/alerts/{alert.id}/ack", json={}, headers=viewer)
    assert refused.status_code == 403
    with psycopg.connect(api.settings.database_url) as conn:
        actions = conn.execute(
            "SELECT action FROM audit_log WHERE target = %s ORDER BY id", (f"event:{alert.id}",)
        ).fetchall()
    assert [a[0] for a in actions] == ["alert.ack", "alert.note"]
    # each entry is an alert.acknowledged event: in the outbox (RabbitMQ) and on the city feed
    with psycopg.connect(api.settings.database_url) as conn:
        keys = conn.execute(
            "SELECT routing_key, payload->>'action', payload->>'username' FROM outbox "
            "WHERE payload->>'alert_id' = %s ORDER BY id",
            (alert.id,),
        ).fetchall()
    city = api.world.cities["a"]
    assert keys == [
        (f"alert.acknowledged.{city}", "ack", op.username),
        (f"alert.acknowledged.{city}", "note", admin.username),
    ]
    feed = await api.feed.read(city, "0-0", 0, 10_000)
    on_feed = [
        json.loads(i.json) for i in feed if i.type == "alert.acknowledged" and alert.id in i.json
    ]
    assert [(e["action"], e["entry"] > 0, e["note"]) for e in on_feed] == [
        ("ack", True, "viatura enviada"),
        ("note", True, "veículo abordado"),
    ]


async def test_totals_count_every_page(api: Api) -> None:
    base = datetime(2024, 3, 1, tzinfo=UTC)
    events = passes(api, "a", 7, "totals")
    events = [
        e.model_copy(update={"ts": base + timedelta(seconds=i)}) for i, e in enumerate(events)
    ]
    api.writer.write(events)
    q = {"since": base.isoformat(), "until": (base + timedelta(minutes=1)).isoformat()}
    r = await api.client.get(
        "/events", params={**q, "limit": 3, "total": "true"}, headers=api.auth("a", Role.VIEWER)
    )
    body = r.json()
    assert (len(body["items"]), body["total"], body["total_capped"]) == (3, 7, False)
    nxt = await api.client.get(
        "/events",
        params={**q, "limit": 3, "total": "true", "cursor": body["next_cursor"]},
        headers=api.auth("a", Role.VIEWER),
    )
    assert nxt.json()["total"] == 7, "the total is of the filters, not of the page"


async def test_event_detail_of_an_alert_and_of_its_pass(api: Api) -> None:
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    plate = _plate("det")
    passed, alert = _pass_and_alert(api, plate, when)
    w = api.world
    rec = f"rec-detail-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(api.settings.database_url) as conn:
        conn.execute(
            "INSERT INTO recordings (id, city_id, camera_id, started_at, ended_at, object_key) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (rec, w.cities["a"], w.cameras["a"], when - timedelta(seconds=20),
             when + timedelta(seconds=40), f"{w.cities['a']}/{w.cameras['a']}/rec/{rec}.mp4"),
        )  # fmt: skip
    api.store.put(str(passed.clip_key), b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    h = api.auth("a", Role.VIEWER)
    detail = (await api.client.get(f"/events/{alert.id}", headers=h)).json()
    assert detail["camera"] == {"id": w.cameras["a"], "name": "cam-a"}
    assert detail["timezone"] == "America/Sao_Paulo"
    assert detail["pass"]["id"] == passed.id
    assert detail["pass"]["ts"] == detail["ts"], "one pass, one time"
    assert [c["text"] for c in detail["candidates"]] == [plate, plate[:-1] + "8"]
    assert detail["candidates"][0]["confidence"] == pytest.approx(0.93)
    assert detail["match"]["reason"] == "roubado"
    assert detail["clip_url"]
    assert detail["clip_url"] == detail["pass"]["clip_url"]
    # the crop was never stored (a restore without the object store): no URL that 404s
    assert detail["crop_url"] is None
    assert detail["crop_missing"] is True
    assert detail["clip_missing"] is False
    assert detail["recording"]["id"] == rec
    assert detail["recording"]["offset_s"] == pytest.approx(20.0)
    assert detail["history"] == []
    of_pass = (await api.client.get(f"/events/{passed.id}", headers=h)).json()
    assert [a["id"] for a in of_pass["alerts"]] == [alert.id]
    assert of_pass["pass"] is None
    assert of_pass["match"] is None


async def test_csv_export_local_time_and_roles(api: Api) -> None:
    plate = _plate("csv")
    when = datetime(2025, 6, 1, 15, 0, tzinfo=UTC)
    passed, _ = _pass_and_alert(api, plate, when)
    q = {"plate": plate, "type": "lpr.detected"}
    assert (
        await api.client.get("/events/export", params=q, headers=api.auth("a", Role.VIEWER))
    ).status_code == 403
    assert (
        await api.client.get("/events/export", params=q, headers=api.auth("a", Role.OPERATOR))
    ).status_code == 403
    r = await api.client.get("/events/export", params=q, headers=api.auth("a", Role.ANALYST))
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["id"] for row in rows] == [passed.id]
    assert rows[0]["ts_local"] == "2025-06-01T12:00:00-03:00"  # America/Sao_Paulo
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_cell("-3") == "'-3"
    assert csv_cell("KLM3907") == "KLM3907"


async def test_hotlist_csv_import(api: Api) -> None:
    admin = api.auth("a", Role.CITY_ADMIN)
    tag = uuid.uuid4().hex[:3].upper()
    good = (
        "\ufeffpattern;kind;priority;reason;expires_at\n"
        f"QQ{tag}-01;exact;5;furto;31/12/2030\n"
        f"QQ{tag}*;wildcard;;frota;\n"
        f"qq{tag} 02;fuzzy;1;;2030-01-31T10:00:00+00:00\n"
    )
    dry = await api.client.post(
        "/hotlists/import", json={"csv": good, "dry_run": True}, headers=admin
    )
    assert dry.json()["valid"] == 3
    assert dry.json()["created"] == 0
    r = await api.client.post("/hotlists/import", json={"csv": good}, headers=admin)
    assert r.status_code == 201, r.text
    items = (await api.client.get("/hotlists", headers=admin)).json()["items"]
    mine = {i["pattern"]: i for i in items if i["pattern"].startswith(f"QQ{tag}")}
    assert set(mine) == {f"QQ{tag}01", f"QQ{tag}*", f"QQ{tag}02"}
    # a date alone is the end of that day in the city's zone (UTC-3)
    assert mine[f"QQ{tag}01"]["expires_at"].startswith("2031-01-01T02:59:59")
    bad = (
        "pattern,kind,priority\n"
        f"ZZ{tag}1,exact,1\n"
        "!!,exact,1\n"
        f"ZZ{tag}2,sometimes,1\n"
        f"ZZ{tag}3,exact\n"
    )
    r = await api.client.post("/hotlists/import", json={"csv": bad}, headers=admin)
    assert r.status_code == 422
    lines = sorted({(e["line"], e["field"]) for e in r.json()["errors"]})
    assert lines == [(3, "pattern"), (4, "kind"), (5, "")], r.json()
    items = (await api.client.get("/hotlists", headers=admin)).json()["items"]
    assert not [i for i in items if i["pattern"].startswith(f"ZZ{tag}")], "nothing stored"
    header = await api.client.post(
        "/hotlists/import", json={"csv": "plate,city_id\nX\n"}, headers=admin
    )
    assert header.status_code == 422
    assert header.json()["errors"][0]["field"] == "header"
    op = await api.client.post(
        "/hotlists/import", json={"csv": good}, headers=api.auth("a", Role.OPERATOR)
    )
    assert op.status_code == 403


async def test_city_time_zone_is_checked(api: Api) -> None:
    city = api.world.cities["a"]
    admin = {"Authorization": f"Bearer {api.token(None, Role.ADMIN)}"}
    bad = await api.client.patch(
        f"/cities/{city}", json={"timezone": "America/Gotham"}, headers=admin
    )
    assert bad.status_code == 422
    assert "unknown time zone 'America/Gotham'" in bad.json()["detail"]
    r = await api.client.patch(
        f"/cities/{city}", json={"timezone": "America/Manaus"}, headers=admin
    )
    assert r.json()["timezone"] == "America/Manaus"
    me = await api.client.get("/me", headers=api.auth("a", Role.VIEWER))
    assert me.json()["city"]["timezone"] == "America/Manaus"
    await api.client.patch(f"/cities/{city}", json={"timezone": "America/Sao_Paulo"}, headers=admin)


async def test_cookie_session_rotates_and_logout_ends_it(api: Api) -> None:
    who = api.world.users[("a", Role.OPERATOR)]
    console = {"X-GTV-Client": "console"}
    creds = {"username": who.username, "password": "correct horse battery", "cookie": True}
    refused = await api.client.post("/auth/login", json=creds)
    assert refused.status_code == 403, "cookie mode without the client header"
    r = await api.client.post("/auth/login", json=creds, headers=console)
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("gtv_refresh="))
    for attr in ("gtv_refresh=", "HttpOnly", "Path=/auth", "SameSite=strict"):
        assert attr.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower(), "plain HTTP: no Secure flag"
    flags = r.headers.get_list("set-cookie")
    flag = next(c for c in flags if c.startswith("gtv_session="))
    assert flag.startswith("gtv_session=1;"), "a secret-free flag for the page"
    assert "httponly" not in flag.lower()
    first = r.cookies["gtv_refresh"]
    api.client.cookies.clear()  # each request below names its cookie itself
    jar = {"Cookie": f"gtv_refresh={first}"}
    no_header = await api.client.post("/auth/refresh", json={}, headers=jar)
    assert no_header.status_code == 403
    r2 = await api.client.post("/auth/refresh", json={}, headers={**jar, **console})
    assert r2.status_code == 200, r2.text
    second = r2.cookies["gtv_refresh"]
    assert second != first
    assert "refresh_token" not in r2.json()
    access = r2.json()["access_token"]
    me = await api.client.get("/me", headers={"Authorization": f"Bearer {access}"})
    assert me.json()["username"] == who.username
    api.client.cookies.clear()
    jar = {"Cookie": f"gtv_refresh={second}"}
    out = await api.client.post(
        "/auth/logout", json={}, headers={**jar, **console, "Authorization": f"Bearer {access}"}
    )
    assert out.status_code == 204
    cleared = [c for c in out.headers.get_list("set-cookie") if "Max-Age=0" in c]
    assert sorted(c.split("=")[0] for c in cleared) == ["gtv_refresh", "gtv_session"]
    api.client.cookies.clear()
    gone = await api.client.post("/auth/refresh", json={}, headers={**jar, **console})
    assert gone.status_code == 401
    none = await api.client.post("/auth/refresh", json={}, headers=console)
    assert none.status_code == 401


async def test_camera_health_states(api: Api) -> None:
    w = api.world
    city = w.cities["a"]
    with psycopg.connect(api.settings.database_url, autocommit=True) as conn:
        (cam,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, %s, 'rtsp://10.0.0.9/x') "
            "RETURNING id",
            (city, f"health-{uuid.uuid4().hex[:6]}"),
        ).fetchone()
        (off,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO cameras (city_id, name, stream_url, enabled) "
            "VALUES (%s, %s, 'rtsp://10.0.0.9/y', false) RETURNING id",
            (city, f"off-{uuid.uuid4().hex[:6]}"),
        ).fetchone()
    h = api.auth("a", Role.VIEWER)

    async def state() -> dict[int, str]:
        r = await api.client.get("/cameras/status", headers=h)
        return {i["camera_id"]: i["state"] for i in r.json()["items"]}

    assert (await state())[cam] == "unknown"
    now = datetime.now(UTC)
    stalled = now + timedelta(seconds=5)
    api.writer.write(
        [
            CameraEvent(type="camera.online", city_id=city, camera_id=cam, ts=now),
            CameraEvent(
                type="camera.stalled", city_id=city, camera_id=cam, ts=stalled, reason="no_data"
            ),
        ]
    )
    states = await state()
    assert (states[cam], states[off]) == ("stalled", "disabled")
    assert w.cameras["b"] not in states


async def test_sse_resumes_from_a_query_parameter(api: Api) -> None:
    """A new EventSource (new stream token) cannot send Last-Event-ID: ``last_event_id`` does."""
    app = api.client._transport.app  # type: ignore[attr-defined]
    token = await _stream_token(api, "a", Role.OPERATOR)
    async with serve(app) as base, httpx.AsyncClient(timeout=10) as client:
        got = await _live_first(api, base, client, token)
        missed = passes(api, "a", 3, "query-resume")
        await asyncio.to_thread(api.writer.write, missed)
        token2 = await _stream_token(api, "a", Role.OPERATOR)
        query = f"&last_event_id={got.id}"
        async with subscribe(client, base, query=query, token=token2) as resp:
            again = await read_events(resp, 3)
    assert [next(p.id for p in missed if p.id in e.data) for e in again] == [p.id for p in missed]
