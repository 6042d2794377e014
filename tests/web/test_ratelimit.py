from __future__ import annotations

import uuid

from redis.asyncio import Redis

from gtvision.web import ratelimit
from tests.conftest import RedisTarget

T0 = 1_800_000_000.0 - (1_800_000_000.0 % 60)  # start of a minute window


async def test_straddling_a_window_boundary_does_not_double_the_limit(
    redis_target: RedisTarget,
) -> None:
    redis = Redis.from_url(redis_target.url)
    base = f"{redis_target.prefix}rl-test:{uuid.uuid4().hex}"
    try:
        before = [await ratelimit.hit(redis, [base], 5, now=T0 + 59.5) for _ in range(5)]
        assert not any(v.limited for v in before)
        after = await ratelimit.hit(redis, [base], 5, now=T0 + 60.5)
        assert after.limited  # a fixed window would have reset here
        assert 1 <= after.retry_after_s <= 60
        # a minute later the previous window has almost no weight left
        later = await ratelimit.hit(redis, [base], 5, now=T0 + 119.5)
        assert not later.limited
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{base}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_any_key_over_the_limit_limits(redis_target: RedisTarget) -> None:
    redis = Redis.from_url(redis_target.url)
    a = f"{redis_target.prefix}rl-test:{uuid.uuid4().hex}"
    b = f"{redis_target.prefix}rl-test:{uuid.uuid4().hex}"
    try:
        for _ in range(3):
            await ratelimit.hit(redis, [a], 3, now=T0 + 10)
        verdict = await ratelimit.hit(redis, [b, a], 3, now=T0 + 11)
        assert verdict.limited
    finally:
        for base in (a, b):
            keys = [k async for k in redis.scan_iter(match=f"{base}*")]
            if keys:
                await redis.delete(*keys)
        await redis.aclose()
