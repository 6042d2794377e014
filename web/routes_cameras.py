"""Cameras CRUD: scoped to the caller's city, URLs masked, SSRF-guarded, outbox events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import errors as pgerr
from psycopg.types.json import Jsonb
from pydantic_core import to_json
from starlette.responses import Response
from starlette.routing import Route

from gtvision.events import CameraEvent
from gtvision.sinks.outbox import enqueue_async
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
from gtvision.web.models import CameraIn, CameraPatch, CityQuery
from gtvision.web.problems import ApiError, not_found
from gtvision.web.ssrf import UnsafeUrl, check_stream_url, mask_credentials
from gtvision.web.state import AppState

_COLS = (
    "id, city_id, name, stream_url, enabled, lpr_enabled, motion_enabled, analysis_fps, "
    "retention_days, zones, created_at, updated_at"
)


def _db(values: dict[str, Any]) -> dict[str, Any]:
    """Column values for psycopg (``zones`` as jsonb)."""
    if "zones" in values:
        return {**values, "zones": Jsonb(values["zones"])}
    return values


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "stream_url": mask_credentials(str(row["stream_url"]))}


async def _safe_url(call: Call, url: str) -> None:
    try:
        await check_stream_url(url, call.state.settings.camera_allow_cidrs)
    except UnsafeUrl as err:
        raise ApiError(
            422,
            str(err),
            extra={"errors": [{"loc": ["body", "stream_url"], "msg": str(err), "type": "url"}]},
        ) from None


@endpoint(Perm.CAMERAS_READ, "List cameras (cached)", query=CityQuery)
async def list_cameras(call: Call) -> Response:
    """Cameras of the caller's city (admin: all or ``?city_id=``); credentials masked."""
    city = call.user.scope(call.query(CityQuery).city_id)
    cached = await cache_get(call.state, "cameras", city)
    if cached is not None:
        return raw_json(cached)
    rows = await scoped_rows(call, "cameras", _COLS, city)
    text = to_json({"items": [_out(r) for r in rows]}).decode()
    await cache_put(call.state, "cameras", city, text)
    return raw_json(text)


_HEALTH = ("camera.online", "camera.offline", "camera.stalled")
_STATUS_SQL = (
    "SELECT c.id AS camera_id, c.enabled, h.type, h.ts AS since, h.payload->>'reason' AS reason, "
    "h.payload->>'detail' AS detail FROM cameras c LEFT JOIN LATERAL (SELECT type, ts, payload "
    "FROM events e WHERE e.camera_id = c.id AND e.city_id = c.city_id AND e.type = ANY(%(types)s) "
    "ORDER BY e.ts DESC LIMIT 1) h ON true{where} ORDER BY c.id"
)


@endpoint(Perm.CAMERAS_READ, "Health of every camera", query=CityQuery)
async def camera_status(call: Call) -> Response:
    """Per camera its last health event: ``state``, ``since``, ``reason``, ``detail``, ``live``.

    ``state`` is online / offline / stalled (the flow's reader), ``unknown`` before the first
    health event and ``disabled`` for a switched-off camera. ``live``: ``{"via": "relay" |
    "mediamtx", "since"}`` while live video of the camera is being received now (this web
    process's relay, or MediaMTX), else ``null``: a camera no flow reads can still be online.
    """
    city = call.user.scope(call.query(CityQuery).city_id)
    args: dict[str, Any] = {"types": list(_HEALTH)}
    where = ""
    if city is not None:
        where, args["city"] = " WHERE c.city_id = %(city)s", city
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(_STATUS_SQL.format(where=where).encode(), args)
        rows = await cur.fetchall()
    live = await _live_now(call.state)
    items = []
    for row in rows:
        state = str(row.pop("type") or "camera.unknown").removeprefix("camera.")
        on = row.pop("enabled")
        items.append(
            {**row, "state": state if on else "disabled", "live": live.get(row["camera_id"])}
        )
    return ok({"items": items})


async def _live_now(state: AppState) -> dict[int, dict[str, Any]]:
    """Cameras whose live video is received now: this process's relay first, then MediaMTX."""
    out: dict[int, dict[str, Any]] = {}
    mtx = state.mediamtx
    if mtx is not None and mtx.online is not None:
        for cam, since in (await mtx.online.get()).items():
            out[cam] = {"via": "mediamtx", "since": since}
    if state.live is not None:
        for cam, since in state.live.receiving().items():
            out[cam] = {"via": "relay", "since": since}
    return out


async def _camera(call: Call, camera_id: int) -> dict[str, Any]:
    return await scoped_row(call, "cameras", _COLS, camera_id, "camera")


