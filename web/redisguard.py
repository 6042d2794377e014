"""The web API while Redis is unreachable: each use of Redis fails closed or open, and fast.

Redis holds the sessions (refresh tokens), the rate-limit counters, copies of token
generations, two list caches and the live event feed. PostgreSQL stays the truth for
everything else. Decided per use (``docs/security.md``, "When Redis is down"):

========================================  ===================================================
use                                       while Redis does not answer
========================================  ===================================================
``POST /auth/login``, ``/auth/refresh``,  **closed**: 503 + ``Retry-After`` (a session cannot
``/auth/logout``                          be stored, rotated or ended; the login limits that
                                          make guessing expensive cannot be counted)
``GET /stream/events``                    **closed**: 503 + ``Retry-After`` before the stream
                                          starts (the console reconnects by itself)
API-wide rate limit (middleware)          **open**: the request goes through (logged)
token generations (every token check)     **open**: read from PostgreSQL, the truth
camera / hotlist list caches              **open**: read from PostgreSQL; an invalidation
                                          that fails after a committed write is logged (the
                                          Redis copy may be stale for its TTL, 300 s)
``POST /auth/logout-all``                 **open**: the generation is bumped in PostgreSQL;
                                          other processes read it there while Redis is down
========================================  ===================================================

Fast: the web's client gives up after :data:`REDIS_TIMEOUT_S` (connect, and each command),
and after any failure :class:`RedisGuard` counts Redis as down for :data:`DOWN_S`: closed uses
answer 503 at once and open uses skip Redis, so a hung Redis costs one timeout per
:data:`DOWN_S` per process, not one per request. A Redis error that escapes a route becomes the
same 503 (never a 500), through :func:`redis_unavailable`.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import (
    ClusterError,
    ConnectionError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import TimeoutError as RedisTimeout
from starlette.requests import Request
from starlette.responses import Response

from gtvision.web.problems import problem

log = logging.getLogger(__name__)
REDIS_TIMEOUT_S = 2.0  # connect and command timeout of the web's Redis client
DOWN_S = 2.0  # after a failure, Redis counts as down this long (no new attempt)
RETRY_AFTER_S = 5  # what a 503 tells the client
_LOG_EVERY_S = 30.0

#: Redis-py errors that mean "Redis is unreachable or not serving now" (not a bad command).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,
    RedisTimeout,
    ClusterError,
    TryAgainError,
    ReadOnlyError,
    RedisClusterException,
)

#: Every error a Redis call may raise, for uses that fail open: redis-py's own, and the cluster
#: client's "cannot be connected" when no node answers (``RedisClusterException`` is not a
#: ``RedisError``).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException)


class RedisDown(Exception):
    """Raised by :meth:`RedisGuard.require` while Redis counts as down (answered 503)."""


class RedisGuard:
    """Whether Redis answers, as this process saw it last (a small circuit breaker)."""

    def __init__(self, down_s: float = DOWN_S) -> None:
        self.down_s = down_s
        self._until = 0.0
        self._logged = -_LOG_EVERY_S

    @property
    def down(self) -> bool:
        """Whether a recent failure makes uses skip (open) or refuse (closed) Redis now."""
        return time.monotonic() < self._until

    def failed(self, err: BaseException, use: str) -> None:
        """Record a failure of ``use``; logged at most once per 30 s.

        An outage is one log line, not one per request.
        """
        now = time.monotonic()
        self._until = now + self.down_s
        if now - self._logged >= _LOG_EVERY_S:
            self._logged = now
            log.warning(
                "Redis does not answer (%s: %s) during %s: sessions and live events answer "
                "503, limits and caches are skipped until it does",
                type(err).__name__, err, use,
            )  # fmt: skip

    def require(self, use: str) -> None:
        """Raise :class:`RedisDown` at once while Redis counts as down (closed uses)."""
        if self.down:
            raise RedisDown(use)


def unavailable_problem(path: str = "") -> Response:
    """503 problem: Redis is needed and does not answer."""
    detail = (
        "service unavailable: Redis (sessions, login limits, live events) does not answer; "
        f"retry in {RETRY_AFTER_S} s"
    )
    return problem(503, detail, instance=path, headers={"Retry-After": str(RETRY_AFTER_S)})


async def redis_unavailable(request: Request, exc: Exception) -> Response:
    """Exception handler for :data:`UNAVAILABLE` and :class:`RedisDown`: 503, never a 500."""
    state = getattr(request.app.state, "gtv", None)
    if state is not None and not isinstance(exc, RedisDown):
        state.redis_guard.failed(exc, f"{request.method} {request.url.path}")
    return unavailable_problem(request.url.path)
