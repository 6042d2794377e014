"""Live video over WebRTC with aiortc: one reader per camera, H.264 passed through to viewers.

``POST /cameras/{id}/webrtc`` takes a browser's SDP offer and answers it. The first viewer of a
camera opens its stream (RTSP over TCP, 5 s timeout) as a
:class:`~gtvision.web.livefeed.CameraFeed`; later viewers share it, and the reader stops when
the camera's last viewer leaves (connection failed or closed).

When the offer accepts H.264 (every current browser does) and the camera sends H.264, the
camera's packets are forwarded as they are: no decoder and no encoder per viewer. They are cut
into RTP payloads once per camera, and each viewer's packets get their header, SRTP and one
batched send per frame in the feed's delivery callback (:mod:`gtvision.web.rtpfanout`), so a
viewer costs little more than its encryption (``bench/webrtc.py``). A new viewer starts from the
last keyframe the feed kept, so the first picture comes at once. Only a viewer without H.264
(or a camera with another codec) costs a decoder and an encoder
(:class:`~gtvision.web.livedecode.DecodedTrack`, aiortc then sends VP8). The viewers of one
process are capped (``GTV_WEBRTC_MAX_PEERS``).

For many viewers per camera across processes, MediaMTX can serve the video instead
(``GET /cameras/{id}/live`` hands out its WHEP/LL-HLS URLs with a token); this relay keeps
working without it.

A session belongs to the viewer whose token opened it: it is cut (the peer connection closed)
within :data:`~gtvision.web.revocation.STREAM_CHECK_S` of that token's revocation (user
disabled, role or password changed, logout-all, user deleted), like an open event stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    sdp,
)
from aiortc.codecs import CODECS
from aiortc.exceptions import InvalidAccessError, OperationError
from aiortc.rtcpeerconnection import find_common_codecs

from gtvision import metrics
from gtvision.sources.streamurl import UnsafeUrl
from gtvision.web import rtpfanout
from gtvision.web.auth import Principal
from gtvision.web.livedecode import DecodedTrack
from gtvision.web.livefeed import CameraFeed, PacketTrack, describe
from gtvision.web.revocation import Generations, until_revoked

log = logging.getLogger(__name__)


class LiveError(Exception):
    """A live session cannot be set up (answered as a problem with ``status``)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(eq=False)
class _Camera:
    feed: CameraFeed
    peers: dict[Any, tuple[str, Any]] = field(default_factory=dict)  # connection -> mode, track
    idle: asyncio.TimerHandle | None = None  # closes the feed when no viewer came back


def offers_h264(offer_sdp: str) -> bool:
    """Whether the offer's video accepts an H.264 format aiortc can send (packetization 1)."""
    try:
        description = sdp.SessionDescription.parse(offer_sdp)
    except (ValueError, IndexError, KeyError, AssertionError, TypeError):  # aiortc's parser
        msg = "invalid SDP offer: not a session description (RFC 8866) as a browser sends it"
        raise LiveError(422, msg) from None
    videos = [m for m in description.media if m.kind == "video"]
    if not videos:
        msg = "invalid SDP offer: it has no video media section (offer to receive video)"
        raise LiveError(422, msg)
    common = find_common_codecs(CODECS["video"], videos[0].rtp.codecs)
    return any(c.mimeType.lower() == "video/h264" for c in common)


def _h264_only() -> list[Any]:
    caps = RTCRtpSender.getCapabilities("video")
    assert caps is not None
    return [c for c in caps.codecs if c.mimeType.lower() in ("video/h264", "video/rtx")]


