"""Plate search across the old ↔ Mercosul forms of one vehicle (``GET /events?equivalent=``).

Real PostgreSQL: the API on the shared test database, the query plans and the migration's
backfill on a fresh one (issue 19 item 5).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gtvision.events import PlatePass
from gtvision.operators.lpr.equivalence import plate_identity, plate_key
from gtvision.schema import upgrade
from gtvision.sinks.retention import plate_ref
from gtvision.web.auth import Role
from gtvision.web.routes_events import plate_match
from tests.web.conftest import Api

aio = pytest.mark.asyncio(loop_scope="session")

BASE = datetime(2023, 7, 1, 8, tzinfo=UTC)  # this module's window: no other test writes here
WINDOW = {"since": BASE.isoformat(), "until": (BASE + timedelta(hours=1)).isoformat()}
# one car's old and Mercosul plates, another car (EQV1334 = EQV1D34), a plate issued new
# (fifth letter after J: no old form) and a foreign-looking read
PLATES = ["EQV1234", "EQV1C34", "EQV1D34", "EQV1K34", "EQ12345"]


@pytest.fixture
async def written(api: Api) -> Api:
    w = api.world
    api.writer.write(
        [
            PlatePass(
                city_id=w.cities["a"],
                camera_id=w.cameras["a"],
                ts=BASE + timedelta(minutes=i),
                plate=p,
                confidence=0.9,
                first_seen=BASE + timedelta(minutes=i),
                last_seen=BASE + timedelta(minutes=i, seconds=1),
                reads=1,
            )
            for i, p in enumerate(PLATES)
        ]
    )
    return api


async def _search(api: Api, **q: str) -> list[dict[str, Any]]:
    r = await api.client.get("/events", params={**WINDOW, **q}, headers=api.auth("a", Role.ANALYST))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _found(items: list[dict[str, Any]]) -> dict[str, tuple[str | None, bool]]:
    return {i["plate"]: (i["plate_form"], i["equivalent"]) for i in items}


@aio
async def test_exact_search_finds_both_forms_and_says_which_was_read(written: Api) -> None:
    assert _found(await _search(written, plate="EQV1234")) == {"EQV1234": ("old", False)}
    both = {"EQV1234": ("old", False), "EQV1C34": ("mercosul", True)}
    assert _found(await _search(written, plate="EQV1234", equivalent="true")) == both
    # typed as printed (normalised) and from the Mercosul side
    assert _found(await _search(written, plate="eqv-1234", equivalent="1")) == both
    reverse = {"EQV1234": ("old", True), "EQV1C34": ("mercosul", False)}
    assert _found(await _search(written, plate="EQV 1C34", equivalent="TRUE")) == reverse
    # no other form: a plate issued new, a read of no Brazilian layout
    new = await _search(written, plate="EQV1K34", equivalent="true")
    assert _found(new) == {"EQV1K34": ("mercosul", False)}
    foreign = await _search(written, plate="EQ12345", equivalent="true")
    assert _found(foreign) == {"EQ12345": (None, False)}
    assert await _search(written, plate="EQV1J34", equivalent="true") == []


@aio
async def test_wildcard_and_fuzzy_match_either_form(written: Api) -> None:
    assert _found(await _search(written, plate="EQV12*")) == {"EQV1234": ("old", False)}
    old_pattern = _found(await _search(written, plate="EQV12*", equivalent="true"))
    assert old_pattern == {"EQV1234": ("old", False), "EQV1C34": ("mercosul", True)}
    new_pattern = _found(await _search(written, plate="EQV1C?4", equivalent="true"))
    assert new_pattern == {"EQV1234": ("old", True), "EQV1C34": ("mercosul", False)}
    # the pattern also fits the read form: matched directly, not through the other form
    assert _found(await _search(written, plate="EQV1?34", equivalent="true")) == {
        "EQV1234": ("old", False),
        "EQV1C34": ("mercosul", False),
        "EQV1D34": ("mercosul", False),
        "EQV1K34": ("mercosul", False),
    }
    fuzzy = await _search(written, plate="EQV1C35", fuzzy="true", equivalent="true")
    got = {i["plate"]: i for i in fuzzy}
    assert got["EQV1C34"]["equivalent"] is False
    assert got["EQV1234"]["equivalent"] is True  # its other form is the closer one
    assert got["EQV1234"]["similarity"] == pytest.approx(got["EQV1C34"]["similarity"])
    plain = {i["plate"]: i for i in await _search(written, plate="EQV1C35", fuzzy="true")}
    if "EQV1234" in plain:  # trigram-similar as read too, but less so
        assert plain["EQV1234"]["similarity"] < got["EQV1234"]["similarity"]


@aio
async def test_total_export_and_audit_keep_the_option(written: Api) -> None:
    h = written.auth("a", Role.ANALYST)
    await _search(written, plate="EQV1C34")
    q = {**WINDOW, "plate": "EQV1C34", "equivalent": "true"}
    r = await written.client.get("/events", params={**q, "total": "true"}, headers=h)
    assert r.json()["total"] == 2
    # events without a plate still carry the fields
    assert all(i["equivalent"] is False for i in await _search(written, plate="EQV1D34"))
    exp = await written.client.get("/events/export", params=q, headers=h)
    assert exp.status_code == 200, exp.text
    rows = list(csv.DictReader(io.StringIO(exp.text)))
    assert {(r["plate"], r["plate_form"], r["equivalent"]) for r in rows} == {
        ("EQV1234", "old", "True"),
        ("EQV1C34", "mercosul", "False"),
    }
    audit = await written.client.get(
        "/audit", params={"plate": "EQV1C34"}, headers=written.auth("a", Role.CITY_ADMIN)
    )
    ref = plate_ref(written.app.state.gtv.audit_key, "EQV1C34")
    rows_ = audit.json()["items"]
    search = next(
        a for a in rows_ if a["action"] == "events.search" and a["detail"].get("equivalent")
    )
    assert search["target"] == f"plate:{ref}"
    assert search["detail"]["plate"] == ref
    export = next(a for a in rows_ if a["action"] == "events.export")
    assert export["detail"]["filters"]["equivalent"] is True
    assert "EQV1C34" not in audit.text
    assert "EQV1234" not in audit.text
    # that search found EQV1234 too: the audit of the other form lists it, not plain searches
    other = await written.client.get(
        "/audit", params={"plate": "EQV-1234"}, headers=written.auth("a", Role.CITY_ADMIN)
    )
    ids = {a["id"] for a in other.json()["items"]}
    assert {search["id"], export["id"]} <= ids
    plain = [
        a for a in rows_ if a["action"] == "events.search" and not a["detail"].get("equivalent")
    ]
    assert plain, "a search of EQV1C34 without the option"
    assert not {a["id"] for a in plain} & ids


@aio
@pytest.mark.parametrize("junk", ["maybe", "2", "truee", "%00", "' OR 1=1 --", "x" * 300])
async def test_junk_option_is_refused_naming_the_value(api: Api, junk: str) -> None:
    r = await api.client.get(
        "/events",
        params={"plate": "ABC1234", "equivalent": junk},
        headers=api.auth("a", Role.ANALYST),
    )
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert err["loc"] == ["query", "equivalent"]
    assert repr(junk[:40]) in err["msg"], err


def test_sql_forms_agree_with_the_equivalence_module(pg_dsn: str) -> None:
    texts = [
        "ABC1234", "ABC1C34", "ABC0A00", "ABC9J99", "ABC1K34", "ZZZ9Z99", "AB12345", "ABC123",
        "ABC12345", "1231234", "ABCDEFG", "A", "ABC1c34",
    ]  # fmt: skip
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT t, gtv_plate_key(t), gtv_plate_other(t) FROM unnest(%s::text[]) t", (texts,)
        ).fetchall()
    for text, key, other in rows:
        if text != text.upper():
            continue  # stored plates are normalised; the SQL takes them as stored
        forms = plate_identity(text).forms
        assert (key, other) == (plate_key(text), forms[1] if len(forms) > 1 else None), text


def _plan(conn: psycopg.Connection[Any], plate: str, **kw: bool) -> str:
    cond, _, args = plate_match(plate, **kw)
    sql = f"EXPLAIN SELECT e.id FROM events e WHERE e.city_id = %(city)s AND {cond}"
    cur = psycopg.ClientCursor(conn)
    cur.execute(sql, {**args, "city": 1})
    return "\n".join(str(r[0]) for r in cur.fetchall())


def test_equivalent_search_uses_the_indexes_and_old_rows_are_backfilled(
    fresh_pg_dsn: str,
) -> None:
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        # a database from before migration 0080 (its rows were written without the indexes),
        # one city's busy cameras: the city condition alone selects every row
        conn.execute("DROP INDEX events_plate_key, events_plate_other_trgm")
        conn.execute("DROP FUNCTION gtv_plate_key, gtv_plate_other")
        conn.execute("DELETE FROM schema_migrations WHERE version = '0080'")
        conn.execute(
            """
            INSERT INTO events (id, type, city_id, camera_id, ts, plate, payload)
            SELECT gen_random_uuid(), 'lpr.detected', 1, 1, now() - i * interval '1 s',
                   CASE WHEN i % 5 = 0 THEN NULL
                        ELSE chr(65 + i % 26) || chr(65 + i / 26 % 26) || chr(65 + i / 676 % 26)
                             || (i % 10)::text
                             || CASE WHEN i % 2 = 0 THEN (i / 3 % 10)::text
                                     ELSE chr(65 + i / 3 % 26) END
                             || lpad((i % 100)::text, 2, '0') END,
                   '{}'::jsonb
            FROM generate_series(1, 40000) i
            """
        )
        conn.execute(
            "INSERT INTO events (id, type, city_id, camera_id, ts, plate, payload) VALUES "
            "(gen_random_uuid(), 'lpr.detected', 1, 1, now(), 'OLD1234', '{}'),"
            "(gen_random_uuid(), 'lpr.detected', 1, 1, now(), 'OLD1C34', '{}')"
        )
    assert upgrade(fresh_pg_dsn) == ["0080"]
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        conn.execute("ANALYZE events")
        found = conn.execute(
            "SELECT plate FROM events WHERE gtv_plate_key(plate) = %s ORDER BY plate",
            (plate_key("OLD1234"),),
        ).fetchall()
        assert found == [("OLD1234",), ("OLD1C34",)]
        exact = _plan(conn, "OLD1234", equivalent=True)
        assert "events_plate_key" in exact, exact
        assert "Seq Scan" not in exact, exact
        for plate, kw in (("OLD12*", {}), ("OLD1C35", {"fuzzy": True})):
            plan = _plan(conn, plate, equivalent=True, **kw)
            assert "events_plate_other_trgm" in plan, plan
            assert "Seq Scan" not in plan, plan
