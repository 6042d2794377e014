"""``GET /stream/events``: live events of the caller's city over SSE, resumable.

On connect the subscriber joins the city's hub first, then replays everything after
``Last-Event-ID`` (Postgres for the part trimmed from the Redis stream, then the stream), then
drains the live queue skipping ids already sent. So a reconnecting client gets every event
once, in stream order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.responses import Response
from starlette.routing import Route

from gtvision import metrics
from gtvision.web import revocation as revocations
from gtvision.web.auth import Perm, Principal
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.hub import (
    CLOSED,
    FeedItemLike,
    Message,
    Subscription,
    check_stream_id,
    sid_key,
)
from gtvision.web.models import StreamQuery
from gtvision.web.problems import ApiError
from gtvision.web.redisguard import REDIS_TIMEOUT_S, UNAVAILABLE, RedisDown
from gtvision.web.state import AppState

log = logging.getLogger(__name__)
REPLAY_BATCH = 500
_PG_GAP = (
    "SELECT stream_id, type, camera_id, payload, crop_key, clip_key FROM events "
    "WHERE city_id = %(city)s AND stream_id IS NOT NULL "
    "AND (split_part(stream_id, '-', 1)::bigint, split_part(stream_id, '-', 2)::bigint) "
    "> (%(ams)s, %(aseq)s) {upper}"
    "ORDER BY split_part(stream_id, '-', 1)::bigint, split_part(stream_id, '-', 2)::bigint "
    "LIMIT 10000"
)


def render_data(state: AppState, event_json: str, crop_key: str | None = None) -> str:
    """SSE ``data``: the event JSON plus ``crop_url`` (presigned) when it has a crop."""
    if state.store is None:
        return event_json
    data: dict[str, Any] = json.loads(event_json)
    key = crop_key or data.get("crop_key")
    if key:
        data["crop_url"] = state.store.presigned_get(str(key), state.settings.presign_ttl_s)
    return json.dumps(data, separators=(",", ":"))


def hub_renderer(state: AppState) -> Any:
    """The hub's ``render`` (runs once per event, not once per subscriber)."""

    def render(item: FeedItemLike) -> str:
        return render_data(state, item.json)

    return render


async def _from_postgres(
    state: AppState, city: int, after: str, before: str | None
) -> list[Message]:
    ams, aseq = sid_key(after)
    args: dict[str, Any] = {"city": city, "ams": ams, "aseq": aseq}
    upper = ""
    if before is not None:
        args["bms"], args["bseq"] = sid_key(before)
        upper = (
            "AND (split_part(stream_id, '-', 1)::bigint, split_part(stream_id, '-', 2)::bigint)"
            " < (%(bms)s, %(bseq)s) "
        )
    async with state.pool.connection() as conn:
        cur = await conn.execute(_PG_GAP.format(upper=upper).encode(), args)
        rows = await cur.fetchall()
    return [
        Message.build(
            r["stream_id"],
            r["type"],
            r["camera_id"],
            render_data(state, json.dumps(r["payload"], separators=(",", ":")), r["crop_key"]),
        )
        for r in rows
    ]


async def replay(state: AppState, city: int, after: str) -> AsyncIterator[Message]:
    """Everything of ``city`` after stream id ``after``: Postgres gap first, then the stream."""
    first = True
    while True:
        items = await state.hub.feed.read(city, after, 0, REPLAY_BATCH)
        if first:
            first = False
            lost = await state.hub.feed.history_lost(city, after)
            before = items[0].stream_id if items else None
            gap = await _from_postgres(state, city, after, before) if lost else []
            for msg in gap:
                after = msg.stream_id
                yield msg
        for item in items:
            yield Message.build(
                item.stream_id, item.type, item.camera_id, render_data(state, item.json)
            )
            after = item.stream_id
        if len(items) < REPLAY_BATCH:
            return


async def _end_when_revoked(state: AppState, who: Principal, sub: Subscription) -> None:
    """Close ``sub``'s stream once ``who``'s token is revoked (checked every few seconds)."""
    if not await revocations.until_revoked(state.revocation, who.user_id, who.gen):
        return
    log.info("SSE stream of user %s ended: token revoked", who.user_id)
    metrics.REVOKED_SESSIONS.labels("sse").inc()
    while True:
        try:
            sub.queue.put_nowait(CLOSED)
            return
        except asyncio.QueueFull:  # a slow reader: drop what it has not read, it is leaving
            sub.queue.get_nowait()


_NO_FEED: tuple[type[BaseException], ...] = (TimeoutError, *UNAVAILABLE)


async def _feed_answers(state: AppState, city: int) -> None:
    """503 (``RedisDown``) before the stream starts when the feed's Redis does not answer.

    A stream that started would end at once, and the browser would retry at full speed.
    """
    use = "open the live event stream"
    state.redis_guard.require(use)
    try:
        await asyncio.wait_for(state.hub.feed.last_id(city), REDIS_TIMEOUT_S)
    except _NO_FEED as err:
        state.redis_guard.failed(err, use)
        raise RedisDown(use) from None


@endpoint(
    Perm.STREAM,
    "Live events (SSE); resume with Last-Event-ID",
    query=StreamQuery,
    stream_token=True,
    media_type="text/event-stream",
    responses={503: "Redis unavailable"},
)
async def stream_events(call: Call) -> Response:
    """Server-sent events of the caller's city; auth by header or ``?token=`` stream token."""
    q = call.query(StreamQuery)
    city = call.user.scope(q.city_id)
    if city is None:
        msg = "admin must choose a city: ?city_id=N"
        raise ApiError(422, msg)
    types = {t.strip() for t in (q.types or "").split(",") if t.strip()}
    camera = q.camera
    header = call.request.headers.get("last-event-id")
    last = q.last_event_id or ""
    if header is not None and header.strip():
        try:
            last = check_stream_id(header.strip())
        except ValueError as err:
            shown = header.strip()[:40]
            raise ApiError(400, f"invalid Last-Event-ID {shown!r}: {err}") from None
    state = call.state

    def wanted(msg: Message) -> bool:
        return (not types or msg.type in types) and (camera is None or msg.camera_id == camera)

    async def entries(sub: Any) -> AsyncIterator[bytes]:
        sent = last
        if last:
            async for msg in replay(state, city, last):
                sent = msg.stream_id
                if wanted(msg):
                    yield msg.wire
        while True:
            msg = await sub.queue.get()
            if msg is CLOSED:
                return
            if sent and sid_key(msg.stream_id) <= sid_key(sent):
                continue
            sent = msg.stream_id
            if wanted(msg):
                yield msg.wire

    await _feed_answers(state, city)

    async def events() -> AsyncIterator[bytes]:
        try:
            sub = await state.hub.subscribe(city)
        except Exception as err:  # Redis went away since the check: one log line, no trace
            log.warning("SSE stream of city %s not started: %s: %s", city, type(err).__name__, err)
            return
        watch = asyncio.ensure_future(_end_when_revoked(state, call.user, sub))
        try:
            async for wire in entries(sub):
                yield wire
        except Exception as err:  # the response has started: end it with one log line
            log.warning("SSE stream of city %s ended: %s: %s", city, type(err).__name__, err)
        finally:
            watch.cancel()
            state.hub.unsubscribe(sub)

    return EventSourceResponse(
        events(), ping=state.settings.sse_ping_s, headers={"X-Accel-Buffering": "no"}
    )


ROUTES = [Route("/stream/events", stream_events, methods=["GET"])]
