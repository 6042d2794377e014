"""Web API fixtures: the app on real PostgreSQL/Redis, seeded with two cities.

``api`` runs the app in-process (httpx ASGITransport, lifespan entered); ``live_api`` runs it
under a real uvicorn on a free loopback port in the test's event loop (needed for SSE, which
ASGITransport buffers).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from gtvision.config import Settings
from gtvision.events import Alert, HotlistMatch, PlatePass
from gtvision.sinks.feed import RedisFeed
from gtvision.sinks.objects import LocalObjectStore
from gtvision.sinks.postgres import EventWriter, open_pool
from gtvision.web.app import create_app
from gtvision.web.auth import Principal, Role, TokenIssuer, hash_password
from gtvision.web.clientip import server_options
from tests.conftest import RedisTarget, free_port

SECRET = "test-secret-" + "x" * 60
PASSWORD = "correct horse battery"
ROLES = [r for r in Role if r is not Role.ADMIN]


@dataclass
class World:
    """Two seeded cities ``a`` and ``b`` with one of everything each, plus an admin."""

    tag: str
    cities: dict[str, int] = field(default_factory=dict)
    users: dict[tuple[str, Role], Principal] = field(default_factory=dict)
    admin: Principal | None = None
    cameras: dict[str, int] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)
    alerts: dict[str, str] = field(default_factory=dict)
    hotlists: dict[str, int] = field(default_factory=dict)
    plates: dict[str, str] = field(default_factory=dict)


def make_settings(pg_dsn: str, redis_target: RedisTarget, tmp: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": pg_dsn,
        "redis_url": redis_target.url,
        "redis_prefix": f"{redis_target.prefix}{uuid.uuid4().hex[:6]}:",
        "jwt_secret": SECRET,
        "data_dir": tmp,
        "rate_limit_per_min": 0,
        "login_rate_limit_per_min": 0,
        "login_ip_rate_limit_per_min": 0,
        "login_user_failures_per_hour": 0,
        "camera_allow_cidrs": ["10.0.0.0/8", "192.168.0.0/16"],
        "sse_ping_s": 1.0,
        "db_pool_size": 4,
        "public_base_url": "http://testserver",
    }
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def seed(dsn: str, writer: EventWriter | None = None) -> World:
    """Insert the two cities and their resources; events go through the sinks' writer."""
    tag = uuid.uuid4().hex[:8]
    world = World(tag)
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        pw = hash_password(PASSWORD)
        row = conn.execute(
            "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, 'admin') "
            "RETURNING id",
            (f"admin-{tag}", pw),
        ).fetchone()
        assert row
        world.admin = Principal(row[0], f"admin-{tag}", Role.ADMIN, None)
        for name in ("a", "b"):
            (cid,) = conn.execute(  # type: ignore[misc]
                "INSERT INTO cities (name) VALUES (%s) RETURNING id", (f"{name}-{tag}",)
            ).fetchone()
            world.cities[name] = cid
            for role in ROLES:
                uname = f"{role.value}-{name}-{tag}"
                (uid,) = conn.execute(  # type: ignore[misc]
                    "INSERT INTO users (username, password_hash, role, city_id) "
                    "VALUES (%s, %s, %s, %s) RETURNING id",
                    (uname, pw, role.value, cid),
                ).fetchone()
                world.users[(name, role)] = Principal(uid, uname, role, cid)
            (cam,) = conn.execute(  # type: ignore[misc]
                "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, %s, %s) RETURNING id",
                (cid, f"cam-{name}", f"rtsp://user:s3cret-{name}@10.1.2.3/stream"),
            ).fetchone()
            world.cameras[name] = cam
            (hot,) = conn.execute(  # type: ignore[misc]
                "INSERT INTO hotlists (city_id, pattern, kind, reason) "
                "VALUES (%s, %s, 'exact', %s) RETURNING id",
                (cid, f"HOT{name.upper()}123", f"secret-reason-{name}"),
            ).fetchone()
            world.hotlists[name] = hot
            plate = f"{name.upper()}BC{tag[:4].upper()}"
            world.plates[name] = plate
            passed = PlatePass(
                city_id=cid,
                camera_id=cam,
                ts=now,
                plate=plate,
                confidence=0.9,
                first_seen=now - timedelta(seconds=2),
                last_seen=now,
                reads=3,
                crop_key=f"{cid}/{cam}/x/{name}.jpg",
            )
            alert = Alert(
                city_id=cid,
                camera_id=cam,
                ts=now,
                pass_id=passed.id,
                plate=plate,
                match=HotlistMatch(entry_id=hot, pattern=plate, kind="exact"),
            )
            conn.execute(
                "INSERT INTO recordings (id, city_id, camera_id, started_at, ended_at, "
                "object_key, bytes) VALUES (%s, %s, %s, %s, %s, %s, 1000)",
                (f"rec-{name}-{tag}", cid, cam, now - timedelta(seconds=60), now,
                 f"{cid}/{cam}/rec/{now:%Y/%m/%d}/rec-{name}-{tag}.mp4"),
            )  # fmt: skip
            world.events[name] = passed.id
            world.alerts[name] = alert.id
            if writer is not None:
                writer.write([passed, alert])
    return world


