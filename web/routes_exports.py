"""``POST /cameras/{id}/exports``: a range of a camera's recordings as one MP4 (no re-encoding).

Same permission (``stream``) and city scope as ``GET /recordings``. The segments overlapping the
range are joined by :func:`gtvision.sinks.exports.join_segments` in a worker thread (at most two
exports at a time per process; the event loop keeps serving), written to a temporary file under
``GTV_DATA_DIR/tmp``, stored as ``city/camera/exports/YYYY/MM/DD/<id>.mp4`` and answered with a
presigned URL. The ``exports`` row and the audit entry (``recordings.export``) are written
together; the retention purger removes exports with the camera's ``retention_days``.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from starlette.responses import Response
from starlette.routing import Route

from gtvision import metrics
from gtvision.sinks.exports import ExportTooLarge, Joined, NothingToExport, Segment, join_segments
from gtvision.web.auth import Perm
from gtvision.web.common import audit, ok, scoped_row
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import ExportIn
from gtvision.web.problems import ApiError
from gtvision.web.state import ObjectStoreLike

_SEGMENTS = (
    "SELECT id, started_at, object_key, bytes FROM recordings "
    "WHERE camera_id = %(camera)s AND object_key IS NOT NULL AND ended_at IS NOT NULL "
    "AND started_at <= %(end)s AND ended_at >= %(start)s ORDER BY started_at, id"
)
_INSERT = (
    "INSERT INTO exports (id, city_id, camera_id, user_id, range_start, range_end, started_at, "
    "ended_at, segments, object_key, bytes) VALUES (%(id)s, %(city)s, %(camera)s, %(user)s, "
    "%(start)s, %(end)s, %(started_at)s, %(ended_at)s, %(segments)s, %(key)s, %(bytes)s)"
)


def _build(
    store: ObjectStoreLike,
    segments: list[Segment],
    body: ExportIn,
    tmp_dir: Path,
    key: str,
    max_bytes: int,
) -> Joined:
    """Join, store and clean up (runs in a worker thread)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="export-") as work:
        path = Path(work) / "export.mp4"
        joined = join_segments(store.get, segments, body.start, body.end, path, max_bytes=max_bytes)
        store.put_file(key, path, "video/mp4")
    return joined


@endpoint(
    Perm.STREAM,
    "Join a camera's recordings of a time range into one MP4 (no re-encoding)",
    body=ExportIn,
    responses={
        201: "export stored, presigned url",
        404: "camera not found, or nothing recorded in the range",
        413: "the export would be too large",
        422: "invalid range",
        503: "no object store",
    },
)
async def create_export(call: Call) -> Response:
    """Export ``[start, end]`` of the camera (audited as ``recordings.export``)."""
    camera_id = call.path_int("camera_id")
    body = call.body(ExportIn)
    settings = call.state.settings
    span = (body.end - body.start).total_seconds()
    if span <= 0:
        msg = f"end {body.end.isoformat()} must be after start {body.start.isoformat()}"
        raise ApiError(422, msg)
    if span > settings.export_max_s:
        msg = f"the range is {span:.0f} s long; exports are limited to {settings.export_max_s} s"
        raise ApiError(422, msg)
    camera = await scoped_row(call, "cameras", "id, city_id", camera_id, "camera")
    store = call.state.store
    if store is None:
        raise ApiError(503, "exports need an object store, and none is configured")
    args = {"camera": camera_id, "start": body.start, "end": body.end}
    async with call.state.pool.connection() as conn:
        rows = await (await conn.execute(_SEGMENTS, args)).fetchall()
    if not rows:
        msg = f"camera {camera_id} has no finished recording between {body.start} and {body.end}"
        raise ApiError(404, msg)
    needed = sum(int(r["bytes"] or 0) for r in rows)
    if needed > settings.export_max_bytes:
        msg = (
            f"the range needs {needed} bytes of recordings; exports are limited to "
            f"{settings.export_max_bytes} bytes (GTV_EXPORT_MAX_BYTES): choose a shorter range"
        )
        raise ApiError(413, msg)
    segments = [Segment(r["id"], r["started_at"], r["object_key"]) for r in rows]
    now = datetime.now(UTC)
    export_id = f"exp-{camera_id}-{int(now.timestamp() * 1000)}-{secrets.token_hex(3)}"
    key = f"{camera['city_id']}/{camera_id}/exports/{now:%Y/%m/%d}/{export_id}.mp4"
    try:
        async with call.state.exports_gate:
            joined = await asyncio.to_thread(
                _build, store, segments, body, settings.data_dir / "tmp", key,
                settings.export_max_bytes,
            )  # fmt: skip
    except NothingToExport as err:
        metrics.EXPORTS.labels("empty").inc()
        raise ApiError(404, f"camera {camera_id}: {err}") from None
    except ExportTooLarge as err:
        metrics.EXPORTS.labels("too_large").inc()
        raise ApiError(413, str(err)) from None
    metrics.EXPORTS.labels("ok").inc()
    row = {
        "id": export_id, "city": camera["city_id"], "camera": camera_id,
        "user": call.user.user_id, "start": body.start, "end": body.end,
        "started_at": joined.started_at, "ended_at": joined.ended_at,
        "segments": joined.segments, "key": key, "bytes": joined.bytes,
    }  # fmt: skip
    async with call.state.pool.connection() as conn:
        await conn.execute(_INSERT, row)
        await audit(
            conn, call.user, "recordings.export", f"camera:{camera_id}", call.ip,
            {"export": export_id, "start": body.start, "end": body.end, "bytes": joined.bytes},
            city_id=camera["city_id"],
        )  # fmt: skip
    ttl = settings.presign_ttl_s
    return ok(
        {
            "id": export_id,
            "camera_id": camera_id,
            "start": body.start.astimezone(UTC),
            "end": body.end.astimezone(UTC),
            "started_at": joined.started_at,
            "ended_at": joined.ended_at,
            "segments": joined.segments,
            "bytes": joined.bytes,
            "object_key": key,
            "url": store.presigned_get(key, ttl),
            "expires_in": ttl,
        },
        201,
    )


ROUTES = [Route("/cameras/{camera_id:int}/exports", create_export, methods=["POST"])]
