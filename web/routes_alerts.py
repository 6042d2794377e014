"""Alert review: acknowledgement with notes and history, true totals, the full event detail.

``alert_acks`` holds the state (the first acknowledgement wins); ``alert_ack_log`` the history:
that acknowledgement and every later note, with who and when. Each entry is also an
``alert.acknowledged`` event: in the outbox of the same transaction (RabbitMQ), then on the
city's live feed, so every open console marks the alert at once (a feed that does not answer
only delays that until the consoles' next totals poll; the acknowledgement stands).

``GET /events/{id}`` gathers what an operator reviews on one screen: crop, clip, plate
candidates, the hotlist match, the pass of an alert (or the alerts of a pass), the
acknowledgement history and the recording segment that covers the moment.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from starlette.responses import Response
from starlette.routing import Route

from gtvision import metrics
from gtvision.events import AlertAcknowledged
from gtvision.sinks.outbox import enqueue_async
from gtvision.web.auth import Perm
from gtvision.web.common import audit, ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import AckIn, CityQuery
from gtvision.web.problems import ApiError
from gtvision.web.redisguard import UNAVAILABLE
from gtvision.web.routes_events import city_conditions, event_row, with_urls
from gtvision.web.state import AppState

log = logging.getLogger(__name__)
ALERT = "alert.triggered"
PLATE = "lpr.detected"
UNACKED_CAP = 10_000
_HISTORY = (
    "SELECT id, action, user_id, username, note, ts FROM alert_ack_log "
    "WHERE event_id = %s ORDER BY id"
)
_RELATED = (
    "SELECT e.id, e.type, e.ts, e.plate, e.confidence, e.payload, e.crop_key, e.clip_key, "
    "a.username AS acked_by, a.acked_at FROM events e "
    "LEFT JOIN alert_acks a ON a.event_id = e.id WHERE e.city_id = %(city)s AND "
)


async def _history(conn: AsyncConnection[Any], event_id: object) -> list[dict[str, Any]]:
    cur = await conn.execute(_HISTORY, (event_id,))
    return await cur.fetchall()


@endpoint(Perm.ALERTS_ACK, "Acknowledge an alert, or add a note to an acknowledged one", body=AckIn)
async def ack_alert(call: Call) -> Response:
    """The first call acknowledges (who/when/note); later calls with a note add to the history.

    The answer is the acknowledgement (``username``/``acked_at`` of the first one) with the
    whole ``history``. Audited as ``alert.ack`` or ``alert.note``.
    """
    row = await event_row(call)
    if row["type"] != ALERT:
        raise ApiError(409, f"event {row['id']} is a {row['type']!r}, not an alert")
    note = call.body(AckIn).note.strip()
    who = call.user
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO alert_acks (event_id, user_id, username, note) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            (row["id"], who.user_id, who.username, note),
        )
        first = await cur.fetchone() is not None
        action: Literal["ack", "note"] = "ack" if first else "note"
        if first:
            waited = (datetime.now(UTC) - row["ts"]).total_seconds()
            metrics.ACK_SECONDS.labels(str(row["city_id"])).observe(max(0.0, waited))
        event = None
        if first or note:
            cur = await conn.execute(
                "INSERT INTO alert_ack_log (event_id, city_id, user_id, username, action, note) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, ts",
                (row["id"], row["city_id"], who.user_id, who.username, action, note),
            )
            entry = await cur.fetchone()
            assert entry is not None
            event = AlertAcknowledged(
                city_id=row["city_id"], camera_id=row["camera_id"], ts=entry["ts"],
                alert_id=str(row["id"]), action=action, entry=entry["id"], user_id=who.user_id,
                username=who.username, note=note,
            )  # fmt: skip
            await enqueue_async(conn, event)
            await audit(
                conn, who, f"alert.{action}", f"event:{row['id']}", call.ip, {"note": note},
                city_id=row["city_id"],
            )  # fmt: skip
        cur = await conn.execute(
            "SELECT event_id, user_id, username, acked_at, note FROM alert_acks "
            "WHERE event_id = %s",
            (row["id"],),
        )
        ack = await cur.fetchone()
        history = await _history(conn, row["id"])
    if event is not None:
        await _to_feed(call.state, event)
    return ok({**(ack or {}), "history": history})


async def _to_feed(state: AppState, event: AlertAcknowledged) -> None:
    """Put a committed acknowledgement on the city's live feed (open consoles see it now)."""
    publish = getattr(state.hub.feed, "publish", None)
    if publish is None or state.redis_guard.down:
        return
    try:  # the feed's publisher is synchronous (the flows' writer thread uses it)
        await asyncio.to_thread(publish, event)
    except Exception as err:  # Redis away: consoles see it at their next totals poll
        if isinstance(err, UNAVAILABLE):
            state.redis_guard.failed(err, "the live feed (acknowledgement not pushed)")
        log.warning(
            "acknowledgement of alert %s not put on the live feed: %s", event.alert_id,
            type(err).__name__,
        )  # fmt: skip


