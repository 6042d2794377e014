"""Live video over WebRTC: a real RTSP stream (ffmpeg → GStreamer RTSP server) to aiortc peers.

ICE stays on loopback: aioice skips 127.0.0.1 when it lists host addresses, so the tests make
it offer only 127.0.0.1 (server and test viewers alike). No STUN/TURN server is configured
anywhere. The console's live tile in Chromium is tested in ``tests/web/test_console.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import psycopg
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from prometheus_client import REGISTRY

from gtvision.sources.testvideo import make_video
from gtvision.web import rtpfanout
from gtvision.web.auth import Role
from gtvision.web.live import LiveError, LiveRelay
from tests.conftest import Publisher
from tests.web.conftest import Api, running

pytestmark = pytest.mark.asyncio(loop_scope="session")
# the test cameras are RTSP servers on 127.0.0.1: the relay's address guard must allow them
CAMERA_ALLOW_CIDRS = ["10.0.0.0/8", "192.168.0.0/16", "127.0.0.1/32"]


@pytest.fixture(autouse=True)
def _loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gather ICE host candidates on 127.0.0.1 only (aioice leaves loopback out by default)."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["127.0.0.1"])


def _camera(api: Api, url: str, *, enabled: bool = True) -> int:
    """A camera of city a reading ``url`` (loopback: inserted past the API's SSRF guard)."""
    with psycopg.connect(api.settings.database_url) as conn:
        row = conn.execute(
            "INSERT INTO cameras (city_id, name, stream_url, enabled) VALUES (%s, %s, %s, %s)"
            " RETURNING id",
            (api.world.cities["a"], f"live-{uuid.uuid4().hex[:6]}", url, enabled),
        ).fetchone()
    assert row is not None
    return int(row[0])


class Viewer:
    """A receive-only aiortc peer that counts the decoded frames it gets."""

    def __init__(self, *, vp8_only: bool = False) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        if vp8_only:  # a browser without H.264
            caps = RTCRtpReceiver.getCapabilities("video")
            assert caps is not None
            transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == "video/VP8"])
        self.frames: list[tuple[int, int]] = []
        self.began = time.monotonic()
        self.first_frame_s: float | None = None
        self.enough = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        async def pull() -> None:
            while True:
                frame = await track.recv()
                if self.first_frame_s is None:
                    self.first_frame_s = time.monotonic() - self.began
                self.frames.append((frame.width, frame.height))
                if len(self.frames) >= 15:
                    self.enough.set()

        self._task = asyncio.ensure_future(pull())

    async def offer(self) -> dict[str, str]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"type": "offer", "sdp": self.pc.localDescription.sdp}

    async def accept(self, answer: dict[str, str]) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()


async def _watch(api: Api, camera: int, role: Role = Role.VIEWER) -> tuple[Viewer, Any]:
    viewer = Viewer()
    r = await api.client.post(
        f"/cameras/{camera}/webrtc", json=await viewer.offer(), headers=api.auth("a", role)
    )
    if r.status_code == 200:
        await viewer.accept(r.json())
    return viewer, r


async def _until(check: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return check()


def _fanout() -> tuple[float, float]:
    """Passthrough viewers sent by the fan-out and by aiortc's own loop, so far."""
    name = "gtvision_live_fanout_viewers_total"
    return tuple(  # type: ignore[return-value]
        REGISTRY.get_sample_value(name, {"kind": s}) or 0.0 for s in ("fanout", "aiortc")
    )


def _video_codecs(answer_sdp: str) -> list[str]:
    """Codec names of the answer's video section, in order."""
    names = dict(
        (line.split()[0].split(":")[1], line.split()[1].split("/")[0])
        for line in answer_sdp.splitlines()
        if line.startswith("a=rtpmap:")
    )
    video = next(line for line in answer_sdp.splitlines() if line.startswith("m=video"))
    return [names[pt] for pt in video.split()[3:]]


async def test_two_viewers_share_one_reader_and_it_stops_after_them(
    api: Api, rtsp_publisher: Callable[..., Publisher]
) -> None:
    pub = rtsp_publisher(f"live{uuid.uuid4().hex[:6]}", size="640x360", rate=15)
    camera = _camera(api, pub.url)
    fanout_before = _fanout()
    one, r1 = await _watch(api, camera)
    assert r1.status_code == 200, r1.text
    two, r2 = await _watch(api, camera, Role.OPERATOR)
    assert r2.status_code == 200, r2.text
    relay = api.live_relay()
    assert (relay.cameras, relay.peers) == (1, 2)
    assert relay.modes() == {"passthrough": 2, "decode": 0}  # H.264 offered: no transcoding
    viewers = REGISTRY.get_sample_value("gtvision_live_viewers", {"kind": "passthrough"})
    assert viewers is not None
    assert viewers >= 2
    assert _video_codecs(r1.json()["sdp"])[0] == "H264"
    relay.linger_s = 0.0
    await asyncio.wait_for(asyncio.gather(one.enough.wait(), two.enough.wait()), 30)
    assert set(one.frames) == {(640, 360)}  # decoded by the viewers: the packets were valid
    assert set(two.frames) == {(640, 360)}
    fanout = _fanout()  # both sent by the fan-out (packets cut once), not aiortc's own loop
    assert (fanout[0] - fanout_before[0], fanout[1] - fanout_before[1]) == (2, 0)
    snap = await api.client.get(f"/cameras/{camera}/snapshot", headers=api.auth("a", Role.VIEWER))
    assert snap.status_code == 200, snap.text
    assert snap.headers["content-type"] == "image/jpeg"
    picture = cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    assert picture.shape == (360, 640, 3)  # the camera's picture, for drawing its zones on
    status = await api.client.get("/cameras/status", headers=api.auth("a", Role.VIEWER))
    live = {i["camera_id"]: i["live"] for i in status.json()["items"]}
    assert live[camera]["via"] == "relay"  # no flow reads it: the relay says it delivers
    assert live[api.world.cameras["a"]] is None
    with psycopg.connect(api.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT username FROM audit_log WHERE action = 'camera.live' AND target = %s",
            (f"camera:{camera}",),
        ).fetchall()
        snaps = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'camera.snapshot' AND target = %s",
            (f"camera:{camera}",),
        ).fetchone()
    assert sorted(r[0] for r in rows) == sorted(
        api.world.users[("a", role)].username for role in (Role.VIEWER, Role.OPERATOR)
    )
    assert snaps == (1,)
    await one.close()
    assert await _until(lambda: relay.peers == 1, 40), relay.peers
    assert relay.cameras == 1
    await two.close()
    assert await _until(lambda: relay.cameras == 0, 40), relay.peers


