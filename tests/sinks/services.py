"""Private service instances for tests that stop a service (never the shared ones)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from gtvision.schema import upgrade

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class PrivateRabbit:
    """A RabbitMQ node of its own (name, ports, data and log dirs, cookie) on loopback."""

    def __init__(self, base: Path, port: int, dist_port: int) -> None:
        self.base = base
        self.port = port
        self.node = f"gtvtest{port}@localhost"
        base.mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"
        )
        (base / "enabled_plugins").write_text("[].\n")
        (base / "env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(base),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "env.conf"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """AMQP URL of the default vhost."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str, timeout: float = 90) -> str:
        """Run ``rabbitmqctl`` against this node."""
        proc = subprocess.run(
            [str(RMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            msg = f"rabbitmqctl {' '.join(args)} on {self.node} failed: {proc.stderr.strip()}"
            raise RuntimeError(msg)
        return proc.stdout

    def start(self) -> None:
        """Start the node and wait until it accepts connections."""
        log = (self.base / "server.log").open("ab")
        self._proc = subprocess.Popen(
            [str(RMQ_BIN / "rabbitmq-server")], env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                self.ctl("await_startup", "--timeout", "60", timeout=90)
                return
            except RuntimeError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def stop(self) -> None:
        """Stop the whole node (the broker is gone: connections refused)."""
        if self._proc is None:
            return
        try:
            self.ctl("stop", timeout=60)
        finally:
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


class PrivatePostgres:
    """A PostgreSQL 15 cluster of its own (initdb as user postgres, own port and socket dir)."""

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.data = base / "data"
        base.mkdir(parents=True, exist_ok=True)
        shutil.chown(base, "postgres", "postgres")
        self._as_pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def _as_pg(self, *args: str) -> None:
        proc = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            msg = f"{' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}"
            raise RuntimeError(msg)

    @property
    def dsn(self) -> str:
        """DSN of database ``gtv``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/gtv"

    def start(self) -> None:
        """Start the cluster and wait for it."""
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_pg(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.base / "server.log"),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (``fast`` or ``immediate``: crash-like)."""
        self._as_pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create(self) -> str:
        """Create and migrate database ``gtv``; return its DSN."""
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute("CREATE DATABASE gtv")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        upgrade(self.dsn)
        return self.dsn
