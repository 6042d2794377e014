"""Sliding-window rate limiting in Redis, shared by the login limits and the API-wide limit.

Each key counts hits per window (one minute unless told); the estimate is the current window's
count plus the previous window's count weighted by the part of it still inside the last window
length. Unlike fixed windows, a client cannot get twice the limit by straddling a boundary.

Key names: :func:`base` gives ``<prefix>{rl:<kind>:<who>}``; the window number is appended as
``:<n>``. The braces are a Redis Cluster hash tag, so the windows of one base share a slot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gtvision.redis_keys import AsyncRedis, rkey


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of one rate-limit check."""

    limited: bool
    retry_after_s: int


def base(prefix: str, kind: str, who: str) -> str:
    """The key base of one limited identity (``who``) of one limit (``kind``)."""
    return rkey(prefix, f"rl:{kind}:{who}")


def _window(now: float | None, window_s: int) -> tuple[float, int, float]:
    now = time.time() if now is None else now
    window = int(now // window_s)
    return now, window, now / window_s - window


async def hit(
    redis: AsyncRedis,
    bases: Sequence[str],
    per_window: int,
    now: float | None = None,
    *,
    window_s: int = 60,
) -> Verdict:
    """Count one hit on every key in ``bases``; limited when any estimate exceeds the limit.

    ``now`` (unix seconds) is for tests with a fixed clock.
    """
    now, window, elapsed = _window(now, window_s)
    async with redis.pipeline(transaction=False) as pipe:
        for b in bases:
            pipe.incr(f"{b}:{window}")
            pipe.expire(f"{b}:{window}", 2 * window_s + 1)
            pipe.get(f"{b}:{window - 1}")
        replies = await pipe.execute()
    worst = 0.0
    for i in range(len(bases)):
        current, previous = int(replies[3 * i]), int(replies[3 * i + 2] or 0)
        worst = max(worst, current + previous * (1.0 - elapsed))
    retry = max(1, math.ceil((window + 1) * window_s - now))
    return Verdict(limited=worst > per_window, retry_after_s=retry)


async def peek(
    redis: AsyncRedis,
    key_base: str,
    per_window: int,
    now: float | None = None,
    *,
    window_s: int = 60,
) -> Verdict:
    """Whether ``key_base`` is already at its limit, without counting a hit."""
    now, window, elapsed = _window(now, window_s)
    current, previous = await redis.mget(f"{key_base}:{window}", f"{key_base}:{window - 1}")
    estimate = int(current or 0) + int(previous or 0) * (1.0 - elapsed)
    retry = max(1, math.ceil((window + 1) * window_s - now))
    return Verdict(limited=estimate >= per_window, retry_after_s=retry)
