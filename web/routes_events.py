"""Event search (keyset pages, plate exact / wildcard / fuzzy), detail, export, alert acks."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import mimetypes
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.responses import Response
from starlette.routing import Route

from gtvision.operators.lpr.equivalence import plate_form, plate_key
from gtvision.sinks.retention import plate_ref
from gtvision.web.auth import Perm
from gtvision.web.common import audit, ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import EventQuery
from gtvision.web.pools import Conn
from gtvision.web.problems import ApiError, not_found
from gtvision.web.state import AppState

_COLS = (
    "e.id, e.type, e.city_id, e.camera_id, e.ts, e.plate, e.confidence, e.payload, "
    "e.crop_key, e.clip_key, e.stream_id, a.username AS acked_by, a.acked_at"
)
_FROM = " FROM events e LEFT JOIN alert_acks a ON a.event_id = e.id"
EXPORT_MAX_ROWS = 10_000
TOTAL_CAP = 100_000


def encode_cursor(ts: datetime, event_id: object) -> str:
    """Opaque keyset cursor after the row ``(ts, id)``."""
    raw = json.dumps([ts.isoformat(), str(event_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, uuid_ids: bool = True) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`; 422 when it was not produced by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts_text, event_id = json.loads(raw)
        ts = datetime.fromisoformat(ts_text)
        if ts.tzinfo is None or not isinstance(event_id, str) or not event_id.isprintable():
            raise ValueError(ts_text)
        return ts, str(uuid.UUID(event_id)) if uuid_ids else event_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        msg = f"invalid cursor {cursor[:40]!r}: pass next_cursor exactly as a page returned it"
        raise ApiError(
            422,
            msg,
            extra={"errors": [{"loc": ["query", "cursor"], "msg": msg, "type": "cursor"}]},
        ) from None


def city_conditions(
    call: Call, city_id: int | None, col: str = "city_id"
) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions and arguments limiting a query to the caller's city (admin: asked/any)."""
    city = call.user.scope(city_id)
    if city is None:
        return [], {}
    return [f"{col} = %(city)s"], {"city": city}


def _where(call: Call, q: EventQuery) -> tuple[str, dict[str, Any], str]:
    """``WHERE`` clause and arguments of ``q``, and the columns its plate match adds."""
    conds, args = city_conditions(call, q.city_id, "e.city_id")
    for name, col in (("type", "type"), ("camera_id", "camera_id")):
        value = getattr(q, name)
        if value is not None:
            conds.append(f"e.{col} = %({name})s")
            args[name] = value
    if q.since is not None:
        conds.append("e.ts >= %(since)s")
        args["since"] = q.since
    if q.until is not None:
        conds.append("e.ts < %(until)s")
        args["until"] = q.until
    cols = ""
    if q.plate:
        cond, cols, plate_args = plate_match(q.plate, fuzzy=q.fuzzy, equivalent=q.equivalent)
        conds.append(cond)
        args.update(plate_args)
    if q.acked is not None:
        conds.append("a.event_id IS NOT NULL" if q.acked else "a.event_id IS NULL")
    return (" WHERE " + " AND ".join(conds)) if conds else "", args, cols


