"""Live video routes: how to watch a camera, the built-in WebRTC relay, MediaMTX's JWKS.

* ``GET /cameras/{id}/live``: the players available for a camera: the relay's URL, and with
  MediaMTX its WHEP and LL-HLS URLs plus a short-lived viewer token (``mediamtx.py``).
* ``POST /cameras/{id}/webrtc``: the aiortc relay answers an SDP offer (``live.py``).
* ``GET /cameras/{id}/snapshot``: one still picture (JPEG), what zones are drawn on
  (``snapshot.py``).
* ``GET /.well-known/jwks.json``: the public key MediaMTX checks viewer tokens with.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from gtvision.sources.streamurl import UnsafeUrl
from gtvision.web.auth import Perm
from gtvision.web.common import audit, ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.mediamtx import player_urls
from gtvision.web.models import WebRtcOffer
from gtvision.web.problems import ApiError, not_found
from gtvision.web.state import AppState

log = logging.getLogger(__name__)


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
            allow=s.camera_allow_cidrs,
            revocation=state.revocation,
        )
    return state.live


async def _watchable(call: Call, camera_id: int) -> dict[str, Any]:
    """The camera row if the caller may watch it: 404 across cities, 409 when disabled."""
    city = call.user.scope()
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT city_id, name, stream_url, enabled FROM cameras WHERE id = %s", (camera_id,)
        )
        row = await cur.fetchone()
    if row is None or (city is not None and row["city_id"] != city):
        raise not_found(camera_id, kind="camera")
    if not row["enabled"]:
        raise ApiError(409, f"camera {camera_id} is disabled")
    return row


@endpoint(
    Perm.STREAM,
    "How to watch a camera: the relay's URL; with MediaMTX, WHEP/LL-HLS URLs and a viewer token",
    responses={404: "camera not found", 409: "camera disabled"},
)
async def camera_live(call: Call) -> Response:
    """Players for the camera; handing out a MediaMTX token is audited (``camera.live``)."""
    camera_id = call.path_int("camera_id")
    row = await _watchable(call, camera_id)
    urls = player_urls(call.state.settings, camera_id)
    media: dict[str, Any] | None = None
    mtx = call.state.mediamtx
    if urls is not None and mtx is not None:
        token, exp = mtx.auth.viewer_token(call.user.user_id, camera_id)
        expires = datetime.fromtimestamp(exp, UTC)
        media = {**urls, "token": token, "expires_at": expires, "expires_in": mtx.auth.viewer_ttl_s}
        async with call.state.pool.connection() as conn:
            await audit(
                conn, call.user, "camera.live", f"camera:{camera_id}", call.ip,
                {"via": "mediamtx", "path": urls["path"]}, city_id=row["city_id"],
            )  # fmt: skip
    return ok(
        {
            "camera_id": camera_id,
            "name": row["name"],
            "webrtc_url": f"/cameras/{camera_id}/webrtc",
            "mediamtx": media,
        }
    )


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
    row = await _watchable(call, camera_id)
    body = call.body(WebRtcOffer)
    relay = _relay(call.state)
    assert isinstance(relay, LiveRelay)
    try:
        sdp = await relay.answer(camera_id, row["stream_url"], body.sdp, viewer=call.user)
    except LiveError as err:
        async with call.state.pool.connection() as conn:
            await audit(
                conn, call.user, "camera.live.failed", f"camera:{camera_id}", call.ip,
                {"status": err.status, "reason": err.detail}, city_id=row["city_id"],
            )  # fmt: skip
        raise ApiError(err.status, err.detail) from None
    async with call.state.pool.connection() as conn:
        await audit(
            conn, call.user, "camera.live", f"camera:{camera_id}", call.ip,
            {"via": "relay"}, city_id=row["city_id"],
        )  # fmt: skip
    return ok({"type": "answer", "sdp": sdp})


@endpoint(
    Perm.STREAM,
    "One still picture of the camera (JPEG), e.g. to draw its zones on",
    responses={404: "camera not found", 409: "camera disabled", 502: "no picture"},
    media_type="image/jpeg",
)
async def camera_snapshot(call: Call) -> Response:
    """The camera's picture now; audited (``camera.snapshot``), failures too."""
    try:
        from gtvision.web.livefeed import describe
        from gtvision.web.snapshot import grab
    except ImportError:  # pragma: no cover - aiortc (livefeed's tracks) is the webrtc extra
        msg = "camera pictures need the live-video extra: pip install 'gtvision[webrtc]'"
        raise ApiError(501, msg) from None
    camera_id = call.path_int("camera_id")
    row = await _watchable(call, camera_id)
    state = call.state
    source: str | Path = state.live_sources.get(camera_id, row["stream_url"])
    failed = ""
    try:
        jpeg = await asyncio.to_thread(grab, source, state.settings.camera_allow_cidrs)
    except UnsafeUrl as err:
        log.warning("camera %s: stream address refused: %s", camera_id, err)
        failed = f"camera {camera_id} gave no picture: its address is not allowed"
    except Exception as err:  # PyAV's OSError subclasses, NoPicture
        log.warning("camera %s: no snapshot: %s", camera_id, describe(err, source))
        failed = f"camera {camera_id} gave no picture: the camera did not deliver video"
    action, detail = (
        ("camera.snapshot.failed", {"reason": failed}) if failed else ("camera.snapshot", {})
    )
    async with state.pool.connection() as conn:
        await audit(
            conn, call.user, action, f"camera:{camera_id}", call.ip, detail, city_id=row["city_id"]
        )
    if failed:
        raise ApiError(502, failed)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@endpoint(None, "Public key set MediaMTX verifies viewer tokens with (authJWTJWKS)")
async def jwks(call: Call) -> Response:
    """The JWKS; 404 while the MediaMTX integration is off."""
    if call.state.mediamtx is None:
        msg = "the MediaMTX integration is off (GTV_MEDIAMTX_PUBLIC_URL and GTV_MEDIAMTX_API empty)"
        raise ApiError(404, msg)
    return ok(call.state.mediamtx.auth.jwks(), headers={"Cache-Control": "public, max-age=300"})


ROUTES = [
    Route("/cameras/{camera_id:int}/live", camera_live, methods=["GET"]),
    Route("/cameras/{camera_id:int}/webrtc", camera_webrtc, methods=["POST"]),
    Route("/cameras/{camera_id:int}/snapshot", camera_snapshot, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
]
