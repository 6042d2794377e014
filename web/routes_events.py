"""Event search (keyset pages, plate exact / wildcard / fuzzy), detail, export, alert acks."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import mimetypes
import uuid
from datetime import datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from gtvision import metrics
from gtvision.web.auth import Perm
from gtvision.web.common import audit, ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import AckIn, EventQuery
from gtvision.web.problems import ApiError, not_found
from gtvision.web.state import AppState

_COLS = (
    "e.id, e.type, e.city_id, e.camera_id, e.ts, e.plate, e.confidence, e.payload, "
    "e.crop_key, e.clip_key, e.stream_id"
)
EXPORT_MAX_ROWS = 10_000


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
        if ts.tzinfo is None:
            raise ValueError(ts_text)
        return ts, str(uuid.UUID(str(event_id))) if uuid_ids else str(event_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as err:
        msg = f"invalid cursor {cursor[:40]!r}: {err}"
        raise ApiError(
            422, msg, extra={"errors": [{"loc": ["query", "cursor"], "msg": "invalid cursor"}]}
        ) from None


def city_conditions(
    call: Call, city_id: int | None, col: str = "city_id"
) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions and arguments limiting a query to the caller's city (admin: asked/any)."""
    city = call.user.scope(city_id)
    if city is None:
        return [], {}
    return [f"{col} = %(city)s"], {"city": city}


def _where(call: Call, q: EventQuery) -> tuple[str, dict[str, Any]]:
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
    if q.plate:
        plate = q.plate.upper()
        if q.fuzzy:
            conds.append("e.plate %% %(plate)s")
            args["plate"] = plate.replace("*", "").replace("?", "")
        elif "*" in plate or "?" in plate:
            conds.append("e.plate LIKE %(plate)s")
            args["plate"] = plate.replace("*", "%").replace("?", "_")
        else:
            conds.append("e.plate = %(plate)s")
            args["plate"] = plate
    if q.cursor:
        cts, cid = decode_cursor(q.cursor)
        conds.append("(e.ts, e.id) < (%(cts)s, %(cid)s::uuid)")
        args["cts"], args["cid"] = cts, cid
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


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


async def _search(call: Call, q: EventQuery, limit: int) -> list[dict[str, Any]]:
    where, args = _where(call, q)
    sim = ", similarity(e.plate, %(plate)s) AS similarity" if q.plate and q.fuzzy else ""
    sql = f"SELECT {_COLS}{sim} FROM events e{where} ORDER BY e.ts DESC, e.id DESC LIMIT {limit}"
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(sql.encode(), args)
        rows = await cur.fetchall()
        if q.plate:
            detail = {"plate": q.plate, "fuzzy": q.fuzzy, "type": q.type, "camera_id": q.camera_id}
            await audit(conn, call.user, "events.search", f"plate:{q.plate}", call.ip, detail)
    return rows


@endpoint(Perm.EVENTS_READ, "Search events", query=EventQuery)
async def list_events(call: Call) -> Response:
    """Events of the caller's city, newest first; ``next_cursor`` fetches the next page."""
    q = call.query(EventQuery)
    rows = await _search(call, q, q.limit + 1)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    cursor = encode_cursor(rows[-1]["ts"], rows[-1]["id"]) if more and rows else None
    return ok({"items": [with_urls(call.state, r) for r in rows], "next_cursor": cursor})


@endpoint(Perm.EVENTS_EXPORT, "Export events as CSV", query=EventQuery, media_type="text/csv")
async def export_events(call: Call) -> Response:
    """Up to 10 000 events matching the filters as CSV (audited)."""
    q = call.query(EventQuery)
    rows = await _search(call, q, EXPORT_MAX_ROWS)
    filters = q.model_dump(mode="json", exclude_none=True)
    filters["city_id"] = call.user.scope(q.city_id)  # the city actually searched
    buf = io.StringIO()
    cols = ["id", "type", "city_id", "camera_id", "ts", "plate", "confidence", "crop_key"]
    writer = csv.writer(buf)
    writer.writerow(cols)
    for row in rows:
        writer.writerow([row[c] for c in cols])
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


async def _event(call: Call) -> dict[str, Any]:
    event_id = str(call.request.path_params["event_id"])
    city = call.user.scope()
    sql = (
        f"SELECT {_COLS}, a.username AS acked_by, a.acked_at, a.note AS ack_note "
        "FROM events e LEFT JOIN alert_acks a ON a.event_id = e.id WHERE e.id = %s"
    )
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(sql, (event_id,))
        row = await cur.fetchone()
    if row is None or (city is not None and row["city_id"] != city):
        raise not_found(event_id, kind="event")
    return row


@endpoint(Perm.EVENTS_READ, "One event with presigned crop/clip URLs")
async def get_event(call: Call) -> Response:
    """An event of the caller's city with ``crop_url``/``clip_url`` valid for a few minutes."""
    return ok(with_urls(call.state, await _event(call)))


@endpoint(Perm.ALERTS_ACK, "Acknowledge an alert", body=AckIn)
async def ack_alert(call: Call) -> Response:
    """Record who acknowledged an ``alert.triggered`` event and when (first ack wins)."""
    row = await _event(call)
    if row["type"] != "alert.triggered":
        raise ApiError(409, f"event {row['id']} is a {row['type']!r}, not an alert")
    note = call.body(AckIn).note
    async with call.state.pool.connection() as conn:
        first = await conn.execute(
            "INSERT INTO alert_acks (event_id, user_id, username, note) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (event_id) DO NOTHING",
            (row["id"], call.user.user_id, call.user.username, note),
        )
        cur = await conn.execute(
            "SELECT event_id, user_id, username, acked_at, note FROM alert_acks "
            "WHERE event_id = %s",
            (row["id"],),
        )
        ack = await cur.fetchone()
        if first.rowcount == 1 and ack is not None:
            waited = (ack["acked_at"] - row["ts"]).total_seconds()
            metrics.ACK_SECONDS.labels(str(row["city_id"])).observe(max(0.0, waited))
        await audit(
            conn,
            call.user,
            "alert.ack",
            f"event:{row['id']}",
            call.ip,
            {"note": note},
            city_id=row["city_id"],
        )
    return ok(ack)


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
    Route("/events/{event_id:uuid}", get_event, methods=["GET"]),
    Route("/alerts/{event_id:uuid}/ack", ack_alert, methods=["POST"]),
    Route("/files/{key:path}", get_file, methods=["GET"]),
]
