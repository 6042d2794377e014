"""MediaMTX as the video server for many viewers: its viewer tokens, their JWKS, its URLs.

MediaMTX runs with ``authMethod: jwt`` and ``authJWTJWKS`` pointing at gtvision's
``GET /.well-known/jwks.json`` (``deploy/mediamtx.yml``). gtvision signs, with one EC P-256 key
(ES256: short tokens, they may travel in RTSP URLs):

* viewer tokens: ``mediamtx_permissions = [{"action": "read", "path": "gtv-cam<id>"}]`` for one
  camera, ``GTV_MEDIAMTX_TOKEN_TTL_S`` seconds, handed out by ``GET /cameras/{id}/live`` after
  the API's own role, city and audit checks;
* control-API tokens: ``[{"action": "api"}]``, one minute, used by the path sync
  (:mod:`gtvision.sinks.mediamtx`).

Both carry ``iss: gtvision`` and ``aud: mediamtx`` (MediaMTX's ``authJWTIssuer`` /
``authJWTAudience``). The key is ``GTV_MEDIAMTX_JWT_KEY`` (PEM), or one generated on first use and
kept in ``GTV_DATA_DIR/mediamtx_jwt_key.pem`` (mode 0600): fine for one web host; several hosts
must share the setting, since MediaMTX fetches the JWKS from one URL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gtvision.config import ConfigError, Settings
from gtvision.sinks.mediamtx import MediaMtxApi, MediaMtxError, PathSync, camera_of, path_name

log = logging.getLogger(__name__)
ALGORITHM = "ES256"
ISSUER = "gtvision"
AUDIENCE = "mediamtx"
CLAIM = "mediamtx_permissions"
KEY_FILE = "mediamtx_jwt_key.pem"
API_TOKEN_TTL_S = 60


def enabled(settings: Settings) -> bool:
    """Whether the MediaMTX integration is configured (URLs to hand out or paths to sync)."""
    return bool(settings.mediamtx_public_url or settings.mediamtx_api)


def _key_from_settings(settings: Settings) -> ec.EllipticCurvePrivateKey:
    given = settings.mediamtx_jwt_key.get_secret_value().strip()
    if given:
        pem = given.encode()
    else:
        path = settings.data_dir / KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = ec.generate_private_key(ec.SECP256R1())
            data = fresh.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:  # O_EXCL: of several workers starting at once, one writes, the others read
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            except FileExistsError:
                time.sleep(0.1)
        pem = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as err:
        msg = f"invalid configuration: GTV_MEDIAMTX_JWT_KEY='***': not a PEM private key ({err})"
        raise ConfigError(msg) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        msg = "invalid configuration: GTV_MEDIAMTX_JWT_KEY='***': expected an EC P-256 key"
        raise ConfigError(msg)
    return key


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (the key id)."""
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class MediaMtxAuth:
    """Signs MediaMTX tokens and publishes the key that checks them."""

    key: ec.EllipticCurvePrivateKey
    kid: str
    viewer_ttl_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaMtxAuth:
        """The key of ``settings`` (generated and persisted when not given)."""
        key = _key_from_settings(settings)
        public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return cls(key, _thumbprint(public), settings.mediamtx_token_ttl_s)

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set MediaMTX loads (``authJWTJWKS``)."""
        public = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def sign(self, permissions: list[dict[str, str]], subject: str, ttl_s: int) -> tuple[str, int]:
        """A token granting ``permissions``; returns it and its expiry (Unix seconds)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
            CLAIM: permissions,
        }
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, now + ttl_s

    def viewer_token(self, user_id: int, camera_id: int) -> tuple[str, int]:
        """Read access to one camera's path for ``viewer_ttl_s`` seconds."""
        perms = [{"action": "read", "path": path_name(camera_id)}]
        return self.sign(perms, f"user:{user_id}", self.viewer_ttl_s)

    def api_token(self) -> str:
        """Access to MediaMTX's control API for a minute (the path sync)."""
        return self.sign([{"action": "api"}], "gtvision:path-sync", API_TOKEN_TTL_S)[0]


def player_urls(settings: Settings, camera_id: int) -> dict[str, str] | None:
    """``path``, ``whep_url`` and ``hls_url`` of a camera, ``None`` without a public URL."""
    base = settings.mediamtx_public_url.rstrip("/")
    if not base:
        return None
    path = path_name(camera_id)
    hls = (settings.mediamtx_hls_url or base).rstrip("/")
    return {"path": path, "whep_url": f"{base}/{path}/whep", "hls_url": f"{hls}/{path}/index.m3u8"}


class OnlineCameras:
    """Cameras whose MediaMTX path is online (its source delivers), asked at most every 5 s.

    A MediaMTX error answers ``{}`` (nothing known to be online), logged once per outage:
    camera health must not fail because the video server is away.
    """

    TTL_S = 5.0

    def __init__(self, api: MediaMtxApi) -> None:
        self.api = api
        self._at = float("-inf")
        self._known: dict[int, datetime | None] = {}
        self._failing = False
        self._lock = asyncio.Lock()

    async def get(self) -> dict[int, datetime | None]:
        """Camera id -> since when MediaMTX receives its video (``None``: not said)."""
        async with self._lock:  # one question in flight; the others wait for its answer
            if time.monotonic() - self._at < self.TTL_S:
                return self._known
            try:
                paths = await self.api.online()
            except (httpx.HTTPError, MediaMtxError, ValueError) as err:
                if not self._failing:
                    log.warning("MediaMTX path states unavailable: %s", type(err).__name__)
                self._failing, paths = True, {}
            else:
                self._failing = False
            self._known = {
                cam: _when(since) for name, since in paths.items() if (cam := camera_of(name))
            }
            self._at = time.monotonic()
            return self._known


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class MediaMtx:
    """The integration in one web process.

    Token signer; with the control API configured, the path sync and the paths' states.
    """

    auth: MediaMtxAuth
    sync: PathSync | None
    online: OnlineCameras | None = None


@contextlib.asynccontextmanager
async def mediamtx_for(settings: Settings) -> AsyncIterator[MediaMtx | None]:
    """The integration for the app's lifespan (``None`` when off); runs the path sync."""
    if not enabled(settings):
        yield None
        return
    auth = MediaMtxAuth.from_settings(settings)
    if not settings.mediamtx_api:
        yield MediaMtx(auth, None)
        return
    api = MediaMtxApi(settings.mediamtx_api, auth.api_token)
    sync = PathSync(
        settings.database_url,
        api,
        interval_s=settings.mediamtx_sync_s,
        allow=settings.camera_allow_cidrs,
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(sync.run(stop))
    try:
        yield MediaMtx(auth, sync, OnlineCameras(api))
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
        await api.aclose()
