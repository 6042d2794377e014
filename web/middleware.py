"""Pure ASGI middleware: client address, request frame (id, headers, latency), limits."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gtvision import logs, metrics
from gtvision.config import Settings
from gtvision.web import ratelimit
from gtvision.web.auth import AuthError, bearer_token
from gtvision.web.clientip import TrustedProxies, limit_key, parse_ip
from gtvision.web.problems import problem
from gtvision.web.redisguard import REDIS_ERRORS

log = logging.getLogger(__name__)
_UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics"})
_ANY_TOKEN = frozenset({"access", "stream"})


class ClientAddress:
    """Set ``scope["client"]`` (and ``scheme``) from forwarded headers of trusted proxies.

    See :mod:`gtvision.web.clientip`; added only when ``GTV_TRUSTED_PROXIES`` is set.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        client = scope.get("client")
        if (
            scope["type"] not in ("http", "websocket")
            or not client
            or not self.proxies.trusts(parse_ip(client[0]))
        ):
            await self.app(scope, receive, send)
            return
        forwarded, proto = [], b""
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded.append(value)
            elif name == b"x-forwarded-proto":
                proto = value.strip().lower()
        scope = dict(scope)
        scope["client"] = (self.proxies.client(client[0], forwarded), client[1])
        if proto in (b"http", b"https"):
            secure = proto == b"https"
            if scope["type"] == "websocket":
                scope["scheme"] = "wss" if secure else "ws"
            else:
                scope["scheme"] = "https" if secure else "http"
        await self.app(scope, receive, send)


_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def new_request_id() -> str:
    """32 random hex digits for a request without a sane ``X-Request-ID``.

    A label for logs, not a secret: drawn from the ``random`` module (seeded from the OS and
    re-seeded in forked children) rather than ``uuid4``, whose ``os.urandom`` call took 2-12 us
    per request on this machine's virtualised ``getrandom``.
    """
    return f"{random.getrandbits(128):032x}"


_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=31536000"


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, or ``""`` when it is not a plain http(s) origin."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if _ORIGIN.fullmatch(origin) and "@" not in parts.netloc else ""


def page_policy(settings: Settings) -> str:
    """The one Content-Security-Policy of the operator console, its files and other pages.

    No inline script or style anywhere (``'self'`` only). Images and media may also come from
    the object store (presigned crop, clip and recording URLs on ``GTV_S3_ENDPOINT``), and
    live video from MediaMTX (``GTV_MEDIAMTX_PUBLIC_URL``: WHEP and LL-HLS requests).
    """
    store = ""
    if settings.s3_endpoint:
        store = _origin(f"{'https' if settings.s3_secure else 'http'}://{settings.s3_endpoint}")
    media = _origin(settings.mediamtx_public_url) if settings.mediamtx_public_url else ""

    def srcs(*words: str) -> str:
        return " ".join(w for w in words if w)

    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            srcs("img-src 'self' data: blob:", store),
            srcs("media-src 'self' blob:", store, media),
            srcs("connect-src 'self'", media),
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        )
    )


