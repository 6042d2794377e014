"""No clear-text plate in the audit log, none at all after an erasure (issue 13 §13)."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from gtvision.web.auth import Role
from tests.web.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _audit_text(api: Api) -> str:
    with psycopg.connect(api.settings.database_url) as conn:
        rows = conn.execute("SELECT target, detail::text FROM audit_log").fetchall()
    return "\n".join(f"{t} {d}" for t, d in rows)


async def test_searched_plates_are_stored_as_keyed_references(sapi: Api) -> None:
    plate = "QZX" + uuid.uuid4().hex[:4].upper()
    h = sapi.auth("a", Role.ANALYST)
    for params in ({"plate": plate}, {"plate": plate[:5] + "*"}, {"plate": plate, "fuzzy": "true"}):
        assert (await sapi.client.get("/events", params=params, headers=h)).status_code == 200
    assert (
        await sapi.client.get("/events/export", params={"plate": plate}, headers=h)
    ).status_code == 200
    text = _audit_text(sapi)
    assert plate not in text
    assert plate[:5] not in text
    # an auditor still finds who searched the plate (the reference is computed from it)
    found = await sapi.client.get(
        "/audit", params={"plate": plate}, headers=sapi.auth("a", Role.CITY_ADMIN)
    )
    assert found.status_code == 200, found.text
    actions = sorted(r["action"] for r in found.json()["items"])
    # exact and fuzzy searches, the export and its search (the wildcard is another reference)
    assert actions == ["events.export", "events.search", "events.search", "events.search"]


async def test_an_erasure_leaves_no_trace_of_the_plate_in_the_audit_log(sapi: Api) -> None:
    plate = sapi.world.plates["a"]
    h = sapi.auth("a", Role.VIEWER)
    assert (await sapi.client.get("/events", params={"plate": plate}, headers=h)).status_code == 200
    with psycopg.connect(sapi.settings.database_url, autocommit=True) as conn:  # a row written
        conn.execute(  # by an older version, in clear text
            "INSERT INTO audit_log (username, city_id, action, target, detail, ip) "
            "VALUES ('old', %s, 'events.search', %s, %s::jsonb, '127.0.0.1')",
            (sapi.world.cities["a"], f"plate:{plate}", json.dumps({"plate": plate})),
        )
        conn.execute(
            "INSERT INTO audit_log (username, city_id, action, target, detail, ip) "
            "VALUES ('old', %s, 'events.export', 'events', %s::jsonb, '127.0.0.1')",
            (sapi.world.cities["a"], json.dumps({"filters": {"plate": plate}, "rows": 1})),
        )
    found = await sapi.client.get(
        "/audit", params={"plate": plate}, headers=sapi.auth("a", Role.CITY_ADMIN)
    )
    assert len(found.json()["items"]) == 3  # the keyed row and the two old clear ones
    r = await sapi.client.post(
        "/erasures",
        json={"plate": plate, "reference": "LGPD test"},
        headers=sapi.auth("a", Role.CITY_ADMIN),
    )
    assert r.status_code == 200, r.text
    text = _audit_text(sapi)
    assert plate not in text
    found = await sapi.client.get(
        "/audit", params={"plate": plate}, headers=sapi.auth("a", Role.CITY_ADMIN)
    )
    assert found.json()["items"] == []  # not even the keyed reference is left
    with psycopg.connect(sapi.settings.database_url) as conn:
        erased = conn.execute(
            "SELECT count(*) FROM audit_log WHERE target = 'plate:erased'"
        ).fetchone()
    assert erased is not None
    assert erased[0] >= 2  # who searched stays on record, what they searched is gone