async def test_refusals(api: Api) -> None:
    off = _camera(api, "rtsp://127.0.0.1:1/off", enabled=False)
    viewer, r = await _watch(api, off)
    await viewer.close()
    assert r.status_code == 409
    h = api.auth("a", Role.VIEWER)
    assert (await api.client.get(f"/cameras/{off}/snapshot", headers=h)).status_code == 409
    other_city = api.world.cameras["b"]
    assert (await api.client.get(f"/cameras/{other_city}/snapshot", headers=h)).status_code == 404
    dead = _camera(api, "rtsp://127.0.0.1:1/nothing-listens")
    began = time.monotonic()
    viewer, r = await _watch(api, dead)
    await viewer.close()
    assert r.status_code == 502, r.text
    assert "stream is not available" in r.json()["detail"]
    assert time.monotonic() - began < 10
    snap = await api.client.get(f"/cameras/{dead}/snapshot", headers=api.auth("a", Role.VIEWER))
    assert snap.status_code == 502
    assert snap.json()["detail"].endswith("gave no picture: the camera did not deliver video")
    bad = await api.client.post(
        f"/cameras/{dead}/webrtc",
        json={"type": "answer", "sdp": "v=0 not an offer"},
        headers=api.auth("a", Role.VIEWER),
    )
    assert bad.status_code == 422
    other = api.world.cameras["b"]
    viewer, r = await _watch(api, other)
    await viewer.close()
    assert r.status_code == 404


async def test_viewer_limit(rtsp_publisher: Callable[..., Publisher]) -> None:
    pub = rtsp_publisher(f"lim{uuid.uuid4().hex[:6]}", size="320x240", rate=10)
    relay = LiveRelay(max_peers=1)
    first, second = Viewer(), Viewer()
    answer = await relay.answer(7, pub.url, (await first.offer())["sdp"])
    await first.accept({"type": "answer", "sdp": answer})
    with pytest.raises(LiveError) as err:
        await relay.answer(7, pub.url, (await second.offer())["sdp"])
    assert err.value.status == 503
    await asyncio.wait_for(first.enough.wait(), 30)
    await relay.close()
    assert (relay.cameras, relay.peers) == (0, 0)
    await first.close()
    await second.close()