@endpoint(Perm.CAMERAS_READ, "One camera")
async def get_camera(call: Call) -> Response:
    """A camera of the caller's city."""
    return ok(_out(await _camera(call, call.path_int("camera_id"))))


@endpoint(
    Perm.CAMERAS_WRITE, "Add a camera", body=CameraIn, responses={201: "created", 409: "exists"}
)
async def create_camera(call: Call) -> Response:
    """Store a camera and emit ``camera.created`` through the outbox (same transaction)."""
    body = call.body(CameraIn)
    city_id = body.city_id if call.user.is_admin else call.user.city_id
    if city_id is None:
        msg = "an admin must give city_id for a camera"
        raise ApiError(422, msg)
    await _safe_url(call, body.stream_url)
    values = body.model_dump(exclude={"city_id"})
    cols = ", ".join(values)
    marks = ", ".join(f"%({k})s" for k in values)
    async with call.state.pool.connection() as conn:
        try:
            cur = await conn.execute(
                f"INSERT INTO cameras (city_id, {cols}) VALUES (%(city_id)s, {marks}) "
                f"RETURNING {_COLS}",
                {**_db(values), "city_id": city_id},
            )
        except pgerr.UniqueViolation:
            raise ApiError(409, f"camera {body.name!r} already exists in city {city_id}") from None
        except pgerr.ForeignKeyViolation:
            raise not_found(city_id, kind="city") from None
        row = await cur.fetchone()
        assert row is not None
        event = CameraEvent(
            type="camera.created",
            city_id=city_id,
            camera_id=row["id"],
            ts=datetime.now(UTC),
            reason="api",
            name=body.name,
        )
        await enqueue_async(conn, event)
        await audit(
            conn,
            call.user,
            "camera.create",
            f"camera:{row['id']}",
            call.ip,
            {"name": body.name, "stream_url": mask_credentials(body.stream_url)},
            city_id=city_id,
        )
    await cache_drop(call.state, "cameras", city_id)
    return ok(_out(row), 201)


@endpoint(Perm.CAMERAS_WRITE, "Change a camera", body=CameraPatch)
async def patch_camera(call: Call) -> Response:
    """Change camera fields (a new stream URL passes the same checks)."""
    camera_id = call.path_int("camera_id")
    old = await _camera(call, camera_id)
    changes = call.body(CameraPatch).model_dump(exclude_unset=True, exclude_none=True)
    if "stream_url" in changes:
        await _safe_url(call, changes["stream_url"])
    sets = "".join(f"{k} = %({k})s, " for k in changes)
    async with call.state.pool.connection() as conn:
        try:
            cur = await conn.execute(
                f"UPDATE cameras SET {sets}updated_at = now() WHERE id = %(id)s RETURNING {_COLS}",
                {**_db(changes), "id": camera_id},
            )
        except pgerr.UniqueViolation:
            raise ApiError(409, f"camera name {changes.get('name')!r} already exists") from None
        row = await cur.fetchone()
        shown = {k: mask_credentials(v) if k == "stream_url" else v for k, v in changes.items()}
        await audit(
            conn,
            call.user,
            "camera.update",
            f"camera:{camera_id}",
            call.ip,
            shown,
            city_id=old["city_id"],
        )
    await cache_drop(call.state, "cameras", old["city_id"])
    assert row is not None
    return ok(_out(row))


@endpoint(Perm.CAMERAS_WRITE, "Delete a camera")
async def delete_camera(call: Call) -> Response:
    """Remove a camera and emit ``camera.deleted`` through the outbox (same transaction)."""
    camera_id = call.path_int("camera_id")
    old = await _camera(call, camera_id)
    async with call.state.pool.connection() as conn:
        await conn.execute("DELETE FROM cameras WHERE id = %s", (camera_id,))
        event = CameraEvent(
            type="camera.deleted",
            city_id=old["city_id"],
            camera_id=camera_id,
            ts=datetime.now(UTC),
            reason="api",
            name=old["name"],
        )
        await enqueue_async(conn, event)
        await audit(
            conn,
            call.user,
            "camera.delete",
            f"camera:{camera_id}",
            call.ip,
            {"name": old["name"]},
            city_id=old["city_id"],
        )
    await cache_drop(call.state, "cameras", old["city_id"])
    return Response(status_code=204)


ROUTES = [
    Route("/cameras", list_cameras, methods=["GET"]),
    Route("/cameras", create_camera, methods=["POST"]),
    Route("/cameras/status", camera_status, methods=["GET"]),
    Route("/cameras/{camera_id:int}", get_camera, methods=["GET"]),
    Route("/cameras/{camera_id:int}", patch_camera, methods=["PATCH"]),
    Route("/cameras/{camera_id:int}", delete_camera, methods=["DELETE"]),
]
