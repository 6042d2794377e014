"""``POST /erasures``: LGPD erasure of a plate through the API, city-scoped, audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gtvision.events import PlatePass
from gtvision.sinks.feed import stream_key
from gtvision.web.auth import Role
from tests.web.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _passes(api: Api, plate: str, city: str, n: int) -> list[PlatePass]:
    w = api.world
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        ts = now - timedelta(seconds=10 * i)
        out.append(
            PlatePass(
                city_id=w.cities[city],
                camera_id=w.cameras[city],
                ts=ts,
                plate=plate,
                confidence=0.9,
                first_seen=ts,
                last_seen=ts,
                reads=2,
                crop_jpeg=b"\xff\xd8" + plate.encode(),
            )
        )
    api.writer.write(out)
    return out


def _stored(api: Api, plate: str) -> dict[int, int]:
    with psycopg.connect(api.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT city_id, count(*) FROM events WHERE plate = %s GROUP BY city_id", (plate,)
        ).fetchall()
    return {int(c): int(n) for c, n in rows}


async def test_erasure_is_scoped_complete_and_audited(api: Api) -> None:
    w = api.world
    plate = f"ER{uuid.uuid4().hex[:5].upper()}"
    mine = _passes(api, plate, "a", 2)
    theirs = _passes(api, plate, "b", 1)
    with psycopg.connect(api.settings.database_url) as conn:
        keys = [
            r[0] for r in conn.execute("SELECT crop_key FROM events WHERE plate = %s", (plate,))
        ]
    assert len(keys) == 3
    assert all(api.store.exists(k) for k in keys)

    for role in (Role.VIEWER, Role.OPERATOR, Role.ANALYST):
        r = await api.client.post("/erasures", json={"plate": plate}, headers=api.auth("a", role))
        assert r.status_code == 403, (role, r.text)
    h = api.auth("a", Role.CITY_ADMIN)
    r = await api.client.post(
        "/erasures", json={"plate": plate, "city_id": w.cities["b"]}, headers=h
    )
    assert r.status_code == 404
    for junk in ("ABC;DROP", "-", " · "):  # the last two name no plate (found by fuzzing)
        bad = await api.client.post("/erasures", json={"plate": junk}, headers=h)
        assert bad.status_code == 422, (junk, bad.text)
    assert _stored(api, plate) == {w.cities["a"]: 2, w.cities["b"]: 1}

    r = await api.client.post(
        "/erasures", json={"plate": plate.lower(), "reference": "LGPD req 7"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "city_id": w.cities["a"],
        "removed": {
            "events": 2, "objects": 2, "feed_entries": 2, "outbox": 2, "recordings": 0,
            "exports": 0, "audit": 0,
        },
    }  # fmt: skip
    assert _stored(api, plate) == {w.cities["b"]: 1}
    assert [api.store.exists(k) for k in keys].count(True) == 1
    found = await api.client.get("/events", params={"plate": plate}, headers=h)
    assert found.json()["items"] == []
    for e in mine:
        assert (await api.client.get(f"/events/{e.id}", headers=h)).status_code == 404
    stream: Any = await api.feed._client().xrange(
        stream_key(api.settings.redis_prefix, w.cities["a"])
    )
    assert all(f["id"] not in {e.id for e in mine} for _, f in stream)

    admin = api.auth(None, Role.ADMIN)
    r = await api.client.post("/erasures", json={"plate": plate}, headers=admin)
    assert r.status_code == 200
    assert r.json()["city_id"] is None
    assert r.json()["removed"]["events"] == 1
    assert _stored(api, plate) == {}
    assert not any(api.store.exists(k) for k in keys)
    assert theirs[0].id not in (await api.client.get("/events", headers=admin)).text

    audit = await api.client.get("/audit", params={"action": "plate.erase"}, headers=h)
    rows = audit.json()["items"]
    assert [(r["username"], r["detail"]["reference"]) for r in rows][:1] == [
        (w.users[("a", Role.CITY_ADMIN)].username, "LGPD req 7")
    ]
    assert plate not in audit.text
