"""Live video over WebRTC with aiortc: one RTSP reader per camera, shared by every viewer.

``POST /cameras/{id}/webrtc`` takes a browser's SDP offer and answers it. The first viewer of a
camera opens its RTSP stream with aiortc's ``MediaPlayer`` (RTSP over TCP, 5 s connect timeout);
later viewers subscribe to the same decoded track through ``MediaRelay``, so the camera is read
and decoded once however many operators watch. Each viewer's connection encodes for itself
(aiortc does not forward H.264 packets without decoding: its passthrough mode gave no picture
here), which is why the number of viewers per process is capped (``GTV_WEBRTC_MAX_PEERS``).
When a camera's last viewer leaves (connection failed or closed) its reader stops.

For many viewers per camera, production deployments can point browsers at MediaMTX's own WHEP
endpoint instead (``deploy/mediamtx.yml``); this relay keeps the API's login, roles, city scope
and audit in front of the video.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: ffmpeg options of the RTSP reader: TCP (no lost UDP packets), 5 s connect/read timeout
RTSP_OPTIONS = {"rtsp_transport": "tcp", "timeout": "5000000"}


class LiveError(Exception):
    """A live session cannot be set up (answered as a problem with ``status``)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(eq=False)
class _Camera:
    player: Any
    relay: Any
    peers: set[Any] = field(default_factory=set)


class LiveRelay:
    """The WebRTC sessions of one web process, grouped by camera."""

    def __init__(self, *, max_peers: int = 16, ice_servers: list[str] | None = None) -> None:
        self.max_peers = max_peers
        self.ice_servers = list(ice_servers or [])
        self._cameras: dict[int, _Camera] = {}
        self._lock = asyncio.Lock()

    @property
    def peers(self) -> int:
        """Open viewer connections."""
        return sum(len(c.peers) for c in self._cameras.values())

    @property
    def cameras(self) -> int:
        """Cameras being read."""
        return len(self._cameras)

    def _config(self) -> Any:
        from aiortc import RTCConfiguration, RTCIceServer

        return RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in self.ice_servers])

    async def _camera(self, camera_id: int, url: str) -> _Camera:
        cam = self._cameras.get(camera_id)
        if cam is not None:
            return cam
        from aiortc.contrib.media import MediaPlayer, MediaRelay

        try:  # opening RTSP blocks (connect, DESCRIBE, SETUP): not on the event loop
            player = await asyncio.to_thread(
                MediaPlayer, url, format="rtsp", options=dict(RTSP_OPTIONS)
            )
        except Exception as err:  # PyAV raises its own OSError subclasses, and ValueError
            log.warning("camera %s: cannot open its stream: %s", camera_id, err)
            msg = f"camera {camera_id} stream is not available: {type(err).__name__}"
            raise LiveError(502, msg) from None
        if player.video is None:
            if player.audio is not None:
                player.audio.stop()
            msg = f"camera {camera_id} stream has no video track"
            raise LiveError(502, msg)
        cam = self._cameras[camera_id] = _Camera(player, MediaRelay())
        return cam

    async def answer(self, camera_id: int, url: str, offer_sdp: str) -> str:
        """SDP answer sending ``camera_id``'s video to the peer that made ``offer_sdp``."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        async with self._lock:
            if self.peers >= self.max_peers:
                msg = f"live video is at its limit of {self.max_peers} viewers on this server"
                raise LiveError(503, msg)
            cam = await self._camera(camera_id, url)
            pc = RTCPeerConnection(self._config())
            cam.peers.add(pc)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._drop(camera_id, pc)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            wants = [t for t in pc.getTransceivers() if t.kind == "video"]
            if not wants:
                msg = "the offer has no video media section: offer to receive video"
                raise LiveError(422, msg)
            pc.addTrack(cam.relay.subscribe(cam.player.video, buffered=False))
            await pc.setLocalDescription(await pc.createAnswer())
        except LiveError:
            await self._drop(camera_id, pc)
            raise
        except ValueError as err:  # aiortc rejects unusable SDP with ValueError
            await self._drop(camera_id, pc)
            raise LiveError(422, f"invalid SDP offer: {err}") from None
        sdp: str = pc.localDescription.sdp
        return sdp

    async def _drop(self, camera_id: int, pc: Any) -> None:
        async with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is not None:
                cam.peers.discard(pc)
                if not cam.peers:
                    del self._cameras[camera_id]
                    if cam.player.video is not None:
                        cam.player.video.stop()
        await pc.close()

    async def close(self) -> None:
        """Close every connection and stop every reader (app shutdown)."""
        for camera_id, cam in list(self._cameras.items()):
            for pc in list(cam.peers):
                await self._drop(camera_id, pc)
