"""Test harness on real services, all on loopback.

* PostgreSQL: a fresh database per test session, created and dropped, migrations applied.
* Redis: database index 0 of the local server with a per-session key prefix.
* RabbitMQ: a per-session vhost created and deleted with ``rabbitmqctl``.
* S3: moto's ``ThreadedMotoServer`` on a free port, used through the ``minio`` SDK.

A fixture whose service cannot start fails with a message naming what is missing; nothing is
skipped silently. ``GTV_TEST_PG_ADMIN``, ``GTV_TEST_REDIS`` and ``GTV_TEST_AMQP_HOST`` override
the defaults.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from gtvision.schema import upgrade

PG_ADMIN = os.environ.get("GTV_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("GTV_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_HOST = os.environ.get("GTV_TEST_AMQP_HOST", "127.0.0.1:5672")
SESSION_TAG = uuid.uuid4().hex[:10]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _with_db(dsn: str, dbname: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """DSN of the maintenance database of the local PostgreSQL server."""
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as err:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {err}".strip())
    return PG_ADMIN


def create_database(admin_dsn: str, name: str) -> str:
    """Create database ``name`` with migrations applied; return its DSN."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_db(admin_dsn, name)
    upgrade(dsn)
    return dsn


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` even with open connections."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    name = f"gtv_test_{SESSION_TAG}"
    dsn = create_database(pg_admin_dsn, name)
    yield dsn
    drop_database(pg_admin_dsn, name)


@pytest.fixture
def fresh_pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh, migrated database for one test (for tests that compare whole tables)."""
    name = f"gtv_test_{SESSION_TAG}_{uuid.uuid4().hex[:8]}"
    dsn = create_database(pg_admin_dsn, name)
    yield dsn
    drop_database(pg_admin_dsn, name)


@dataclass(frozen=True)
class RedisTarget:
    """Where a test's Redis keys live."""

    url: str
    prefix: str


@pytest.fixture(scope="session")
def redis_target() -> Iterator[RedisTarget]:
    """The local Redis with a per-session key prefix; keys removed afterwards."""
    client = redis.Redis.from_url(REDIS_BASE, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as err:
        pytest.fail(f"Redis is not reachable at {REDIS_BASE}: {err}")
    prefix = f"gtvtest:{SESSION_TAG}:"
    yield RedisTarget(url=REDIS_BASE, prefix=prefix)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        pytest.fail("rabbitmqctl is not installed: install the Debian package rabbitmq-server")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip()}")


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A dedicated RabbitMQ vhost for this session (guest/guest), deleted afterwards."""
    host, _, port = AMQP_HOST.partition(":")
    try:
        socket.create_connection((host, int(port or 5672)), timeout=3).close()
    except OSError as err:
        pytest.fail(f"RabbitMQ is not reachable at {AMQP_HOST}: {err}")
    vhost = f"gtv_test_{SESSION_TAG}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@{AMQP_HOST}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


@dataclass(frozen=True)
class S3Target:
    """An S3 endpoint (moto on loopback) and a bucket in it."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str


@pytest.fixture(scope="session")
def s3_target() -> Iterator[S3Target]:
    """moto's S3 server on a free loopback port with an empty bucket."""
    from minio import Minio
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as err:
        pytest.fail(f"moto S3 server could not start on 127.0.0.1:{port}: {err}")
    target = S3Target(
        endpoint=f"127.0.0.1:{port}", access_key="testing", secret_key="testing", bucket="gtv-test"
    )
    client = Minio(
        target.endpoint, access_key=target.access_key, secret_key=target.secret_key, secure=False
    )
    client.make_bucket(target.bucket)
    yield target
    server.stop()


@pytest.fixture
def service_env(
    pg_dsn: str, redis_target: RedisTarget, amqp_url: str, s3_target: S3Target
) -> dict[str, str]:
    """Environment for a ``gtvision`` subprocess pointed at every test service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update(
        {
            "GTV_DATABASE_URL": pg_dsn,
            "GTV_REDIS_URL": redis_target.url,
            "GTV_REDIS_PREFIX": redis_target.prefix,
            "GTV_AMQP_URL": amqp_url,
            "GTV_S3_ENDPOINT": s3_target.endpoint,
            "GTV_S3_ACCESS_KEY": s3_target.access_key,
            "GTV_S3_SECRET_KEY": s3_target.secret_key,
            "GTV_S3_BUCKET": s3_target.bucket,
        }
    )
    return env
