"""LGPD erasure of one plate's data (``admin`` everywhere, ``city_admin`` in their city)."""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.routing import Route

from gtvision.sinks.retention import FeedForgetter, Purger
from gtvision.web.auth import Perm
from gtvision.web.common import ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import ErasureIn
from gtvision.web.problems import not_found


@endpoint(
    Perm.DATA_ERASE,
    "Erase every stored event of a plate and of its other form (rows, crops, clips, live feed, "
    "outbox)",
    body=ErasureIn,
    responses={404: "city not found"},
)
async def erase_plate(call: Call) -> Response:
    """Run the erasure now and answer with the counts; the audit log records it.

    Old ``ABC1234`` and Mercosul ``ABC1C34`` name one vehicle: both forms are erased unless
    ``equivalent`` is false (then exactly the given text).
    """
    body = call.body(ErasureIn)
    city = body.city_id
    if not call.user.is_admin:
        if city is not None and city != call.user.city_id:
            raise not_found(city, kind="city")
        city = call.user.city_id
    state = call.state
    feed = state.hub.feed
    purger = Purger(
        state.settings.database_url,
        state.store,
        feed if isinstance(feed, FeedForgetter) else None,
        audit_key=state.audit_key,
    )
    done = await asyncio.to_thread(
        purger.erase,
        body.plate,
        city_id=city,
        actor=call.user.username,
        user_id=call.user.user_id,
        reference=body.reference,
        ip=call.ip,
        equivalent=body.equivalent,
    )
    return ok({"city_id": city, "removed": done.as_dict()})


ROUTES = [Route("/erasures", erase_plate, methods=["POST"])]
