"""``POST /erasures``: LGPD erasure of a plate through the API, city-scoped, audited."""

from __future__ import annotations

import random
import string
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


def _old_plate() -> str:
    rng = random.Random(uuid.uuid4().int)
    return "".join(rng.choices(string.ascii_uppercase, k=3) + rng.choices(string.digits, k=4))


async def test_erasure_takes_the_old_and_the_mercosul_form_unless_exact(api: Api) -> None:
    w = api.world
    old = _old_plate()
    mercosul = old[:4] + "ABCDEFGHIJ"[int(old[4])] + old[5:]
    _passes(api, old, "a", 2)
    _passes(api, mercosul, "a", 2)
    _passes(api, mercosul, "b", 1)
    h = api.auth("a", Role.CITY_ADMIN)
    bad = await api.client.post("/erasures", json={"plate": old, "equivalent": "maybe"}, headers=h)
    assert bad.status_code == 422, bad.text

    r = await api.client.post(
        "/erasures", json={"plate": mercosul, "equivalent": False, "reference": "r1"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["removed"]["events"] == 2
    assert (_stored(api, old), _stored(api, mercosul)) == ({w.cities["a"]: 2}, {w.cities["b"]: 1})

    _passes(api, mercosul, "a", 1)
    spelled = f"{old[:3].lower()}-{old[3:]}"
    r = await api.client.post("/erasures", json={"plate": spelled, "reference": "r2"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["removed"]["events"] == 3  # both forms at once, city a only
    assert (_stored(api, old), _stored(api, mercosul)) == ({}, {w.cities["b"]: 1})

    audit = await api.client.get("/audit", params={"action": "plate.erase"}, headers=h)
    rows = {r["detail"]["reference"]: r["detail"] for r in audit.json()["items"]}
    assert (rows["r1"]["equivalent"], rows["r1"]["forms"]) == (False, 1)
    assert (rows["r2"]["equivalent"], rows["r2"]["forms"]) == (True, 2)
    assert old not in audit.text
    assert mercosul not in audit.text
    doc = (await api.client.get("/openapi.json")).json()
    field = doc["components"]["schemas"]["ErasureIn"]["properties"]["equivalent"]
    assert field["default"] is True
    assert "other form" in field["description"]
