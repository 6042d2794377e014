"""MediaMTX integration against the stand-in (``tests/web/mediamtx_standin.py``).

The app runs under uvicorn on loopback with ``GTV_MEDIAMTX_API`` and ``GTV_MEDIAMTX_PUBLIC_URL``
pointing at the stand-in, which fetches the app's JWKS over HTTP, checks every control-API
request against MediaMTX's published OpenAPI spec and every token as MediaMTX's JWT method does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import REGISTRY

from gtvision.config import Settings
from gtvision.sinks.mediamtx import path_name
from gtvision.sources.streamurl import UnsafeUrl, pin
from gtvision.web.app import create_app
from gtvision.web.auth import Role, TokenIssuer
from gtvision.web.mediamtx import MediaMtxAuth
from tests.conftest import free_port
from tests.web.conftest import SECRET, Api, World, serve
from tests.web.mediamtx_standin import MediaMtxStandIn, Spec

ROOT = Path(__file__).resolve().parents[2]
in_loop = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Live:
    """The app, its HTTP client and the stand-in."""

    client: httpx.AsyncClient
    app: Any
    mtx: MediaMtxStandIn
    world: World
    settings: Settings
    issuer: TokenIssuer

    def auth(self, city: str | None, role: Role) -> dict[str, str]:
        who = self.world.admin if role is Role.ADMIN else self.world.users[(city or "a", role)]
        assert who is not None
        return {"Authorization": f"Bearer {self.issuer.issue(who)[0]}"}

    @property
    def sync(self) -> Any:
        return self.app.state.gtv.mediamtx.sync


@pytest.fixture
async def live(web_backend: tuple[Any, ...], tmp_path: Any) -> AsyncIterator[Live]:
    settings, feed, store, _, world = web_backend
    port = free_port()
    mtx = MediaMtxStandIn(free_port(), f"http://127.0.0.1:{port}/.well-known/jwks.json")
    mtx.paths["other-path"] = {"name": "other-path", "source": "publisher"}  # not ours: kept
    mtx.paths["gtv-cam999999"] = {"name": "gtv-cam999999", "source": "rtsp://10.9.9.9/x"}
    mtx.start()
    settings = settings.model_copy(
        update={
            "mediamtx_api": mtx.url,
            "mediamtx_public_url": mtx.url,
            "mediamtx_sync_s": 30.0,
            "data_dir": tmp_path,
        }
    )
    app = create_app(settings, feed=feed, store=store)
    async with serve(app, port) as base, httpx.AsyncClient(base_url=base) as client:
        issuer = TokenIssuer(SECRET.encode(), settings.jwt_ttl_s, settings.stream_token_ttl_s)
        yield Live(client, app, mtx, world, settings, issuer)
    mtx.stop()


async def _until(check: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


def _enabled_cameras(dsn: str, allow: list[str]) -> dict[str, str]:
    """Path -> source MediaMTX must have: the enabled cameras whose address the guard allows,
    at their checked address (other test modules leave loopback cameras in this database)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, stream_url FROM cameras WHERE enabled").fetchall()
    out = {}
    for cam, url in rows:
        with contextlib.suppress(UnsafeUrl):
            out[path_name(cam)] = pin(url, allow)
    return out


def _ours(mtx: MediaMtxStandIn) -> dict[str, str]:
    return {k: v["source"] for k, v in mtx.paths.items() if k.startswith("gtv-cam")}


