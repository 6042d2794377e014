"""The live relay opens only checked addresses and leaks nothing (issue 13 §1, §3, §4, §14).

Cameras are stored straight into the database (as a row changed outside the API would be) or
through the API with a name whose address changes afterwards (DNS rebinding, via the ``names``
fixture). A TCP probe stands in for the camera: it records whether and how the relay connected.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from gtvision.web.auth import Role
from tests.rtsp_probe import probe
from tests.web.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")
SETTINGS = {"camera_allow_cidrs": ["10.0.0.0/8", "127.0.0.1/32"]}
PYTHON_WORDS = ("Error", "Exception", "Traceback", "NoneType", "index out of", "literal")


@pytest.fixture(scope="module")
def offer() -> str:
    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def _camera(api: Api, url: str) -> int:
    with psycopg.connect(api.settings.database_url) as conn:
        row = conn.execute(
            "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, %s, %s) RETURNING id",
            (api.world.cities["a"], f"lg-{uuid.uuid4().hex[:6]}", url),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _watch(api: Api, camera: int, sdp: str) -> Any:
    return await api.client.post(
        f"/cameras/{camera}/webrtc",
        json={"type": "offer", "sdp": sdp},
        headers=api.auth("a", Role.VIEWER),
    )


def _failed_audits(api: Api, camera: int) -> list[tuple[str, str]]:
    with psycopg.connect(api.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT action, detail->>'status' FROM audit_log WHERE target = %s ORDER BY id",
            (f"camera:{camera}",),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _clean(r: Any, *secrets: str) -> None:
    assert r.headers["content-type"] == "application/problem+json"
    for word in (*PYTHON_WORDS, *secrets):
        assert word not in r.json()["detail"], r.json()["detail"]


async def test_stored_urls_to_refused_addresses_are_never_connected(sapi: Api, offer: str) -> None:
    with probe("127.0.0.2") as other, probe("127.0.0.1") as allowed:
        outside = _camera(sapi, f"rtsp://127.0.0.2:{other.port}/x")  # loopback, not allowed
        injected = _camera(sapi, f"rtsp://127.0.0.1:{allowed.port}/a\r\nX-Injected: yes")
        metadata = _camera(sapi, "rtsp://169.254.169.254/latest")
        for camera in (outside, injected, metadata):
            r = await _watch(sapi, camera, offer)
            assert r.status_code == 502, r.text
            _clean(r)
            assert _failed_audits(sapi, camera) == [("camera.live.failed", "502")]
        await asyncio.sleep(0.3)
        assert other.requests == []
        assert allowed.requests == []


async def test_the_relay_connects_to_the_checked_address_not_the_name(
    sapi: Api, offer: str, names: dict[str, list[str]], secrets: set[str]
) -> None:
    secrets.add("pw-live-9f3")
    names["cam-pin.test"] = ["127.0.0.1"]
    with probe("127.0.0.1") as cam:
        camera = _camera(sapi, f"rtsp://viewer:pw-live-9f3@cam-pin.test:{cam.port}/cam")
        r = await _watch(sapi, camera, offer)
        assert r.status_code == 502, r.text  # the probe is no RTSP server
        _clean(r, "pw-live-9f3")
        first = cam.requests[0].split(b"\r\n")[0]
    assert first.startswith(b"OPTIONS rtsp://")
    assert f"127.0.0.1:{cam.port}/cam".encode() in first
    assert b"cam-pin.test" not in b"".join(cam.requests)


async def test_a_name_that_resolves_elsewhere_later_is_refused_at_connect_time(
    sapi: Api, offer: str, names: dict[str, list[str]]
) -> None:
    """``localhost`` passes the API's check as 10.0.0.7, then resolves to 127.0.0.1 (refused
    here: this app allows no loopback). ffmpeg resolving the name itself would connect."""
    from tests.web.conftest import running

    settings = sapi.settings.model_copy(update={"camera_allow_cidrs": ["10.0.0.0/8"]})
    with probe("127.0.0.1") as cam:
        names["localhost"] = ["10.0.0.7"]  # the API's lookup; later ones are real
        async with running(settings, feed=sapi.feed, store=sapi.store) as app:
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                h = sapi.auth("a", Role.CITY_ADMIN)
                url = f"rtsp://localhost:{cam.port}/x"
                body = {"name": f"rb-{uuid.uuid4().hex[:6]}", "stream_url": url}
                created = await c.post("/cameras", json=body, headers=h)
                assert created.status_code == 201, created.text
                r = await c.post(
                    f"/cameras/{created.json()['id']}/webrtc",
                    json={"type": "offer", "sdp": offer},
                    headers=sapi.auth("a", Role.VIEWER),
                )
        assert r.status_code == 502, r.text
        await asyncio.sleep(0.3)
        assert cam.requests == []


async def test_bad_offers_answer_in_the_api_words_and_are_audited(sapi: Api) -> None:
    camera = sapi.world.cameras["a"]
    for sdp in ("v=0 garbage garbage", "v=0\r\nm=video x\r\n", "x" * 100, "v=0\r\n" * 3):
        r = await _watch(sapi, camera, sdp)
        assert r.status_code == 422, r.text
        _clean(r)
        assert r.json()["detail"].startswith("invalid SDP offer")
    assert ("camera.live.failed", "422") in _failed_audits(sapi, camera)
