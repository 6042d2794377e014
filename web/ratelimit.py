"""Sliding-window rate limiting in Redis, shared by the login limit and the API-wide limit.

Each key counts hits per one-minute window; the estimate is the current window's count plus the
previous window's count weighted by the part of it still inside the last 60 s. Unlike fixed
windows, a client cannot get twice the limit by straddling a window boundary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of one rate-limit check."""

    limited: bool
    retry_after_s: int


async def hit(
    redis: Redis, bases: Sequence[str], per_min: int, now: float | None = None
) -> Verdict:
    """Count one hit on every key in ``bases``; limited when any estimate exceeds ``per_min``.

    ``now`` (unix seconds) is for tests with a fixed clock.
    """
    now = time.time() if now is None else now
    window = int(now // 60)
    elapsed = now / 60 - window
    async with redis.pipeline(transaction=False) as pipe:
        for base in bases:
            pipe.incr(f"{base}:{window}")
            pipe.expire(f"{base}:{window}", 121)
            pipe.get(f"{base}:{window - 1}")
        replies = await pipe.execute()
    worst = 0.0
    for i in range(len(bases)):
        current, previous = int(replies[3 * i]), int(replies[3 * i + 2] or 0)
        worst = max(worst, current + previous * (1.0 - elapsed))
    retry = max(1, math.ceil((window + 1) * 60 - now))
    return Verdict(limited=worst > per_min, retry_after_s=retry)
