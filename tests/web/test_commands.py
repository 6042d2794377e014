"""The ``gtvision users create`` and ``gtvision serve`` commands as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from gtvision.web.auth import verify_password
from tests.conftest import RedisTarget, free_port
from tests.web.conftest import PASSWORD


def test_cli_users_create(pg_dsn: str, tmp_path: object) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    env = {"GTV_DATABASE_URL": pg_dsn, "GTV_BOOTSTRAP_PASSWORD": PASSWORD, "PATH": "/usr/bin"}
    cmd = [sys.executable, "-m", "gtvision.cli", "users", "create", name, "--role", "admin"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert f"created user '{name}'" in out.stdout
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    nocity = subprocess.run(
        [*cmd[:-1], "viewer"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert nocity.returncode == 2
    assert "needs --city" in nocity.stderr


def test_cli_users_create_generates_a_password_without_terminal(pg_dsn: str) -> None:
    name = f"gen-{uuid.uuid4().hex[:6]}"
    env = {"GTV_DATABASE_URL": pg_dsn, "PATH": "/usr/bin"}
    cmd = [sys.executable, "-m", "gtvision.cli", "users", "create", name, "--role", "admin"]
    out = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    password = out.stdout.split("generated password (shown once): ")[1].strip()
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE username = %s", (name,))
        stored = row.fetchone()
    assert stored is not None
    assert verify_password(stored[0], password)


def test_gtvision_serve_answers_health_and_readiness(
    pg_dsn: str, redis_target: RedisTarget, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update(
        {
            "GTV_DATABASE_URL": pg_dsn,
            "GTV_REDIS_URL": redis_target.url,
            "GTV_REDIS_PREFIX": redis_target.prefix + "serve:",
            "GTV_DATA_DIR": str(tmp_path),
            "GTV_HTTP_PORT": str(port),
            "GTV_LOG_LEVEL": "WARNING",
        }
    )
    env.pop("PYTHONMALLOC", None)
    proc = subprocess.Popen([sys.executable, "-m", "gtvision.cli", "serve"], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "gtvision serve exited"
                assert time.monotonic() < deadline, "gtvision serve did not start"
                time.sleep(0.2)
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}
        # an empty GTV_JWT_SECRET made serve generate and keep one (mode 0600)
        secret = tmp_path / "jwt_secret"
        assert secret.stat().st_mode & 0o777 == 0o600
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"PYTHONMALLOC=malloc" in environ  # re-executed with the C allocator
    finally:
        proc.terminate()
        proc.wait(20)
