"""Pure ASGI middleware: body size limit, Prometheus metrics, general rate limit."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gtvision import metrics
from gtvision.web import ratelimit
from gtvision.web.problems import problem

log = logging.getLogger(__name__)
_UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics"})


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


class Metrics:
    """Observe request latency labelled by route template (not raw path) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            key = (scope["method"], template, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = metrics.HTTP_SECONDS.labels(
                    scope["method"], template, str(status)
                )
            child.observe(time.perf_counter() - start)


class RateLimit:
    """Sliding one-minute window in Redis per bearer token (or client IP): 429 + Retry-After.

    ``per_min <= 0`` disables it. Redis errors fail open (logged): availability first.
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
        who = ""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                who = "t" + hashlib.sha256(value).hexdigest()[:32]
                break
        if not who:
            client = scope.get("client")
            who = "ip" + (client[0] if client else "?")
        try:
            verdict = await ratelimit.hit(state.redis, [state.key("rl", who)], self.per_min)
        except RedisError:
            log.warning("rate limit check failed (Redis); letting the request through")
            verdict = ratelimit.Verdict(limited=False, retry_after_s=0)
        if verdict.limited:
            retry = verdict.retry_after_s
            detail = f"more than {self.per_min} requests per minute; retry in {retry} s"
            await problem(429, detail, headers={"Retry-After": str(retry)})(scope, receive, send)
            return
        await self.app(scope, receive, send)
