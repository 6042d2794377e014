"""Cost of access-token revocation per request: the same app with and without the check.

The app runs in this process on the local PostgreSQL (scratch database) and Redis (scratch
prefix). Requests go straight into it as ASGI calls (no sockets, no HTTP client), so the
figure is the app's own CPU per request, the part revocation adds to. ``GET /cameras``
(cached list, like ``bench/api.py``) with a bearer token is timed in rounds that alternate
"generation checked" (as deployed) and "not checked" (``AppState.revocation`` unset), so load
drift on a shared machine hits both alike. Each round's figure is this process's CPU time per
request (other jobs delay it but do not add to it); the medians, the cost of the check and the
median of the paired throughput ratios are printed, with the load average.

Bar: the check may cost at most 10 % of a cached request (ratio checked/unchecked >= 0.9);
``bench/api.py`` keeps the end-to-end bar (throughput >= 0.5 of bare Starlette).
Usage: ``python bench/revocation.py [--requests N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import REDIS, scratch_db, seed  # type: ignore[import-not-found]

from gtvision.config import Settings
from gtvision.web.app import create_app
from gtvision.web.auth import TokenIssuer

SECRET = secrets.token_hex(32)


async def _call(app: Any, scope: dict[str, Any]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        nonlocal status
        if msg["type"] == "http.response.start":
            status = msg["status"]

    await app(scope, receive, send)
    return status


async def _round(app: Any, scope: dict[str, Any], n: int) -> float:
    """CPU microseconds of this process per request, over ``n`` sequential calls.

    CPU time, not wall time: other jobs on a shared machine delay this process but do not add
    to its CPU time.
    """
    t0 = time.process_time()
    for _ in range(n):
        if await _call(app, dict(scope)) != 200:
            msg = "GET /cameras did not answer 200"
            raise RuntimeError(msg)
    return (time.process_time() - t0) / n * 1e6


async def run(
    dsn: str, data_dir: str, requests: int, rounds: int
) -> tuple[list[float], list[float]]:
    who = seed(dsn, 20)
    settings = Settings.model_validate(
        {
            "database_url": dsn,
            "redis_url": REDIS,
            "redis_prefix": f"gtvbench:{secrets.token_hex(4)}:",
            "jwt_secret": SECRET,
            "jwt_ttl_s": 3600,
            "rate_limit_per_min": 0,
            "data_dir": data_dir,
        }
    )
    token = TokenIssuer(SECRET.encode(), 3600, 60).issue(who)[0]
    app = create_app(settings)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/cameras", "raw_path": b"/cameras", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080),
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
        "app": app,
    }  # fmt: skip
    checked, unchecked = [], []
    async with app.router.lifespan_context(app):
        state = app.state.gtv
        generations = state.revocation
        await _round(app, scope, 200)  # warm: caches, memo, pools
        for _ in range(rounds):
            state.revocation = generations
            checked.append(await _round(app, scope, requests))
            state.revocation = None
            unchecked.append(await _round(app, scope, requests))
        state.revocation = generations
    return checked, unchecked


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    load_before = os.getloadavg()[0]
    with scratch_db() as dsn, tempfile.TemporaryDirectory(prefix="gtv-bench-rev-") as tmp:
        checked, unchecked = asyncio.run(run(dsn, tmp, a.requests, a.rounds))
    load_after = os.getloadavg()[0]
    on, off = statistics.median(checked), statistics.median(unchecked)
    ratio = statistics.median(u / c for c, u in zip(checked, unchecked, strict=True))
    print(
        f"GET /cameras in-process, {a.rounds} alternating rounds x {a.requests} requests; "
        f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores"
    )
    for label, value, runs in (
        ("generation checked", on, checked),
        ("not checked", off, unchecked),
    ):
        shown = ", ".join(f"{x:.0f}" for x in runs)
        print(f"  {label + ':':<21} {value:.1f} us CPU per request (runs {shown})")
    print(f"  cost of the check:    {on - off:.1f} us CPU per request (difference of medians)")
    verdict = "PASS" if ratio >= 0.9 else "FAIL"
    print(
        f"throughput ratio checked/unchecked (median of pairs): {ratio:.3f} (bar >= 0.9) {verdict}"
    )
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