@in_loop
async def test_paths_follow_the_cameras_and_survive_a_mediamtx_outage(live: Live) -> None:
    dsn = live.settings.database_url
    assert await _until(
        lambda: _ours(live.mtx) == _enabled_cameras(dsn, live.settings.camera_allow_cidrs), 15
    ), live.mtx.violations
    assert "other-path" in live.mtx.paths  # a path gtvision does not manage is left alone
    assert all(
        v.get("rtspTransport") == "tcp" for k, v in live.mtx.paths.items() if k != "other-path"
    )
    admin = live.auth("a", Role.CITY_ADMIN)
    r = await live.client.post(
        "/cameras",
        json={"name": f"mtx-{uuid.uuid4().hex[:6]}", "stream_url": "rtsp://u:pw@10.1.2.50/live"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    new = r.json()["id"]
    assert await _until(lambda: path_name(new) in live.mtx.paths, 5)  # notified, not polled
    assert live.mtx.paths[path_name(new)]["source"] == "rtsp://u:pw@10.1.2.50/live"

    live.mtx.stop()  # MediaMTX is down: camera changes still succeed and are not lost
    r = await live.client.patch(
        f"/cameras/{new}", json={"stream_url": "rtsp://u:pw@10.1.2.51/other"}, headers=admin
    )
    assert r.status_code == 200, r.text
    cam_a = live.world.cameras["a"]
    r = await live.client.patch(f"/cameras/{cam_a}", json={"enabled": False}, headers=admin)
    assert r.status_code == 200, r.text
    await asyncio.sleep(1.0)
    live.mtx.start()
    expected = _enabled_cameras(dsn, live.settings.camera_allow_cidrs)
    assert await _until(lambda: _ours(live.mtx) == expected, 20), _ours(live.mtx)
    assert live.mtx.paths[path_name(new)]["source"] == "rtsp://u:pw@10.1.2.51/other"
    assert path_name(cam_a) not in live.mtx.paths
    r = await live.client.delete(f"/cameras/{new}", headers=admin)
    assert r.status_code == 204
    assert await _until(lambda: path_name(new) not in live.mtx.paths, 5)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE cameras SET enabled = true WHERE id = %s", (cam_a,))
    assert await _until(lambda: path_name(cam_a) in live.mtx.paths, 5)
    assert live.mtx.violations == []
    # every control call carried a valid api token (MediaMTX may not reach the JWKS before
    # the app listens: the sync retries, as it would with MediaMTX)
    assert [r for r in live.mtx.refused if not r.startswith("JWKS unavailable")] == []
    assert ("POST", "/v3/auth/jwks/refresh") in live.mtx.calls
    assert (REGISTRY.get_sample_value("gtvision_mediamtx_sync_total", {"outcome": "ok"}) or 0) > 0
    deleted = {"kind": "delete"}
    assert (REGISTRY.get_sample_value("gtvision_mediamtx_path_changes_total", deleted) or 0) >= 3


@in_loop
async def test_live_hands_out_a_token_mediamtx_accepts_for_that_camera_only(live: Live) -> None:
    cam_a, cam_b = live.world.cameras["a"], live.world.cameras["b"]
    r = await live.client.get(f"/cameras/{cam_a}/live", headers=live.auth("a", Role.VIEWER))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["webrtc_url"] == f"/cameras/{cam_a}/webrtc"
    media = body["mediamtx"]
    assert media["path"] == path_name(cam_a)
    assert media["whep_url"] == f"{live.mtx.url}/{path_name(cam_a)}/whep"
    assert media["hls_url"] == f"{live.mtx.url}/{path_name(cam_a)}/index.m3u8"
    assert media["expires_in"] == live.settings.mediamtx_token_ttl_s
    bearer = {"Authorization": f"Bearer {media['token']}"}
    async with httpx.AsyncClient() as player:  # what a browser does with the answer
        whep = await player.post(media["whep_url"], content=b"v=0", headers=bearer)
        hls = await player.get(media["hls_url"], headers=bearer)
        other = await player.post(f"{live.mtx.url}/{path_name(cam_b)}/whep", headers=bearer)
        bare = await player.get(media["hls_url"])
    assert (whep.status_code, hls.status_code) == (201, 200)
    assert (other.status_code, bare.status_code) == (401, 401)
    token = media["token"]
    assert live.mtx.authenticate(token, "publish", path_name(cam_a)) is not None
    assert live.mtx.authenticate(token, "api") is not None
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["mediamtx_permissions"] == [{"action": "read", "path": path_name(cam_a)}]
    assert claims["exp"] - claims["iat"] == live.settings.mediamtx_token_ttl_s
    forged = MediaMtxAuth(ec.generate_private_key(ec.SECP256R1()), claims["iss"], 60)
    forged_token = forged.viewer_token(1, cam_a)[0]  # right claims, another key
    assert live.mtx.authenticate(forged_token, "read", path_name(cam_a)) is not None
    # roles and cities still apply before any token is made
    r = await live.client.get(f"/cameras/{cam_b}/live", headers=live.auth("a", Role.VIEWER))
    assert r.status_code == 404
    with psycopg.connect(live.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT detail->>'via' FROM audit_log WHERE action = 'camera.live' AND target = %s",
            (f"camera:{cam_a}",),
        ).fetchall()
    assert ("mediamtx",) in rows
    # camera health shows what MediaMTX receives (a camera no flow reads is online)
    # MediaMTX lists runtime state only for configured paths: wait for the first sync (it runs
    # in the background from start; a loaded machine with many cameras in the table is slower)
    assert await _until(lambda: path_name(cam_a) in live.mtx.paths, 15), sorted(live.mtx.paths)
    live.mtx.online[path_name(cam_a)] = "2026-05-01T08:00:00Z"
    live.app.state.gtv.mediamtx.online._at = float("-inf")  # an earlier answer is cached 5 s
    status = await live.client.get("/cameras/status", headers=live.auth("a", Role.VIEWER))
    assert status.status_code == 200, status.text
    mine = {i["camera_id"]: i for i in status.json()["items"]}
    assert mine[cam_a]["live"] == {"via": "mediamtx", "since": "2026-05-01T08:00:00Z"}
    live.mtx.stop()  # MediaMTX away: health still answers, nothing claimed live
    live.app.state.gtv.mediamtx.online._at = float("-inf")
    status = await live.client.get("/cameras/status", headers=live.auth("a", Role.VIEWER))
    assert status.status_code == 200
    assert {i["camera_id"]: i["live"] for i in status.json()["items"]}[cam_a] is None
    live.mtx.start()
    assert live.mtx.violations == []


@in_loop
async def test_jwks_is_off_without_mediamtx(api: Api) -> None:
    r = await api.client.get("/.well-known/jwks.json")
    assert r.status_code == 404
    cam = api.world.cameras["a"]
    r = await api.client.get(f"/cameras/{cam}/live", headers=api.auth("a", Role.OPERATOR))
    assert r.status_code == 200
    assert r.json()["mediamtx"] is None


def test_deploy_config_uses_only_keys_mediamtx_knows() -> None:
    spec = Spec()
    cfg = yaml.safe_load((ROOT / "deploy" / "mediamtx.yml").read_text())
    top = {k: v for k, v in cfg.items() if k not in ("paths", "pathDefaults")}
    schemas = spec.doc["components"]["schemas"]
    assert spec.errors({"$ref": "#/components/schemas/GlobalConf"}, top, strict=True) == []
    assert (
        spec.errors({"$ref": "#/components/schemas/PathConf"}, cfg["pathDefaults"], strict=True)
        == []
    )
    deprecated = [k for k in top if schemas["GlobalConf"]["properties"][k].get("deprecated")]
    assert deprecated == []
    assert cfg["authMethod"] == "jwt"
    assert cfg["authJWTJWKS"].endswith("/.well-known/jwks.json")
    assert cfg["authJWTClaimKey"] == "mediamtx_permissions"
    assert (cfg["authJWTIssuer"], cfg["authJWTAudience"]) == ("gtvision", "mediamtx")
