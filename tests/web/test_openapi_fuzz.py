"""schemathesis against ``/openapi.json`` of a live server: a bounded run, 0 responses 5xx."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from gtvision.sinks.feed import RedisFeed
from gtvision.sinks.objects import LocalObjectStore
from gtvision.web.app import create_app
from gtvision.web.auth import Role, TokenIssuer
from tests.conftest import RedisTarget, free_port
from tests.web.conftest import SECRET, make_settings, seed

EXAMPLES_PER_OPERATION = 12
SKIP = {
    "GET /stream/events",  # never-ending SSE response; covered by test_stream.py
    # opens the camera's stream (seconds per call): 502 when the camera delivers no picture
    # is its contract, not a server error; covered by test_live.py
    "GET /cameras/{camera_id}/snapshot",
}


@pytest.fixture
def live_server(fresh_pg_dsn: str, redis_target: RedisTarget, tmp_path: Path) -> Iterator[str]:
    cfg = make_settings(fresh_pg_dsn, redis_target, tmp_path)
    app = create_app(
        cfg,
        feed=RedisFeed(cfg.redis_url, cfg.redis_prefix),
        store=LocalObjectStore(tmp_path / "objects", b"k", "http://127.0.0.1"),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


def test_fuzzed_requests_never_get_a_5xx(live_server: str, fresh_pg_dsn: str) -> None:
    world = seed(fresh_pg_dsn)
    issuer = TokenIssuer(SECRET.encode(), 900, 60)
    tokens = {
        "admin": issuer.issue(world.admin)[0],  # type: ignore[arg-type]
        "city_admin": issuer.issue(world.users[("a", Role.CITY_ADMIN)])[0],
    }
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 30
    tested = 0
    for op in operations:
        label = f"{op.method.upper()} {op.path}"
        if label in SKIP:
            continue
        for who, token in tokens.items():
            run = _fuzz(op, live_server, who, token, label)
            run()
        tested += 1
    assert tested == len(operations) - len(SKIP)


def _fuzz(op: Any, base: str, who: str, token: str, label: str) -> Any:
    @given(case=op.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Any, Any]) -> None:  # type: ignore[type-arg]
        headers = {"Authorization": f"Bearer {token}"}
        response = case.call(base_url=base, headers=headers, timeout=20)
        assert response.status_code < 500, (who, label, response.text[:500])
        case.validate_response(response, checks=[not_a_server_error], headers=headers)

    return run
