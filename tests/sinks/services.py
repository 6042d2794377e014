"""Private service instances for tests that stop a service (never the shared ones)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from gtvision.schema import upgrade

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def rabbit_node(port: int) -> str:
    """Erlang node name of the private RabbitMQ node listening on ``port``."""
    return f"gtvtest{port}@localhost"


class PrivateRabbit:
    """A RabbitMQ node of its own (name, ports, data and log dirs, cookie) on loopback.

    ``peers``: node names of a cluster to form at first start (classic-config peer discovery;
    every node of it gets the same ``cookie``).
    """

    def __init__(
        self,
        base: Path,
        port: int,
        dist_port: int,
        peers: list[str] | None = None,
        cookie: str = "",
    ) -> None:
        self.base = base
        self.port = port
        self.node = rabbit_node(port)
        base.mkdir(parents=True, exist_ok=True)
        conf = f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"
        if peers:
            conf += "cluster_formation.peer_discovery_backend = classic_config\n"
            conf += "".join(
                f"cluster_formation.classic_config.nodes.{i} = {name}\n"
                for i, name in enumerate(peers, 1)
            )
        (base / "rabbitmq.conf").write_text(conf)
        if cookie:  # rabbitmqctl reads it too (HOME is this directory)
            (base / ".erlang.cookie").write_text(cookie)
            (base / ".erlang.cookie").chmod(0o400)
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
        self.launch()
        self.wait_started()

    def launch(self) -> None:
        """Start the node's process (without waiting: nodes of a cluster boot together)."""
        with (self.base / "server.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [str(RMQ_BIN / "rabbitmq-server")], env=self.env, stdout=log, stderr=log
            )

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM (a crash: no clean leave from the cluster)."""
        if self._proc is None:  # not started by us, or already gone
            return
        # the VM's pid (the launcher script may have exec'd it or wait for it)
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((self.base / "pid").read_text().strip()), signal.SIGKILL)
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=30)
        self._proc = None

    def wait_started(self) -> None:
        """Wait until the node has booted (and joined its cluster)."""
        assert self._proc is not None
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
    """A PostgreSQL 15 cluster of its own (initdb as user postgres, own port and socket dir).

    ``primary``: instead of initdb, clone that running cluster with ``pg_basebackup -R`` (a
    streaming hot-standby replica once started).
    """

    def __init__(self, base: Path, port: int, primary: PrivatePostgres | None = None) -> None:
        self.base = base
        self.port = port
        self.data = base / "data"
        base.mkdir(parents=True, exist_ok=True)
        shutil.chown(base, "postgres", "postgres")
        if primary is None:
            self._as_pg(
                str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
            )
        else:
            self._as_pg(
                str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
            )  # fmt: skip

    def sql(self, query: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement (autocommit) and return its rows."""
        dsn = f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(query.encode())
            return cur.fetchall() if cur.description else []

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


class PrivateRedisCluster:
    """A Redis Cluster of its own: ``len(ports)`` masters (and ``replicas`` per master) on loopback.

    ``ports`` are (client port, cluster bus port) pairs; every node keeps its files in ``base``.
    """

    def __init__(self, base: Path, ports: list[tuple[int, int]], replicas: int = 0) -> None:
        self.base = base
        self.ports = ports
        self.replicas = replicas
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """URL listing every node as a seed (a cluster client discovers the others)."""
        return "redis://" + ",".join(f"127.0.0.1:{port}" for port, _ in self.ports) + "/0"

    def start_node(self, port: int, bus: int) -> None:
        """Start (or restart) one node with its saved cluster configuration."""
        work = self.base / str(port)
        work.mkdir(parents=True, exist_ok=True)
        args = [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
            "--cluster-port", str(bus), "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "1500", "--cluster-replica-validity-factor", "0",
            "--save", "", "--appendonly", "no",
            "--dir", str(work), "--logfile", str(work / "redis.log"),
        ]  # fmt: skip
        self.procs[port] = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self._answers(port):
            if self.procs[port].poll() is not None or time.monotonic() > deadline:
                msg = f"redis-server on 127.0.0.1:{port} did not start: see {work / 'redis.log'}"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def _answers(self, port: int) -> bool:
        return self._cli(port, "ping").strip() == "PONG"

    @staticmethod
    def _cli(port: int, *args: str) -> str:
        return subprocess.run(
            ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=False
        ).stdout

    def cluster_info(self, port: int, section: str = "cluster") -> dict[str, str]:
        """``CLUSTER INFO`` (or ``INFO <section>``) of one node as a dict."""
        out = (
            self._cli(port, "cluster", "info")
            if section == "cluster"
            else self._cli(port, "info", section)
        )
        return dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)

    def masters(self) -> dict[int, str]:
        """Live masters that serve slots: port -> slot ranges (from a live node's view)."""
        live = [p for p, proc in self.procs.items() if proc.poll() is None]
        out: dict[int, str] = {}
        for line in self._cli(live[0], "cluster", "nodes").splitlines():
            fields = line.split()
            if len(fields) > 8 and "master" in fields[2] and "fail" not in fields[2]:
                out[int(fields[1].split(":")[1].split("@")[0])] = " ".join(fields[8:])
        return out

    def start(self) -> None:
        """Start every node, join them with ``redis-cli --cluster create``, wait for state ok."""
        for port, bus in self.ports:
            self.start_node(port, bus)
        nodes = [f"127.0.0.1:{port}" for port, _ in self.ports]
        proc = subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas",
             str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            msg = f"redis-cli --cluster create failed: {proc.stdout[-500:]} {proc.stderr[-500:]}"
            raise RuntimeError(msg)
        self.wait_ok()

    def wait_ok(self, timeout: float = 30) -> None:
        """Wait until every running node reports ``cluster_state:ok``, every slot is served by
        a live master and every replica's link to its master is up."""
        deadline = time.monotonic() + timeout
        while True:
            live = [p for p, proc in self.procs.items() if proc.poll() is None]
            infos = [self.cluster_info(p) for p in live]
            repl = [self.cluster_info(p, "replication") for p in live]
            if (
                all(i.get("cluster_state") == "ok" for i in infos)
                and len(self.masters()) == len(self.ports) // (1 + self.replicas)
                and all(r.get("master_link_status", "up") == "up" for r in repl)
            ):
                return
            if time.monotonic() > deadline:
                msg = f"Redis Cluster on ports {live} not ok after {timeout}s"
                raise RuntimeError(msg)
            time.sleep(0.2)

    def wait_failover(self, dead: int, timeout: float = 30) -> None:
        """Wait until a replica has taken over the slots of the dead master ``dead``."""
        deadline = time.monotonic() + timeout
        while dead in self.masters():
            if time.monotonic() > deadline:
                msg = f"no replica took over from the Redis master on port {dead} in {timeout}s"
                raise RuntimeError(msg)
            time.sleep(0.2)
        self.wait_ok(max(1.0, deadline - time.monotonic()))

    def kill(self, port: int) -> None:
        """SIGKILL one node."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(timeout=10)

    def stop(self) -> None:
        """Kill every node."""
        for port in list(self.procs):
            self.kill(port)


class PrivateRedis:
    """One Redis of its own on a loopback port (no persistence), for tests that stop or
    freeze it. Never the machine's Redis."""

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again) and wait until it answers PING."""
        args = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.base),
            "--logfile", str(self.base / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while PrivateRedisCluster._cli(self.port, "ping").strip() != "PONG":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                msg = f"redis-server on 127.0.0.1:{self.port} did not start: see {self.base}"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (or SIGCONT) it: connections open, nothing answers (a hung server)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        """SIGKILL it (connections refused from now on)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
