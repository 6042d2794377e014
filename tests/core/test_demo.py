"""``gtvision demo`` end to end: a subprocess on a fresh data dir, its SSE feed, Ctrl-C.

One demo process serves the whole module (starting it costs the first-run work: initdb, the
sample video, model load). The order of the tests is the order of a user's session.
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from gtvision.demo import CAMERA_NAME, CITY_NAME
from gtvision.sources.synthetic import HOTLIST_PLATE, SAMPLE_CARS

from .demo_process import DemoProcess, sse_events, start_demo

pytestmark = pytest.mark.slow
FIRST_EVENTS_S = 90.0


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoProcess]:
    # Not tmp_path: pytest prunes old numbered base dirs, and a concurrent pytest run would
    # delete the data directory under the running PostgreSQL.
    with tempfile.TemporaryDirectory(prefix="gtv-demo-test-") as tmp:
        running = start_demo(Path(tmp) / "data")
        yield running
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(10)
        for proc in running.postgres_processes():
            proc.kill()


def test_plate_pass_and_hotlist_alert_on_sse(demo: DemoProcess) -> None:
    demo.wait_for_line(r"^ready in", 120)
    plates = {c.plate for c in SAMPLE_CARS}
    with httpx.Client(base_url=demo.base_url, timeout=10) as client:
        token = demo.login(client)
        me = client.get("/cities", headers={"Authorization": f"Bearer {token}"}).json()
        cities = me if isinstance(me, list) else me.get("items", [])
        city_id = next(c["id"] for c in cities if c["name"] == CITY_NAME)
        remaining = FIRST_EVENTS_S - (time.monotonic() - demo.started)
        passes: list[str] = []
        alerts: list[str] = []
        for kind, payload in sse_events(client, token, city_id, remaining):
            if kind == "lpr.detected":
                passes.append(str(payload["plate"]))
            elif kind == "alert.triggered":
                alerts.append(str(payload["plate"]))
            if plates & set(passes) and HOTLIST_PLATE in alerts:
                break
    elapsed = time.monotonic() - demo.started
    assert plates & set(passes), (
        f"no sample plate within {elapsed:.0f} s: passes {passes}\n{demo.output()}"
    )
    assert HOTLIST_PLATE in alerts, f"no alert for {HOTLIST_PLATE} in {elapsed:.0f} s: {alerts}"
    assert set(passes) <= plates, f"passes with plates not in the video: {passes}"
    dsn = f"postgresql://postgres:@/gtvision?host={demo.data_dir / 'pg'}"
    with psycopg.connect(dsn) as conn:  # one statement, one snapshot
        row = conn.execute(
            "SELECT (SELECT count(*) FROM events),"
            " (SELECT count(*) FROM outbox WHERE sent_at IS NULL)"
        ).fetchone()
    assert row is not None
    stored, queued = row
    assert stored >= len(passes) + len(alerts)
    assert queued == stored, "relay off: every stored event waits in the outbox"


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_console_shows_the_demo_alert(demo: DemoProcess) -> None:
    """The operator console of the demo: log in, the hotlist alert with its crop, its detail."""
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    demo.wait_for_line(r"^ready in", 120)
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("console", lambda m: errors.extend([m.text] if m.type == "error" else []))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo.base_url + "/")
            page.fill("#login-user", "admin")
            page.fill("#login-password", demo.password())
            page.click("#login button[type=submit]")
            expect(page.locator("[data-testid=conn]")).to_have_text("ao vivo", timeout=15_000)
            page.get_by_role("tab", name="Todos").click()
            row = page.locator("[data-testid=alert-row]", has_text=HOTLIST_PLATE[:3]).first
            expect(row).to_be_visible(timeout=90_000)
            row.locator("a").click()
            crop = page.locator("[data-testid=event-crop]")
            expect(crop).to_be_visible(timeout=10_000)
            page.wait_for_function(
                "document.querySelector('[data-testid=event-crop]').naturalWidth > 0"
            )
            expect(page.locator("[data-testid=match]")).to_contain_text(HOTLIST_PLATE[:3])
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / "console-demo.png"))
        finally:
            browser.close()
    assert not errors, errors


def test_sample_camera_is_watchable(demo: DemoProcess) -> None:
    """The demo camera is enabled and the relay answers with the sample's H.264 passed through.

    No media flows: the offer carries no ICE candidate (the demo's own candidates are its host
    addresses, and tests stay on loopback); that the relay opened the sample and chose H.264
    passthrough is in the answer. Frames over loopback: tests/web/test_live.py.
    """
    import asyncio

    from aiortc import RTCConfiguration, RTCPeerConnection

    async def offer() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        sdp: str = (await pc.createOffer()).sdp
        await pc.close()
        return sdp

    demo.wait_for_line(r"^ready in", 120)
    with httpx.Client(base_url=demo.base_url, timeout=20) as client:
        auth = {"Authorization": f"Bearer {demo.login(client)}"}
        cams = client.get("/cameras", headers=auth).json()["items"]
        cam = next(c for c in cams if c["name"] == CAMERA_NAME)
        assert cam["enabled"] is True
        live = client.get(f"/cameras/{cam['id']}/live", headers=auth)
        assert live.status_code == 200, live.text
        assert live.json()["webrtc_url"] == f"/cameras/{cam['id']}/webrtc"
        r = client.post(
            live.json()["webrtc_url"],
            json={"type": "offer", "sdp": asyncio.run(offer())},
            headers=auth,
        )
    assert r.status_code == 200, r.text
    video = r.json()["sdp"].split("m=video", 1)[1]
    assert "H264/90000" in video
    assert "VP8" not in video  # passthrough: the answer offers only the camera's codec


def test_sigint_stops_everything(demo: DemoProcess) -> None:
    assert demo.postgres_processes(), "the embedded PostgreSQL should be running before Ctrl-C"
    began = time.monotonic()
    code = demo.interrupt(timeout_s=10)
    assert code == 0, demo.output()
    assert time.monotonic() - began < 10
    left = demo.postgres_processes()
    assert not left, f"postgres processes left after Ctrl-C: {[p.pid for p in left]}"
    assert "stopped." in demo.output()


def test_second_run_reuses_data(demo: DemoProcess) -> None:
    again = start_demo(demo.data_dir)
    try:
        again.wait_for_line(r"^ready in", 60)
        out = again.output()
        assert "password '" not in out, "the admin password is printed only on the first run"
        assert "generated in" not in out, "the sample video is reused"
        with httpx.Client(base_url=again.base_url, timeout=10) as client:
            client.post(
                "/auth/login", json={"username": "admin", "password": demo.password()}
            ).raise_for_status()
    finally:
        assert again.interrupt(timeout_s=10) == 0
    assert not again.postgres_processes()


def test_video_cached_under_data_dir(demo: DemoProcess) -> None:
    videos = list((demo.data_dir / "samples").glob("*.mp4"))
    assert len(videos) == 1, videos
    assert videos[0].stat().st_size > 100_000
    assert Path(demo.data_dir / "pg" / "PG_VERSION").exists()


def test_port_in_use_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = start_demo(tmp_path / "data", port)
        code = busy.proc.wait(30)
    assert code == 1
    assert f"127.0.0.1:{port} is already in use" in busy.output()
    assert not (tmp_path / "data" / "pg").exists(), "nothing is started before the port check"
