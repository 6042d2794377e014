"""Hotlists per city (cached list, invalidated on change, every change audited) and audit log."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from psycopg import errors as pgerr
from pydantic_core import to_json
from starlette.responses import Response
from starlette.routing import Route

from gtvision.operators.lpr.equivalence import plate_identity
from gtvision.sinks.retention import plate_ref
from gtvision.web import hotlist_csv
from gtvision.web.auth import Perm
from gtvision.web.common import (
    audit,
    cache_drop,
    cache_get,
    cache_put,
    ok,
    raw_json,
    scoped_row,
    scoped_rows,
)
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import AuditQuery, CityQuery, HotlistImportIn, HotlistIn, HotlistPatch
from gtvision.web.pools import Conn
from gtvision.web.problems import ApiError, not_found

_COLS = (
    "id, city_id, pattern, kind, max_distance, priority, reason, expires_at, created_by, "
    "created_at, updated_at"
)
_INSERT = (
    "INSERT INTO hotlists (city_id, pattern, kind, max_distance, priority, reason, "
    "expires_at, created_by) VALUES (%(city_id)s, %(pattern)s, %(kind)s, "
    "%(max_distance)s, %(priority)s, %(reason)s, %(expires_at)s, %(by)s)"
)


@endpoint(Perm.HOTLISTS_READ, "List hotlist entries (cached)", query=CityQuery)
async def list_hotlists(call: Call) -> Response:
    """Hotlist entries of the caller's city (admin: all or ``?city_id=``)."""
    city = call.user.scope(call.query(CityQuery).city_id)
    cached = await cache_get(call.state, "hotlists", city)
    if cached is not None:
        return raw_json(cached)
    text = to_json({"items": await scoped_rows(call, "hotlists", _COLS, city)}).decode()
    await cache_put(call.state, "hotlists", city, text)
    return raw_json(text)


async def _entry(call: Call, entry_id: int) -> dict[str, Any]:
    return await scoped_row(call, "hotlists", _COLS, entry_id, "hotlist entry")


@endpoint(Perm.HOTLISTS_READ, "One hotlist entry")
async def get_hotlist(call: Call) -> Response:
    """A hotlist entry of the caller's city."""
    return ok(await _entry(call, call.path_int("entry_id")))


@endpoint(Perm.HOTLISTS_WRITE, "Add a hotlist entry", body=HotlistIn, responses={201: "created"})
async def create_hotlist(call: Call) -> Response:
    """Add a plate pattern to the city's hotlist."""
    body = call.body(HotlistIn)
    city_id = body.city_id if call.user.is_admin else call.user.city_id
    if city_id is None:
        msg = "an admin must give city_id for a hotlist entry"
        raise ApiError(422, msg)
    values = body.model_dump(exclude={"city_id"})
    async with call.state.pool.connection() as conn:
        try:
            cur = await conn.execute(
                f"{_INSERT} RETURNING {_COLS}",
                {**values, "city_id": city_id, "by": call.user.user_id},
            )
        except pgerr.ForeignKeyViolation:
            raise not_found(city_id, kind="city") from None
        row = await cur.fetchone()
        assert row is not None
        await audit(
            conn,
            call.user,
            "hotlist.create",
            f"hotlist:{row['id']}",
            call.ip,
            {"pattern": body.pattern, "kind": body.kind},
            city_id=city_id,
        )
    await cache_drop(call.state, "hotlists", city_id)
    return ok(row, 201)


@endpoint(
    Perm.HOTLISTS_WRITE,
    "Import hotlist entries from CSV",
    body=HotlistImportIn,
    responses={201: "imported", 422: "rows refused (all listed; nothing stored)"},
)
async def import_hotlists(call: Call) -> Response:
    """Check every CSV row (``hotlist_csv``), then add them all in one transaction.

    Any bad row refuses the whole file with 422 and ``errors`` per line and field.
    ``replace`` deletes the city's other entries in the same transaction; ``dry_run`` only
    checks. Audited as ``hotlist.import``.
    """
    body = call.body(HotlistImportIn)
    city_id = body.city_id if call.user.is_admin else call.user.city_id
    if city_id is None:
        msg = "an admin must give city_id for a hotlist import"
        raise ApiError(422, msg)
    async with call.state.pool.connection() as conn:
        cur = await conn.execute("SELECT timezone FROM cities WHERE id = %s", (city_id,))
        city = await cur.fetchone()
    if city is None:
        raise not_found(city_id, kind="city")
    parsed = hotlist_csv.parse(body.csv, ZoneInfo(str(city["timezone"])))
    if parsed.errors:
        first = parsed.errors[0]
        detail = f"{len(parsed.errors)} problem(s); line {first['line']}: {first['msg']}"
        raise ApiError(422, detail, extra={"errors": parsed.errors})
    if not parsed.entries:
        msg = "the CSV has a header but no rows"
        empty = {"line": 2, "field": "", "msg": msg, "type": "csv_empty"}
        raise ApiError(422, msg, extra={"errors": [empty]})
    if body.dry_run:
        return ok({"city_id": city_id, "valid": len(parsed.entries), "created": 0, "replaced": 0})
    extra = {"city_id": city_id, "by": call.user.user_id}
    rows = [{**e.model_dump(exclude={"city_id"}), **extra} for e in parsed.entries]
    async with call.state.pool.connection() as conn:
        replaced = 0
        if body.replace:
            cur = await conn.execute("DELETE FROM hotlists WHERE city_id = %s", (city_id,))
            replaced = cur.rowcount
        async with conn.cursor() as cur:
            await cur.executemany(_INSERT, rows)
        await audit(
            conn, call.user, "hotlist.import", f"city:{city_id}", call.ip,
            {"rows": len(rows), "replace": body.replace, "replaced": replaced}, city_id=city_id,
        )  # fmt: skip
    await cache_drop(call.state, "hotlists", city_id)
    return ok(
        {"city_id": city_id, "valid": len(rows), "created": len(rows), "replaced": replaced}, 201
    )


