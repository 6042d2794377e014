"""``GET /recordings``: a city's continuous-recording segments with presigned video URLs."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from gtvision.web.auth import Perm
from gtvision.web.common import audit, ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import RecordingQuery
from gtvision.web.pools import Conn
from gtvision.web.routes_events import (
    city_conditions,
    decode_cursor,
    encode_cursor,
    with_urls,
)

_COLS = "id, city_id, camera_id, started_at, ended_at, object_key, bytes"


def _where(call: Call, q: RecordingQuery) -> tuple[str, dict[str, Any]]:
    conds, args = city_conditions(call, q.city_id)
    if q.camera_id is not None:
        conds.append("camera_id = %(camera)s")
        args["camera"] = q.camera_id
    if q.since is not None:  # overlap: still open, or ended after ``since``
        conds.append("(ended_at IS NULL OR ended_at >= %(since)s)")
        args["since"] = q.since
    if q.until is not None:
        conds.append("started_at < %(until)s")
        args["until"] = q.until
    if q.cursor:
        cts, cid = decode_cursor(q.cursor, uuid_ids=False)
        conds.append("(started_at, id) < (%(cts)s, %(cid)s)")
        args["cts"], args["cid"] = cts, cid
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


@endpoint(Perm.STREAM, "List recorded video segments", query=RecordingQuery)
async def list_recordings(call: Call) -> Response:
    """Segments of the caller's city, newest first, ``url`` valid for a few minutes (audited).

    A segment still being written has ``ended_at`` and ``url`` null.
    """
    q = call.query(RecordingQuery)
    where, args = _where(call, q)
    sql = f"SELECT {_COLS} FROM recordings{where} ORDER BY started_at DESC, id DESC LIMIT %(n)s"

    async def read(conn: Conn) -> list[dict[str, Any]]:
        cur = await conn.execute(sql.encode(), {**args, "n": q.limit + 1})
        return await cur.fetchall()

    rows = await call.state.read_only(read)  # the replica when configured
    filters = q.model_dump(mode="json", exclude_none=True, exclude={"cursor", "limit"})
    async with call.state.pool.connection() as conn:
        await audit(
            conn, call.user, "recordings.list", f"camera:{q.camera_id or '*'}", call.ip,
            {**filters, "rows": min(len(rows), q.limit)}, city_id=call.user.scope(q.city_id),
        )  # fmt: skip
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    items = [with_urls(call.state, r, (("object_key", "url"),)) for r in rows]
    cursor = encode_cursor(rows[-1]["started_at"], rows[-1]["id"]) if more and rows else None
    return ok({"items": items, "next_cursor": cursor})


ROUTES = [Route("/recordings", list_recordings, methods=["GET"])]
