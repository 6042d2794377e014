"""``POST /cameras/{id}/webrtc``: live video of a camera over WebRTC (aiortc, see ``live.py``)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from gtvision.web.auth import Perm
from gtvision.web.common import audit, ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import WebRtcOffer
from gtvision.web.problems import ApiError, not_found
from gtvision.web.state import AppState


def _relay(state: AppState) -> object:
    if state.live is None:
        try:
            from gtvision.web.live import LiveRelay
        except ImportError:  # pragma: no cover - aiortc is the webrtc extra
            msg = "live video needs aiortc: pip install 'gtvision[webrtc]'"
            raise ApiError(501, msg) from None
        s = state.settings
        state.live = LiveRelay(
            max_peers=s.webrtc_max_peers,
            ice_servers=s.webrtc_ice_servers,
            local_sources=state.live_sources,
            linger_s=s.webrtc_linger_s,
        )
    return state.live


@endpoint(
    Perm.STREAM,
    "WebRTC answer for a browser's offer to receive a camera's live video",
    body=WebRtcOffer,
    responses={404: "camera not found", 409: "camera disabled", 502: "stream unavailable"},
)
async def camera_webrtc(call: Call) -> Response:
    """Answer the SDP offer; the viewer's connection is audited (``camera.live``)."""
    from gtvision.web.live import LiveError, LiveRelay

    camera_id = call.path_int("camera_id")
    city = call.user.scope()
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT city_id, stream_url, enabled FROM cameras WHERE id = %s", (camera_id,)
        )
        row = await cur.fetchone()
    if row is None or (city is not None and row["city_id"] != city):
        raise not_found(camera_id, kind="camera")
    if not row["enabled"]:
        raise ApiError(409, f"camera {camera_id} is disabled")
    body = call.body(WebRtcOffer)
    relay = _relay(call.state)
    assert isinstance(relay, LiveRelay)
    try:
        sdp = await relay.answer(camera_id, row["stream_url"], body.sdp)
    except LiveError as err:
        raise ApiError(err.status, err.detail) from None
    async with call.state.pool.connection() as conn:
        await audit(
            conn, call.user, "camera.live", f"camera:{camera_id}", call.ip,
            city_id=row["city_id"],
        )  # fmt: skip
    return ok({"type": "answer", "sdp": sdp})


ROUTES = [Route("/cameras/{camera_id:int}/webrtc", camera_webrtc, methods=["POST"])]
