"""The flow reader checks a table camera's address when it connects (issue 13 §4, §3).

A TCP probe stands in for the camera. Python's resolver is given fake names (ffmpeg resolves
with libc and never sees them): a reader that connected to the name would reach nothing.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from gtvision.sources.cameras import ENV_CAMERA_BASE_ID, CameraSpec, DbCameras, StaticCameras
from gtvision.sources.rtsp import RtspSource
from tests.rtsp_probe import probe
from tests.sources.test_rtsp_source import Collector


def _spec(url: str, allow: tuple[str, ...] | None) -> CameraSpec:
    return CameraSpec(camera_id=7, city_id=1, name="g", url=url, allow=allow)


def _offline(url: str, allow: tuple[str, ...] | None) -> Any:
    """The first ``camera.offline`` of a reader of ``url`` (the probes are no RTSP servers)."""
    c = Collector(RtspSource(StaticCameras((_spec(url, allow),))))
    try:
        c.poll_until(lambda _: bool(c.events(7, "camera.offline")), timeout=15)
        return c.events(7, "camera.offline")[0]
    finally:
        c.close()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    table: dict[str, str] = {}
    real: Callable[..., Any] = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], int(port or 0)))]
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return table


def test_a_table_camera_outside_the_allowed_networks_is_never_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with probe("127.0.0.2") as cam:
        event = _offline(f"rtsp://op:pw-flow-41@127.0.0.2:{cam.port}/x", ("127.0.0.1/32",))
        time.sleep(0.3)
        assert cam.requests == []
    assert event.reason == "bad_url"
    assert "outside GTV_CAMERA_ALLOW_CIDRS" in event.detail
    assert "pw-flow-41" not in event.detail
    assert "pw-flow-41" not in caplog.text


def test_the_reader_opens_the_checked_address_and_masks_it_in_errors(
    fake_dns: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake_dns["cam-flow.test"] = "127.0.0.1"
    with probe("127.0.0.1") as cam:
        event = _offline(f"rtsp://op:pw-flow-42@cam-flow.test:{cam.port}/cam", ("127.0.0.1/32",))
        first = cam.requests[0].split(b"\r\n")[0]
    assert f"OPTIONS rtsp://127.0.0.1:{cam.port}/cam ".encode() in first + b" "
    assert "pw-flow-42" not in event.detail
    assert "pw-flow-42" not in caplog.text


def test_control_characters_in_a_stored_url_are_refused_before_connecting() -> None:
    with probe("127.0.0.1") as cam:
        event = _offline(f"rtsp://127.0.0.1:{cam.port}/a\r\nX-Injected: yes", None)  # unguarded
        time.sleep(0.3)
        assert cam.requests == []
    assert event.reason == "bad_url"


def test_table_cameras_carry_the_guard_and_extra_cameras_do_not(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        city = conn.execute("INSERT INTO cities (name) VALUES ('guard') RETURNING id").fetchone()
        assert city is not None
        conn.execute(
            "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, 'g', 'rtsp://10.0.0.1/x')",
            (city[0],),
        )
    extra = replace(_spec("rtsp://127.0.0.1/env", None), camera_id=ENV_CAMERA_BASE_ID + 77)
    specs = DbCameras(pg_dsn, [extra], allow=("10.0.0.0/8",)).cameras()
    assert {s.allow for s in specs if s is not extra} == {("10.0.0.0/8",)}
    assert specs[-1] is extra