def plate_match(
    plate: str, *, fuzzy: bool = False, equivalent: bool = False
) -> tuple[str, str, dict[str, Any]]:
    """Condition on ``e.plate`` for a normalised plate or pattern, its extra columns, arguments.

    ``ABC1234`` exact, ``ABC*`` / ``AB?1234`` wildcard, ``fuzzy`` trigram similarity (column
    ``similarity``). With ``equivalent`` a stored plate also matches through its other form
    (old ↔ Mercosul, migration 0080): exact compares vehicle keys (``gtv_plate_key``, indexed:
    ``ABC1234`` finds ``ABC1C34`` and the reverse), wildcard and fuzzy try the stored plate and
    its other form (``gtv_plate_other``, trigram-indexed); column ``equivalent`` is true when
    the row matched through its other form only (fuzzy: the other form is the closer one).
    """
    if fuzzy:
        text = plate.replace("*", "").replace("?", "")
        read = "similarity(e.plate, %(plate)s)"
        if not equivalent:
            return "e.plate %% %(plate)s", f", {read} AS similarity", {"plate": text}
        other = "coalesce(similarity(gtv_plate_other(e.plate), %(plate)s), 0)"
        cond = "(e.plate %% %(plate)s OR gtv_plate_other(e.plate) %% %(plate)s)"
        cols = f", greatest({read}, {other}) AS similarity, {other} > {read} AS equivalent"
        return cond, cols, {"plate": text}
    if "*" in plate or "?" in plate:
        pattern = plate.replace("*", "%").replace("?", "_")
        if not equivalent:
            return "e.plate LIKE %(plate)s", "", {"plate": pattern}
        cond = "(e.plate LIKE %(plate)s OR gtv_plate_other(e.plate) LIKE %(plate)s)"
        return cond, ", e.plate NOT LIKE %(plate)s AS equivalent", {"plate": pattern}
    if not equivalent:
        return "e.plate = %(plate)s", "", {"plate": plate}
    cond = "gtv_plate_key(e.plate) = %(plate_key)s"
    return (
        cond,
        ", e.plate <> %(plate)s AS equivalent",
        {"plate": plate, "plate_key": plate_key(plate)},
    )


