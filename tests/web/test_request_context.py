"""Request ids (``X-Request-ID``) and the log context of a request."""

from __future__ import annotations

import json
import logging
import re

import pytest
from starlette.responses import Response
from starlette.routing import Route

from gtvision import logs
from gtvision.web.auth import Perm, Role
from gtvision.web.common import ok
from gtvision.web.endpoint import Call, endpoint
from tests.web.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the app's clients live in that loop
probe_log = logging.getLogger("gtvision.test.probe")


@endpoint(Perm.EVENTS_READ, "test probe")
async def _probe(call: Call) -> Response:
    probe_log.warning("probe of camera %s", call.path_int("camera_id"))
    return ok({})


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []
        self.setFormatter(logs.JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_request_id_is_returned_kept_when_sane_and_replaced_when_not(api: Api) -> None:
    fresh = (await api.client.get("/healthz")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh)
    other = (await api.client.get("/healthz")).headers["x-request-id"]
    assert other != fresh
    sane = "7F000001:8296_7F00001E:1F90_4F7B0A69_0003:790A"  # HAProxy unique-id
    kept = await api.client.get("/healthz", headers={"X-Request-ID": sane})
    assert kept.headers["x-request-id"] == sane
    for bad in ("a b", "x" * 129, "<script>", "ü"):
        got = await api.client.get("/healthz", headers={b"X-Request-ID": bad.encode("utf-8")})
        assert re.fullmatch(r"[0-9a-f]{32}", got.headers["x-request-id"]), bad
    missing = await api.client.get("/no/such/route")  # errors carry it too
    assert missing.status_code == 404
    assert missing.headers["x-request-id"]


async def test_log_lines_of_a_request_carry_its_id_city_and_camera(api: Api) -> None:
    api.app.router.routes.append(Route("/_probe/{camera_id:int}", _probe, methods=["GET"]))
    capture = _Capture()
    probe_log.addHandler(capture)
    try:
        cam = api.world.cameras["a"]
        headers = {**api.auth("a", Role.VIEWER), "X-Request-ID": "req-1"}
        resp = await api.client.get(f"/_probe/{cam}", headers=headers)
        assert resp.status_code == 200
        await api.client.get("/healthz")  # the next request starts clean
        probe_log.warning("outside any request")
    finally:
        probe_log.removeHandler(capture)
    inside, outside = capture.lines
    assert inside["request_id"] == "req-1"
    assert inside["city_id"] == api.world.cities["a"]
    assert inside["camera_id"] == cam
    assert inside["msg"] == f"probe of camera {cam}"
    assert (outside["request_id"], outside["city_id"], outside["camera_id"]) == (None, None, None)