class RequestFrame:
    """One layer around every HTTP request: request id and log context, security headers, latency.

    (Three middlewares before: now one coroutine layer and one send wrapper instead of three.)

    * **Request id**: a sane incoming ``X-Request-ID`` (1–128 of ``A-Za-z0-9_.:-``, e.g. set by
      HAProxy) is kept, anything else is replaced by a random one; it is in the log context and
      the ``X-Request-ID`` response header. City/camera/event ids set later in the request
      (``@endpoint``) are cleared when it ends, so keep-alive requests never inherit them.
    * **Security headers** (``docs/security.md``), on every response: ``X-Content-Type-Options:
      nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY``; HTML, ``/`` and
      ``/static/*``: :func:`page_policy` as CSP, everything else the API policy
      (``default-src 'none'``) and ``Cache-Control: no-store`` unless the route set its own;
      ``Strict-Transport-Security`` on https requests (``ClientAddress``, outside this layer,
      sets the scheme from a trusted proxy).
    * **Latency** per route template (not raw path), method and status.
    """

    def __init__(self, app: ASGIApp, page_csp: str) -> None:
        self.app = app
        common = (
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        )
        self.page = [*common, (b"content-security-policy", page_csp.encode())]
        self.api = [*common, (b"content-security-policy", API_POLICY.encode())]
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                text = value.decode("latin-1")
                rid = text if _REQUEST_ID.fullmatch(text) else ""
                break
        rid = rid or new_request_id()
        raw = rid.encode()
        path: str = scope["path"]
        page_path = path == "/" or path.startswith("/static/")
        https = scope.get("scheme") == "https"
        status = 500

        async def framed(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
                headers = list(msg.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                html = any(
                    n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers
                )
                page = page_path or html
                headers.extend(self.page if page else self.api)
                if not page and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if https:
                    headers.append((b"strict-transport-security", HSTS.encode()))
                headers.append((b"x-request-id", raw))
                msg = {**msg, "headers": headers}
            await send(msg)

        with logs.bound(request_id=rid, city_id=None, camera_id=None, event_id=None):
            try:
                await self.app(scope, receive, framed)
            finally:
                self._observe(scope, status, time.perf_counter() - start)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        key = (scope["method"], template, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metrics.HTTP_SECONDS.labels(
                scope["method"], template, str(status)
            )
        child.observe(seconds)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answer 413 to bodies above ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request body larger than {self.max_bytes} bytes"
        has_body = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                has_body = value != b"0"
                if value.isdigit() and int(value) > self.max_bytes:
                    await problem(413, detail)(scope, receive, send)
                    return
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:  # nothing to count (GETs): skip the wrappers
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return msg

        async def tracking(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited, tracking)
        except _TooLarge:
            if not started:
                await problem(413, detail)(scope, receive, send)


class RateLimit:
    """Sliding one-minute window in Redis per caller: 429 + Retry-After.

    The caller is the user of a valid token (header ``Authorization: Bearer``, any spelling of
    the scheme, or a stream token in ``?token=``), else the client address (IPv6 by /64): junk
    or missing tokens all count against their address. ``per_min <= 0`` disables it. Redis
    errors fail open (logged once per outage, ``web/redisguard.py``): availability first.
    """

    def __init__(self, app: ASGIApp, per_min: int) -> None:
        self.app = app
        self.per_min = per_min

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http" or self.per_min <= 0 or scope["path"] in _UNLIMITED:
            await self.app(scope, receive, send)
            return
        state = getattr(scope["app"].state, "gtv", None)
        if state is None:
            await self.app(scope, receive, send)
            return
        verdict = ratelimit.Verdict(limited=False, retry_after_s=0)
        if not state.redis_guard.down:  # fail open while Redis does not answer (redisguard)
            key = ratelimit.base(state.settings.redis_prefix, "api", caller(scope, state.tokens))
            try:
                verdict = await ratelimit.hit(state.redis, [key], self.per_min)
            except REDIS_ERRORS as err:
                state.redis_guard.failed(err, "the API rate limit (requests let through)")
        if verdict.limited:
            retry = verdict.retry_after_s
            detail = f"more than {self.per_min} requests per minute; retry in {retry} s"
            await problem(429, detail, headers={"Retry-After": str(retry)})(scope, receive, send)
            return
        await self.app(scope, receive, send)


def caller(scope: Scope, tokens: Any) -> str:
    """``u<user id>`` for a request bearing a valid token, else ``ip:<address or /64>``."""
    token = bearer_token(scope)
    if not token and b"token=" in scope.get("query_string", b""):
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        token = query.get("token", "")
    if token:
        try:
            return f"u{tokens.verify(token, _ANY_TOKEN).user_id}"
        except AuthError:
            pass
    client = scope.get("client")
    return "ip:" + limit_key(client[0] if client else "")