class LiveRelay:
    """The WebRTC sessions of one web process, grouped by camera.

    A camera's reader stays open ``linger_s`` seconds after its last viewer left, so a viewer
    who comes back (page reload, camera wall re-layout) starts from the kept GOP at once
    instead of waiting for the camera's next keyframe.

    ``local_sources`` maps camera ids to local video files read instead of their stream URL
    (looped in real time): ``gtvision demo`` makes its sample camera watchable with it. It comes
    only from the code that builds the app, never from the database.

    ``revocation`` (the app's token generations) lets :meth:`answer` tie a session to its
    viewer: the session ends when the viewer's token is revoked.
    """

    def __init__(
        self,
        *,
        max_peers: int = 16,
        ice_servers: list[str] | None = None,
        local_sources: Mapping[int, Path] | None = None,
        linger_s: float = 15.0,
        allow: Sequence[str] | None = None,
        revocation: Generations | None = None,
    ) -> None:
        self.allow = allow
        self.revocation = revocation
        self.max_peers = max_peers
        self.linger_s = linger_s
        self.ice_servers = list(ice_servers or [])
        self.local_sources = dict(local_sources or {})
        self._cameras: dict[int, _Camera] = {}
        self._opening: dict[int, asyncio.Future[_Camera]] = {}
        self._watches: dict[Any, asyncio.Future[None]] = {}  # connection -> revocation watch

    @property
    def peers(self) -> int:
        """Open viewer connections."""
        return sum(len(c.peers) for c in self._cameras.values())

    @property
    def cameras(self) -> int:
        """Cameras being read."""
        return len(self._cameras)

    def receiving(self, within_s: float = 5.0) -> dict[int, datetime]:
        """Cameras this relay reads that delivered video in the last ``within_s``: since when."""
        out: dict[int, datetime] = {}
        for camera_id, cam in self._cameras.items():
            since = cam.feed.receiving(within_s)
            if since is not None:
                out[camera_id] = since
        return out

    def modes(self) -> dict[str, int]:
        """How many viewers get passed-through H.264 and how many a decoded+encoded stream."""
        out = {"passthrough": 0, "decode": 0}
        for cam in self._cameras.values():
            for mode, _ in cam.peers.values():
                out[mode] += 1
        return out

    def _config(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in self.ice_servers])

    async def _open(self, camera_id: int, url: str) -> _Camera:
        source: str | Path = self.local_sources.get(camera_id, url)
        allow = None if isinstance(source, Path) else self.allow
        try:  # resolving and opening RTSP block (connect, DESCRIBE, SETUP): not on the loop
            container = await asyncio.to_thread(CameraFeed.open_container, source, allow)
        except UnsafeUrl as err:
            log.warning("camera %s: stream address refused: %s", camera_id, err)
            msg = f"camera {camera_id} stream is not available: its address is not allowed"
            raise LiveError(502, msg) from None
        except Exception as err:  # PyAV raises its own OSError subclasses, and ValueError
            log.warning("camera %s: cannot open its stream: %s", camera_id, describe(err, source))
            msg = f"camera {camera_id} stream is not available: the camera did not deliver video"
            raise LiveError(502, msg) from None
        feed = CameraFeed(camera_id, source, container, allow)
        cam = self._cameras[camera_id] = _Camera(feed)
        metrics.LIVE_CAMERAS.inc()
        return cam

    async def _camera(self, camera_id: int, url: str) -> _Camera:
        cam = self._cameras.get(camera_id)
        if cam is not None and not cam.feed.closing:
            return cam
        pending = self._opening.get(camera_id)
        if pending is None:  # one opening per camera, however many viewers wait for it
            pending = self._opening[camera_id] = asyncio.ensure_future(self._open(camera_id, url))
            pending.add_done_callback(lambda _: self._opening.pop(camera_id, None))
        return await asyncio.shield(pending)

    async def answer(
        self, camera_id: int, url: str, offer_sdp: str, viewer: Principal | None = None
    ) -> str:
        """SDP answer sending ``camera_id``'s video to the peer that made ``offer_sdp``.

        With ``viewer`` (and the relay's ``revocation``), the session ends when the viewer's
        token is revoked.
        """
        wants_h264 = offers_h264(offer_sdp)
        if self.peers + len(self._opening) >= self.max_peers:
            msg = f"live video is at its limit of {self.max_peers} viewers on this server"
            raise LiveError(503, msg)
        cam = await self._camera(camera_id, url)
        if cam.idle is not None:
            cam.idle.cancel()
            cam.idle = None
        if self.peers >= self.max_peers:
            msg = f"live video is at its limit of {self.max_peers} viewers on this server"
            raise LiveError(503, msg)
        passthrough = wants_h264 and cam.feed.codec == "h264"
        pc = RTCPeerConnection(self._config())
        track = PacketTrack(cam.feed) if passthrough else DecodedTrack(cam.feed)
        mode = "passthrough" if passthrough else "decode"
        cam.peers[pc] = (mode, track)
        metrics.LIVE_VIEWERS.labels(mode).inc()

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._drop(camera_id, pc)

        try:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            if passthrough:  # packets can only be sent in their own codec
                transceiver.setCodecPreferences(_h264_only())
                rtpfanout.attach(transceiver.sender, cam.feed)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, InvalidAccessError, OperationError) as err:  # unusable SDP
            await self._drop(camera_id, pc)
            log.info("camera %s: offer refused by aiortc: %s", camera_id, err)
            msg = "invalid SDP offer: its media sections cannot be answered (DTLS, ICE, codecs)"
            raise LiveError(422, msg) from None
        except Exception:
            await self._drop(camera_id, pc)
            raise
        answer_sdp: str = pc.localDescription.sdp
        if viewer is not None and self.revocation is not None:
            self._watches[pc] = asyncio.ensure_future(self._end_when_revoked(camera_id, pc, viewer))
        return answer_sdp

    async def _end_when_revoked(self, camera_id: int, pc: Any, viewer: Principal) -> None:
        if not await until_revoked(self.revocation, viewer.user_id, viewer.gen):
            return
        self._watches.pop(pc, None)  # so that _drop does not cancel this very task
        log.info(
            "live video of camera %s for user %s ended: token revoked", camera_id, viewer.user_id
        )
        metrics.REVOKED_SESSIONS.labels("live").inc()
        await self._drop(camera_id, pc)

    async def _drop(self, camera_id: int, pc: Any) -> None:
        watch = self._watches.pop(pc, None)
        if watch is not None:
            watch.cancel()
        cam = self._cameras.get(camera_id)
        if cam is not None and pc in cam.peers:
            mode, track = cam.peers.pop(pc)
            metrics.LIVE_VIEWERS.labels(mode).dec()
            track.stop()
            if not cam.peers:
                loop = asyncio.get_running_loop()
                cam.idle = loop.call_later(self.linger_s, self._retire, camera_id, cam)
        await pc.close()

    def _retire(self, camera_id: int, cam: _Camera) -> None:
        """Stop reading a camera nobody watches."""
        if cam.peers or self._cameras.get(camera_id) is not cam:
            return
        if cam.idle is not None:
            cam.idle.cancel()
        del self._cameras[camera_id]
        metrics.LIVE_CAMERAS.dec()
        cam.feed.close()

    async def close(self) -> None:
        """Close every connection and stop every reader (app shutdown)."""
        for camera_id, cam in list(self._cameras.items()):
            for pc in list(cam.peers):
                await self._drop(camera_id, pc)
            self._retire(camera_id, cam)