@dataclass
class Api:
    """An app under test with its client and seeded world."""

    client: httpx.AsyncClient
    settings: Settings
    world: World
    issuer: TokenIssuer
    feed: RedisFeed
    store: LocalObjectStore
    writer: EventWriter
    app: Any = None

    def live_relay(self) -> Any:
        """The app's live-video relay (made on its first ``/cameras/{id}/webrtc`` request)."""
        return self.app.state.gtv.live

    def token(self, city: str | None, role: Role) -> str:
        who = self.world.admin if role is Role.ADMIN else self.world.users[(city or "a", role)]
        assert who is not None
        return self.issuer.issue(who)[0]

    def auth(self, city: str | None, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(city, role)}"}


@pytest.fixture(scope="module")
def web_redis(redis_target: RedisTarget) -> tuple[RedisTarget, bool]:
    """Redis of the web tests and whether it is a cluster (a test module may override this)."""
    return redis_target, False


@pytest.fixture(scope="module")
def web_backend(
    request: pytest.FixtureRequest,
    pg_dsn: str,
    web_redis: tuple[RedisTarget, bool],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, RedisFeed, LocalObjectStore, EventWriter, World]]:
    """Settings, feed, store, writer and seeded world of a test module.

    A module may set ``CAMERA_ALLOW_CIDRS`` (e.g. to let the live relay read a loopback RTSP
    server, which the address guard refuses unless a loopback network is listed).
    """
    tmp = tmp_path_factory.mktemp("web")
    target, cluster = web_redis
    kw: dict[str, Any] = {"redis_cluster": cluster}
    if hasattr(request.module, "CAMERA_ALLOW_CIDRS"):
        kw["camera_allow_cidrs"] = request.module.CAMERA_ALLOW_CIDRS
    settings = make_settings(pg_dsn, target, tmp, **kw)
    feed = RedisFeed(settings.redis_url, settings.redis_prefix, cluster=cluster)
    store = LocalObjectStore(tmp / "objects", b"store-secret", "http://testserver")
    pool = open_pool(pg_dsn)
    writer = EventWriter(pool, store, feed)
    world = seed(pg_dsn, writer)
    yield settings, feed, store, writer, world
    pool.close()
    feed.close()


@contextlib.asynccontextmanager
async def running(settings: Settings, **kw: Any) -> AsyncIterator[Any]:
    app = create_app(settings, **kw)
    async with app.router.lifespan_context(app):
        yield app


@contextlib.asynccontextmanager
async def api_over(
    settings: Settings,
    feed: RedisFeed,
    store: LocalObjectStore,
    writer: EventWriter,
    world: World,
) -> AsyncIterator[Api]:
    """The app on ``settings`` (``running``) with an in-process client from 127.0.0.1."""
    async with running(settings, feed=feed, store=store) as app:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            issuer = TokenIssuer(SECRET.encode(), settings.jwt_ttl_s, settings.stream_token_ttl_s)
            yield Api(c, settings, world, issuer, feed, store, writer, app)


@pytest.fixture
async def api(
    web_backend: tuple[Settings, RedisFeed, LocalObjectStore, EventWriter, World],
) -> AsyncIterator[Api]:
    settings, feed, store, writer, world = web_backend
    async with api_over(settings, feed, store, writer, world) as api:
        yield api
    await feed.aclose()


@contextlib.asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on loopback (``port`` or a free one) in this loop; yield URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **server_options()
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