async def test_a_viewer_the_fan_out_cannot_reach_gets_aiortcs_own_sender(
    rtsp_publisher: Callable[..., Publisher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No plain UDP route (a TURN relay): the viewer still gets the packets, by aiortc's loop."""
    monkeypatch.setattr(rtpfanout, "route_of", lambda sender: None)
    pub = rtsp_publisher(f"turn{uuid.uuid4().hex[:6]}", size="320x240", rate=10)
    relay = LiveRelay(linger_s=0)
    before = _fanout()
    viewer = Viewer()
    answer = await relay.answer(9, pub.url, (await viewer.offer())["sdp"])
    await viewer.accept({"type": "answer", "sdp": answer})
    await asyncio.wait_for(viewer.enough.wait(), 30)
    assert set(viewer.frames) == {(320, 240)}
    assert relay.modes() == {"passthrough": 1, "decode": 0}
    after = _fanout()
    assert (after[0] - before[0], after[1] - before[1]) == (0, 1)
    await viewer.close()
    await relay.close()


async def test_vp8_only_viewer_gets_a_transcoded_stream(
    rtsp_publisher: Callable[..., Publisher],
) -> None:
    pub = rtsp_publisher(f"vp8{uuid.uuid4().hex[:6]}", size="320x240", rate=10)
    relay = LiveRelay(linger_s=0)
    viewer = Viewer(vp8_only=True)
    answer = await relay.answer(8, pub.url, (await viewer.offer())["sdp"])
    assert _video_codecs(answer)[0] == "VP8"
    assert relay.modes() == {"passthrough": 0, "decode": 1}
    await viewer.accept({"type": "answer", "sdp": answer})
    await asyncio.wait_for(viewer.enough.wait(), 30)
    assert set(viewer.frames) == {(320, 240)}
    await viewer.close()
    await relay.close()
    assert relay.cameras == 0


async def test_late_viewer_starts_from_the_kept_gop_of_a_local_file(
    api: Api, tmp_path: Path
) -> None:
    """A viewer joining mid-GOP gets a picture at once, not at the next keyframe 20 s later.

    The source is a local MP4 looped in real time, given to the app as ``live_sources`` (how
    ``gtvision demo`` makes its camera watchable): MP4's length-prefixed H.264 must reach the
    viewers as Annex-B with SPS/PPS on the keyframe.
    """
    video = make_video(tmp_path / "gop.mp4", duration=24, size=(320, 240), fps=10, gop=200)
    camera = _camera(api, "rtsp://sample.invalid/not-read")
    async with running(
        api.settings, feed=api.feed, store=api.store, live_sources={camera: video}
    ) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

            async def watch() -> Viewer:
                viewer = Viewer()
                r = await client.post(
                    f"/cameras/{camera}/webrtc",
                    json=await viewer.offer(),
                    headers=api.auth("a", Role.VIEWER),
                )
                assert r.status_code == 200, r.text
                await viewer.accept(r.json())
                return viewer

            first = await watch()
            await asyncio.wait_for(first.enough.wait(), 30)
            await asyncio.sleep(2.0)  # the feed is now ~3 s into a 20 s GOP
            late = await watch()
            assert await _until(lambda: late.first_frame_s is not None, 10)
            assert late.first_frame_s is not None
            assert late.first_frame_s < 5, late.first_frame_s
            print(f"late viewer's first frame after {late.first_frame_s:.2f} s")
            assert app.state.gtv.live.modes() == {"passthrough": 2, "decode": 0}
            assert set(late.frames) == {(320, 240)}
            await first.close()
            await late.close()


async def test_a_session_ends_when_its_viewers_token_is_revoked(
    api: Api, rtsp_publisher: Callable[..., Publisher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disabling a user cuts that user's open live video within the check period (issue 13):
    the relay closes the peer connection; another user's session on the camera plays on."""
    from gtvision.web import revocation
    from gtvision.web.auth import Principal, hash_password

    monkeypatch.setattr(revocation, "STREAM_CHECK_S", 0.2)
    name = f"live-rev-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(api.settings.database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO users (username, password_hash, role, city_id) VALUES (%s, %s, %s, %s)"
            " RETURNING id",
            (name, hash_password("a long enough password"), "viewer", api.world.cities["a"]),
        ).fetchone()
    assert row is not None
    token = api.issuer.issue(Principal(int(row[0]), name, Role.VIEWER, api.world.cities["a"]))[0]
    pub = rtsp_publisher(f"rev{uuid.uuid4().hex[:6]}", size="320x240", rate=15)
    camera = _camera(api, pub.url)
    doomed = Viewer()
    r = await api.client.post(
        f"/cameras/{camera}/webrtc",
        json=await doomed.offer(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    await doomed.accept(r.json())
    other, r2 = await _watch(api, camera)
    assert r2.status_code == 200, r2.text
    await asyncio.wait_for(asyncio.gather(doomed.enough.wait(), other.enough.wait()), 30)
    relay = api.live_relay()
    assert relay.peers == 2
    patch = await api.client.patch(
        f"/users/{row[0]}", json={"disabled": True}, headers=api.auth(None, Role.ADMIN)
    )
    assert patch.status_code == 200, patch.text
    t0 = time.monotonic()
    assert await _until(lambda: relay.peers == 1, 5), relay.peers
    cut_after = time.monotonic() - t0
    # the viewer's side sees its connection end, and its frames stop
    assert await _until(lambda: doomed.pc.connectionState in ("closed", "failed"), 10), (
        doomed.pc.connectionState
    )
    seen, still = len(doomed.frames), len(other.frames)
    await asyncio.sleep(1.0)
    assert len(doomed.frames) == seen
    assert len(other.frames) > still  # the other viewer plays on
    print(f"session cut {cut_after:.2f} s after the revocation")
    await doomed.close()
    await other.close()
