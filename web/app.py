"""The Starlette application: route tables, middleware, error handlers, lifespan."""

from __future__ import annotations

import gc
from pathlib import Path

import psycopg
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from gtvision import metrics
from gtvision.config import Settings, load_settings
from gtvision.redis_keys import AsyncRedis
from gtvision.web import (
    routes_admin,
    routes_alerts,
    routes_auth,
    routes_cameras,
    routes_events,
    routes_exports,
    routes_hotlists,
    routes_live,
    routes_ops,
    routes_privacy,
    routes_recordings,
    routes_stream,
    routes_ui,
)
from gtvision.web.hub import FeedReaderLike
from gtvision.web.middleware import (
    BodyLimit,
    ClientAddress,
    RateLimit,
    RequestFrame,
    page_policy,
)
from gtvision.web.pools import pool_exhausted
from gtvision.web.problems import (
    ApiError,
    api_error_handler,
    data_error_handler,
    http_error_handler,
    integrity_error_handler,
    server_error_handler,
)
from gtvision.web.redisguard import UNAVAILABLE, RedisDown, redis_unavailable
from gtvision.web.routing import IndexedRouter
from gtvision.web.state import ObjectStoreLike, lifespan_for

ROUTES: list[BaseRoute] = [
    *routes_ops.ROUTES,
    *routes_auth.ROUTES,
    *routes_admin.ROUTES,
    *routes_cameras.ROUTES,
    *routes_live.ROUTES,
    *routes_events.ROUTES,
    *routes_alerts.ROUTES,
    *routes_hotlists.ROUTES,
    *routes_privacy.ROUTES,
    *routes_recordings.ROUTES,
    *routes_exports.ROUTES,
    *routes_stream.ROUTES,
    *routes_ui.ROUTES,
]


def create_app(
    settings: Settings | None = None,
    *,
    feed: FeedReaderLike | None = None,
    store: ObjectStoreLike | None = None,
    redis_client: AsyncRedis | None = None,
    live_sources: dict[int, Path] | None = None,
) -> Starlette:
    """The API app; ``feed``/``store``/``redis_client`` default to what ``settings`` configure.

    ``live_sources``: camera id → local video file played by the live relay (``gtvision demo``).
    """
    settings = settings or load_settings()
    base_lifespan = lifespan_for(
        settings, feed=feed, store=store, redis_client=redis_client, live_sources=live_sources
    )
    app = Starlette(
        routes=ROUTES,
        middleware=[
            *(
                [Middleware(ClientAddress, trusted=settings.trusted_proxies)]
                if settings.trusted_proxies
                else []
            ),
            Middleware(RequestFrame, page_csp=page_policy(settings)),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            *(
                [Middleware(RateLimit, per_min=settings.rate_limit_per_min)]
                if settings.rate_limit_per_min > 0
                else []
            ),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            psycopg.DataError: data_error_handler,
            psycopg.IntegrityError: integrity_error_handler,
            PoolTimeout: pool_exhausted,
            RedisDown: redis_unavailable,
            **dict.fromkeys(UNAVAILABLE, redis_unavailable),
            HTTPException: http_error_handler,
            Exception: server_error_handler,
        },
        lifespan=base_lifespan,
    )
    # the same routes and lifespan, found by a dictionary lookup for fixed paths
    app.router = IndexedRouter(ROUTES, lifespan=base_lifespan)
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory gtvision.web.app:app_from_env`` (``gtvision serve``).

    Everything loaded so far (modules, the app) is moved out of the garbage collector's reach:
    full collections then scan only request garbage, not the whole process, which keeps
    collector pauses out of the latency tail.
    """
    app = create_app()
    metrics.announce("serve")
    gc.collect()
    gc.freeze()
    return app
