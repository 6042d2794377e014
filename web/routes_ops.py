"""Operations endpoints: health, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging

from starlette.responses import Response
from starlette.routing import Route

from gtvision import metrics as prom
from gtvision.web.common import ok
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.openapi import build_openapi
from gtvision.web.problems import problem

log = logging.getLogger(__name__)


@endpoint(None, "Liveness")
async def healthz(call: Call) -> Response:
    """The process answers."""
    return ok({"status": "ok"})


def _down(service: str, err: BaseException) -> str:
    """A dependency's failure in the API's words (the error itself goes to the log, masked)."""
    log.warning("readiness: %s down: %s: %s", service, type(err).__name__, err)
    return "down: no answer within 2 s" if isinstance(err, TimeoutError) else "down: unreachable"


@endpoint(None, "Readiness (PostgreSQL and Redis)", responses={503: "a dependency is down"})
async def readyz(call: Call) -> Response:
    """200 when PostgreSQL and Redis answer within 2 s, else 503 naming the failing ones.

    ``replica`` (with ``GTV_DATABASE_READ_URL``) is informative only: without the replica the
    instance still serves, reading from the primary.
    """
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with call.state.pool.connection() as conn:
                await conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as err:
        checks["postgres"] = _down("postgres", err)
    try:
        async with asyncio.timeout(2):
            await call.state.redis.ping()
        checks["redis"] = "ok"
    except Exception as err:
        checks["redis"] = _down("redis", err)
    extra: dict[str, object] = {"checks": checks}
    if call.state.reads is not None and (replica := await call.state.reads.status()):
        extra["replica"] = replica
    if all(v == "ok" for v in checks.values()):
        return ok({"status": "ready", **extra})
    bad = ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
    return problem(503, f"not ready: {bad}", extra=extra)


@endpoint(None, "Prometheus metrics", media_type="text/plain")
async def metrics(call: Call) -> Response:
    """Every metric of this process, or of all workers of ``gtvision serve``."""
    return Response(prom.render(), media_type=prom.CONTENT_TYPE)


@endpoint(None, "This OpenAPI document")
async def openapi(call: Call) -> Response:
    """OpenAPI 3.1 of every route."""
    return ok(build_openapi(call.request.app.routes))


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