@endpoint(Perm.EVENTS_READ, "Alert totals: unacknowledged, last 24 h", query=CityQuery)
async def alert_summary(call: Call) -> Response:
    """True counts over all stored alerts of the caller's city (admin: all or ``?city_id=``).

    ``unacknowledged`` is capped at 10 000 (``unacknowledged_capped``).
    """
    conds, args = city_conditions(call, call.query(CityQuery).city_id, "e.city_id")
    where = " AND ".join([f"e.type = '{ALERT}'", *conds])
    sql = (
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM events e WHERE "
        f"{where} AND NOT EXISTS (SELECT 1 FROM alert_acks a WHERE a.event_id = e.id) "
        f"LIMIT {UNACKED_CAP + 1}) s) AS unacked, "
        f"(SELECT count(*) FROM events e WHERE {where} "
        "AND e.ts >= now() - interval '24 hours') AS day"
    )
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(sql.encode(), args)
        row = await cur.fetchone()
    unacked = int(row["unacked"]) if row else 0
    return ok(
        {
            "unacknowledged": min(unacked, UNACKED_CAP),
            "unacknowledged_capped": unacked > UNACKED_CAP,
            "last_24h": int(row["day"]) if row else 0,
        }
    )


async def _related(
    conn: AsyncConnection[Any], row: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """An alert's pass, or a pass's alerts (an alert carries its pass's time: one pass, one ts)."""
    args = {"city": row["city_id"], "camera": row["camera_id"], "ts": row["ts"]}
    if row["type"] == ALERT:
        try:
            args["id"] = uuid.UUID(str(row["payload"].get("pass_id")))
        except ValueError:
            return None, []
        cur = await conn.execute((_RELATED + "e.id = %(id)s").encode(), args)
        return await cur.fetchone(), []
    if row["type"] == PLATE:
        args["id"] = str(row["id"])
        sql = (
            _RELATED + f"e.camera_id = %(camera)s AND e.ts = %(ts)s AND e.type = '{ALERT}' "
            "AND e.payload->>'pass_id' = %(id)s ORDER BY e.id"
        )
        cur = await conn.execute(sql.encode(), args)
        return None, await cur.fetchall()
    return None, []


async def _recording_at(
    conn: AsyncConnection[Any], row: dict[str, Any], moment: datetime
) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT id, started_at, ended_at FROM recordings WHERE city_id = %s AND camera_id = %s "
        "AND started_at <= %s AND (ended_at IS NULL OR ended_at > %s) "
        "ORDER BY started_at DESC LIMIT 1",
        (row["city_id"], row["camera_id"], moment, moment),
    )
    rec = await cur.fetchone()
    if rec is None:
        return None
    return {**rec, "offset_s": (moment - rec["started_at"]).total_seconds()}


async def _stored(call: Call, key: str) -> bool:
    store = call.state.store
    if store is None:
        return False
    try:
        return await asyncio.to_thread(store.exists, key)
    except Exception:  # an outage must not fail the review page
        log.warning("object store check of %s failed", key)
        return True  # unknown: keep the URL, the player reports a failed load


@endpoint(Perm.EVENTS_READ, "One event with everything its review needs")
async def get_event(call: Call) -> Response:
    """An event of the caller's city with presigned ``crop_url``/``clip_url`` and its context.

    Adds ``camera`` (id, name), ``timezone`` (the city's), ``candidates`` (plate readings with
    confidences), ``match`` (hotlist entry of an alert), ``pass`` (an alert's plate pass) or
    ``alerts`` (a pass's alerts), ``history`` (acknowledgements and notes) and ``recording``
    (the segment covering the event's time with ``offset_s``; for roles with ``stream``).
    An alert without its own crop or clip shows its pass's. ``crop_missing``/``clip_missing``
    say that the stored object is gone (the URL is then null).
    """
    row = await event_row(call)
    out = with_urls(call.state, row)
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT name FROM cameras WHERE id = %s AND city_id = %s) AS camera, "
            "(SELECT timezone FROM cities WHERE id = %s) AS tz",
            (row["camera_id"], row["city_id"], row["city_id"]),
        )
        names = await cur.fetchone() or {}
        passed, alerts = await _related(conn, row)
        history = await _history(conn, row["id"]) if row["type"] == ALERT else []
        recording = None
        if call.user.can(Perm.STREAM):
            recording = await _recording_at(conn, row, row["ts"])
    source = passed if passed is not None else row
    out["pass"] = with_urls(call.state, passed) if passed is not None else None
    for kind in ("crop", "clip"):
        key, url = f"{kind}_key", f"{kind}_url"
        if out[url] is None and out["pass"] is not None:
            out[key], out[url] = out["pass"][key], out["pass"][url]
        # after a database restore without the object store the key may name nothing:
        # say so (the console shows "unavailable") instead of handing out a URL that 404s
        missing = bool(out[key]) and not await _stored(call, str(out[key]))
        out[f"{kind}_missing"] = missing
        if missing:
            out[url] = None
    out["camera"] = {"id": row["camera_id"], "name": names.get("camera")}
    out["timezone"] = names.get("tz") or "UTC"
    out["candidates"] = list(source["payload"].get("candidates") or [])
    out["match"] = row["payload"].get("match")
    out["alerts"] = alerts
    out["history"] = history
    out["recording"] = recording
    return ok(out)


ROUTES = [
    Route("/events/{event_id:uuid}", get_event, methods=["GET"]),
    Route("/alerts/summary", alert_summary, methods=["GET"]),
    Route("/alerts/{event_id:uuid}/ack", ack_alert, methods=["POST"]),
]