@endpoint(Perm.HOTLISTS_WRITE, "Change a hotlist entry", body=HotlistPatch)
async def patch_hotlist(call: Call) -> Response:
    """Change priority, reason, distance or expiry."""
    entry_id = call.path_int("entry_id")
    old = await _entry(call, entry_id)
    changes = call.body(HotlistPatch).model_dump(exclude_unset=True)
    sets = "".join(f"{k} = %({k})s, " for k in changes)
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(
            f"UPDATE hotlists SET {sets}updated_at = now() WHERE id = %(id)s RETURNING {_COLS}",
            {**changes, "id": entry_id},
        )
        row = await cur.fetchone()
        await audit(
            conn,
            call.user,
            "hotlist.update",
            f"hotlist:{entry_id}",
            call.ip,
            changes,
            city_id=old["city_id"],
        )
    await cache_drop(call.state, "hotlists", old["city_id"])
    return ok(row)


@endpoint(Perm.HOTLISTS_WRITE, "Delete a hotlist entry")
async def delete_hotlist(call: Call) -> Response:
    """Remove a hotlist entry."""
    entry_id = call.path_int("entry_id")
    old = await _entry(call, entry_id)
    async with call.state.pool.connection() as conn:
        await conn.execute("DELETE FROM hotlists WHERE id = %s", (entry_id,))
        await audit(
            conn,
            call.user,
            "hotlist.delete",
            f"hotlist:{entry_id}",
            call.ip,
            {"pattern": old["pattern"]},
            city_id=old["city_id"],
        )
    await cache_drop(call.state, "hotlists", old["city_id"])
    return Response(status_code=204)


_EQUIVALENT_SEARCH = (
    "((target = %(other_target)s AND detail ->> 'equivalent' = 'true') OR "
    "(detail -> 'filters' ->> 'plate' = %(other)s "
    "AND detail -> 'filters' ->> 'equivalent' = 'true'))"
)


@endpoint(Perm.AUDIT_READ, "Audit log (newest first)", query=AuditQuery)
async def list_audit(call: Call) -> Response:
    """Audit rows of the caller's city (admin: all); page with ``before_id``.

    ``plate`` finds searches and exports of that plate or pattern, and those of the plate's
    other form (old ↔ Mercosul) made with ``equivalent=true``, which found this plate too.
    """
    q = call.query(AuditQuery)
    city = call.user.scope(q.city_id)
    conds: list[str] = []
    args: dict[str, Any] = {"limit": q.limit}
    if city is not None:
        conds.append("city_id = %(city)s")
        args["city"] = city
    if q.action:
        conds.append("action = %(action)s")
        args["action"] = q.action
    if q.plate:  # searches and exports of the plate: keyed reference, or clear text of old rows
        plates = [plate_ref(call.state.audit_key, q.plate), q.plate]
        args["targets"], args["plates"] = [f"plate:{p}" for p in plates], plates
        found = ["target = ANY(%(targets)s)", "detail -> 'filters' ->> 'plate' = ANY(%(plates)s)"]
        other = plate_identity(q.plate).forms[1:] if q.plate.isalnum() else ()
        if other:  # searches of the other form with equivalent=true found this plate too
            found.append(_EQUIVALENT_SEARCH)
            args["other"] = plate_ref(call.state.audit_key, other[0])
            args["other_target"] = f"plate:{args['other']}"
        conds.append("(" + " OR ".join(found) + ")")
    if q.before_id:
        conds.append("id < %(before)s")
        args["before"] = q.before_id
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    sql = (
        "SELECT id, ts, user_id, username, city_id, action, target, detail, ip FROM audit_log"
        f"{where} ORDER BY id DESC LIMIT %(limit)s"
    )

    async def read(conn: Conn) -> list[dict[str, Any]]:
        cur = await conn.execute(sql.encode(), args)
        return await cur.fetchall()

    rows = await call.state.read_only(read)  # the replica when configured
    return ok({"items": rows, "next_before_id": rows[-1]["id"] if len(rows) == q.limit else None})


ROUTES = [
    Route("/hotlists", list_hotlists, methods=["GET"]),
    Route("/hotlists", create_hotlist, methods=["POST"]),
    Route("/hotlists/import", import_hotlists, methods=["POST"]),
    Route("/hotlists/{entry_id:int}", get_hotlist, methods=["GET"]),
    Route("/hotlists/{entry_id:int}", patch_hotlist, methods=["PATCH"]),
    Route("/hotlists/{entry_id:int}", delete_hotlist, methods=["DELETE"]),
    Route("/audit", list_audit, methods=["GET"]),
]