def with_form(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with ``plate_form`` (old / mercosul / null) and ``equivalent`` (false unless set).

    The names are those of ``alert.triggered``'s ``match``: which form was read, and whether
    the search matched it through its other form.
    """
    plate = row.get("plate")
    return {
        **row,
        "plate_form": plate_form(plate) if plate else None,
        "equivalent": bool(row.get("equivalent")),
    }


def _page(q: EventQuery, where: str, args: dict[str, Any]) -> str:
    """``where`` plus the keyset condition of ``q.cursor``."""
    if not q.cursor:
        return where
    cts, cid = decode_cursor(q.cursor)
    args["cts"], args["cid"] = cts, cid
    keyset = "(e.ts, e.id) < (%(cts)s, %(cid)s::uuid)"
    return f"{where} AND {keyset}" if where else f" WHERE {keyset}"


_EVENT_URLS = (("crop_key", "crop_url"), ("clip_key", "clip_url"))


def with_urls(
    state: AppState, row: dict[str, Any], columns: tuple[tuple[str, str], ...] = _EVENT_URLS
) -> dict[str, Any]:
    """``row`` with a presigned URL (short TTL) per stored object key: event crop and clip."""
    out = {**row}
    ttl = state.settings.presign_ttl_s
    for key_col, url_col in columns:
        key = row.get(key_col)
        out[url_col] = state.store.presigned_get(key, ttl) if key and state.store else None
    return out


async def _search(call: Call, q: EventQuery, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """Rows of one page, and the true number of matches when ``q.total`` (capped).

    Read on the replica when one is configured (``GTV_DATABASE_READ_URL``); the audit row of a
    plate search is written on the primary.
    """
    where, args, cols = _where(call, q)
    sql = (
        f"SELECT {_COLS}{cols}{_FROM}{_page(q, where, args)} "
        f"ORDER BY e.ts DESC, e.id DESC LIMIT {limit}"
    )

    async def read(
        conn: Conn,
    ) -> tuple[list[dict[str, Any]], int | None]:
        cur = await conn.execute(sql.encode(), args)
        rows = [with_form(r) for r in await cur.fetchall()]
        if not q.total:
            return rows, None
        count = f"SELECT count(*) AS n FROM (SELECT 1{_FROM}{where} LIMIT {TOTAL_CAP + 1}) s"
        cur = await conn.execute(count.encode(), args)
        row = await cur.fetchone()
        return rows, int(row["n"]) if row else 0

    rows, total = await call.state.read_only(read)
    if q.plate:  # the plate is personal data: the audit log keeps a keyed reference
        ref = plate_ref(call.state.audit_key, q.plate)
        detail = {
            "plate": ref,
            "fuzzy": q.fuzzy,
            "equivalent": q.equivalent,
            "type": q.type,
            "camera_id": q.camera_id,
        }
        async with call.state.pool.connection() as conn:
            await audit(conn, call.user, "events.search", f"plate:{ref}", call.ip, detail)
    return rows, total


@endpoint(Perm.EVENTS_READ, "Search events", query=EventQuery)
async def list_events(call: Call) -> Response:
    """Events of the caller's city, newest first; ``next_cursor`` fetches the next page.

    With ``total=true`` the answer also carries ``total`` (matches of the filters, all pages;
    at most 100 000, ``total_capped`` says when the cap was hit).
    """
    q = call.query(EventQuery)
    rows, total = await _search(call, q, q.limit + 1)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    cursor = encode_cursor(rows[-1]["ts"], rows[-1]["id"]) if more and rows else None
    out: dict[str, Any] = {
        "items": [with_urls(call.state, r) for r in rows],
        "next_cursor": cursor,
    }
    if total is not None:
        out["total"] = min(total, TOTAL_CAP)
        out["total_capped"] = total > TOTAL_CAP
    return ok(out)


_CSV_COLS = (
    "id", "type", "city_id", "camera_id", "ts", "ts_local", "plate", "confidence", "acked_by",
    "acked_at", "crop_key", "plate_form", "equivalent",
)  # fmt: skip


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@endpoint(Perm.EVENTS_EXPORT, "Export events as CSV", query=EventQuery, media_type="text/csv")
async def export_events(call: Call) -> Response:
    """Up to 10 000 events matching the filters as CSV (audited); ``ts_local`` in city time."""
    q = call.query(EventQuery)
    rows, _ = await _search(call, q, EXPORT_MAX_ROWS)
    filters = q.model_dump(mode="json", exclude_none=True)
    filters["city_id"] = call.user.scope(q.city_id)  # the city actually searched
    if q.plate:
        filters["plate"] = plate_ref(call.state.audit_key, q.plate)
    zones = await city_zones(call, {int(r["city_id"]) for r in rows})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(_CSV_COLS)
    for row in rows:
        local = row["ts"].astimezone(zones.get(int(row["city_id"]), UTC)).isoformat()
        writer.writerow([csv_cell(local if c == "ts_local" else row[c]) for c in _CSV_COLS])
    async with call.state.pool.connection() as conn:
        await audit(
            conn,
            call.user,
            "events.export",
            "events",
            call.ip,
            {"rows": len(rows), "filters": filters},
        )
    headers = {"Content-Disposition": 'attachment; filename="events.csv"'}
    return Response(buf.getvalue(), media_type="text/csv", headers=headers)


async def city_zones(call: Call, cities: set[int]) -> dict[int, ZoneInfo]:
    """The time zone of each city in ``cities`` (unknown names fall back to UTC)."""
    if not cities:
        return {}
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, timezone FROM cities WHERE id = ANY(%s)", (sorted(cities),)
        )
        rows = await cur.fetchall()
    out: dict[int, ZoneInfo] = {}
    for row in rows:
        try:
            out[int(row["id"])] = ZoneInfo(str(row["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            out[int(row["id"])] = ZoneInfo("UTC")
    return out


async def event_row(call: Call) -> dict[str, Any]:
    """The event of the path's ``event_id`` if it is in the caller's city (admin: any); 404."""
    event_id = str(call.request.path_params["event_id"])
    city = call.user.scope()
    sql = f"SELECT {_COLS}, a.note AS ack_note{_FROM} WHERE e.id = %s"
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(sql.encode(), (event_id,))
        row = await cur.fetchone()
    if row is None or (city is not None and row["city_id"] != city):
        raise not_found(event_id, kind="event")
    return row


@endpoint(
    None,
    "Object store file (presigned URL of the local store)",
    media_type="application/octet-stream",
)
async def get_file(call: Call) -> Response:
    """Serve a stored crop/clip when ``exp``/``sig`` are a valid, unexpired signature."""
    key = str(call.request.path_params["key"])
    store = call.state.store
    verify = getattr(store, "verify", None)
    exp, sig = call.request.query_params.get("exp", ""), call.request.query_params.get("sig", "")
    if store is None or verify is None or not exp.isdigit() or not verify(key, int(exp), sig):
        raise not_found(key, kind="file")
    try:
        data = store.get(key)
    except (KeyError, FileNotFoundError, OSError):
        raise not_found(key, kind="file") from None
    media = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=60"})


ROUTES = [
    Route("/events", list_events, methods=["GET"]),
    Route("/events/export", export_events, methods=["GET"]),
    Route("/files/{key:path}", get_file, methods=["GET"]),
]
