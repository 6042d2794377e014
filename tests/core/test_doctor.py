"""``gtvision doctor`` against the real test services and against closed ports."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable

import psycopg

from gtvision.config import load_settings
from gtvision.doctor import Check, run_checks
from tests.conftest import Publisher, S3Target, _with_db, drop_database, free_port


def _doctor(env: dict[str, str]) -> tuple[int, dict[str, list[str]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "gtvision.cli", "doctor", "--timeout", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split() == ["SERVICE", "TARGET", "STATUS", "REASON"], proc.stdout
    rows: dict[str, list[str]] = {}
    for line in lines[1:]:
        rows.setdefault(line.split()[0], []).append(line)
    return proc.returncode, rows


def test_everything_ok(
    service_env: dict[str, str], rtsp_publisher: Callable[..., Publisher], fresh_pg_dsn: str
) -> None:
    pub = rtsp_publisher(f"doctor_{uuid.uuid4().hex[:6]}", size="320x240")
    cam = rtsp_publisher(f"doctor_{uuid.uuid4().hex[:6]}", size="320x240")
    with psycopg.connect(fresh_pg_dsn) as conn:
        city = conn.execute("INSERT INTO cities (name) VALUES ('Doctor') RETURNING id").fetchone()
        assert city is not None
        conn.execute(
            "INSERT INTO cameras (city_id, name, stream_url) VALUES (%s, 'gate', %s)",
            (city[0], cam.url),
        )
        conn.execute(
            "INSERT INTO cameras (city_id, name, stream_url, enabled)"
            " VALUES (%s, 'off', %s, false)",
            (city[0], "rtsp://127.0.0.1:1/disabled"),
        )
    env = {**service_env, "GTV_DATABASE_URL": fresh_pg_dsn, "GTV_RTSP_URLS": pub.url}
    env["GTV_CAMERA_ALLOW_CIDRS"] = "127.0.0.1/32"  # the table camera is on loopback
    code, rows = _doctor(env)
    assert code == 0, rows
    for service in ("PostgreSQL", "Redis", "RabbitMQ", "S3", "RTSP", "camera"):
        assert len(rows[service]) == 1, rows
        assert " OK " in rows[service][0], rows[service]
    assert "320x240" in rows["RTSP"][0]
    assert "gate" in rows["camera"][0]  # the enabled camera only


def test_every_service_down(s3_target: S3Target) -> None:
    closed = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "GTV_DATABASE_URL": f"postgresql://postgres:pgsecret@127.0.0.1:{closed}/x",
        "GTV_REDIS_URL": f"redis://:redissecret@127.0.0.1:{closed}/0",
        "GTV_AMQP_URL": f"amqp://guest:amqpsecret@127.0.0.1:{closed}/",
        "GTV_S3_ENDPOINT": f"127.0.0.1:{closed}",
        "GTV_S3_SECRET_KEY": "s3secret",
        "GTV_RTSP_URLS": f"rtsp://cam:rtspsecret@127.0.0.1:{closed}/a",
    }
    code, rows = _doctor(env)
    assert code == 1
    text = "\n".join(line for group in rows.values() for line in group)
    for service in ("PostgreSQL", "Redis", "RabbitMQ", "S3", "RTSP"):
        (line,) = rows[service]
        assert " FAILED " in line, line
        assert f"127.0.0.1:{closed}" in line
        assert "refused" in line.lower(), line  # the reason, not just "failed"
    for secret in ("pgsecret", "redissecret", "amqpsecret", "s3secret", "rtspsecret"):
        assert secret not in text


def test_unconfigured_services_are_listed_not_failed() -> None:
    code, rows = _doctor({"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert code == 0
    for service in ("PostgreSQL", "Redis", "RabbitMQ", "S3", "RTSP"):
        (line,) = rows[service]
        assert line.endswith("not configured"), line


def test_missing_bucket_and_unmigrated_database(s3_target: S3Target, pg_admin_dsn: str) -> None:
    name = f"gtv_test_doctor_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = load_settings(
            database_url=_with_db(pg_admin_dsn, name),
            s3_endpoint=s3_target.endpoint,
            s3_access_key=s3_target.access_key,
            s3_secret_key=s3_target.secret_key,
            s3_bucket="no-such-bucket",
            rtsp_urls=[],
        )
        checks = {c.service: c for c in run_checks(settings, timeout=3)}
    finally:
        drop_database(pg_admin_dsn, name)
    assert checks["S3"] == Check(
        "S3", f"http://{s3_target.endpoint}/no-such-bucket", "FAILED",
        "bucket 'no-such-bucket' does not exist",
    )  # fmt: skip
    assert checks["PostgreSQL"].failed
    assert "gtvision db upgrade" in checks["PostgreSQL"].reason
