"""Test harness on real services, all on loopback.

* PostgreSQL: a fresh database per test session, created and dropped, migrations applied.
* Redis: database index 0 of the local server with a per-session key prefix.
* RabbitMQ: a per-session vhost created and deleted with ``rabbitmqctl``.
* S3: moto's ``ThreadedMotoServer`` on a free port, used through the ``minio`` SDK.
* RTSP: ``tests/rtsp_server.py`` (GStreamer rtsp-server, run by Debian's ``/usr/bin/python3``)
  relays ``rtsp://127.0.0.1:PORT/pub/NAME`` (publish) to ``rtsp://127.0.0.1:PORT/NAME`` (read)
  without re-encoding; Debian ``ffmpeg`` publishes.

RTSP fixture API (stable; sources tests depend on it):

* ``rtsp_server`` (session) / ``own_rtsp_server`` (per test, safe to kill): an
  :class:`RtspServer` with ``.port``, ``.url(name)``, ``.publish_url(name)``, ``.kill()``,
  ``.start()``, ``.restart()`` (same port) and ``.running``.
* ``rtsp_publisher(name, server=None, size="1280x720", rate=15, gop=15)``: starts
  ``ffmpeg -re -f lavfi -i testsrc ... libx264 ultrafast zerolatency -g 15`` publishing NAME and
  waits until NAME is readable; returns a :class:`Publisher` with ``.url`` (read URL),
  ``.kill()``, ``.start()``, ``.restart()``, ``.running``, ``.wait_ready()``.
* ``publish_file(path, name, loop=True, server=None)``: the same for a video file (H.264 is
  copied, anything else is encoded with libx264).
* Every publisher is killed at the end of the test that started it.

Logs: every ``gtvision`` process of the run appends its JSON log lines to one session file
(:data:`SESSION_LOG`; subprocesses get ``GTV_LOG_FILE``, the pytest process a handler at INFO).
At the end :func:`tests.logscan.check_session_log` scans it: a secret in any log line, or a line
that is not a JSON object with the documented keys, fails the run.

A fixture whose service cannot start fails with a message naming what is missing; nothing is
skipped silently. ``GTV_TEST_PG_ADMIN``, ``GTV_TEST_REDIS`` and ``GTV_TEST_AMQP_HOST`` override
the defaults.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from gtvision.schema import upgrade

PG_ADMIN = os.environ.get("GTV_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("GTV_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_HOST = os.environ.get("GTV_TEST_AMQP_HOST", "127.0.0.1:5672")
SESSION_TAG = uuid.uuid4().hex[:10]
SESSION_LOG = Path(tempfile.gettempdir()) / f"gtvision-test-{SESSION_TAG}.log.jsonl"
_REAL_POPEN = subprocess.Popen


class _LoggedPopen(_REAL_POPEN):  # type: ignore[type-arg]
    """``subprocess.Popen`` whose children append their gtvision logs to :data:`SESSION_LOG`."""

    def __init__(self, args: Any, *rest: Any, env: Any = None, **kw: Any) -> None:
        env = dict(os.environ if env is None else env)
        env.setdefault("GTV_LOG_FILE", str(SESSION_LOG))
        super().__init__(args, *rest, env=env, **kw)  # type: ignore[call-overload]


def pytest_configure(config: pytest.Config) -> None:
    """Send every log of the run to the session log (this process and gtvision children)."""
    from gtvision.logs import AppendHandler

    subprocess.Popen = _LoggedPopen  # type: ignore[misc]
    handler = AppendHandler(SESSION_LOG)
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    config.stash[_LOG_HANDLER] = handler


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any log line of it leaked a secret or is not well-formed JSON."""
    from tests.logscan import check_session_log

    handler = session.config.stash.get(_LOG_HANDLER, None)
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()
    subprocess.Popen = _REAL_POPEN  # type: ignore[misc]
    findings = check_session_log(SESSION_LOG)
    if not findings:
        SESSION_LOG.unlink(missing_ok=True)
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"log scan: {len(findings)} problem(s) in {SESSION_LOG} (kept):"]
    lines += [f"  {f}" for f in findings[:50]]
    if reporter is not None:
        reporter.write_sep("=", "log scan failed", red=True)
        for line in lines:
            reporter.write_line(line)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LOG_HANDLER = pytest.StashKey[logging.Handler]()


def _dev_data() -> Path:
    """``../shared/data/alpr-br-dev`` beside the checkout (or beside a worktree's parent)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        found = parent / "shared" / "data" / "alpr-br-dev"
        if found.is_dir():
            return found
    return here.parents[1].parent / "shared" / "data" / "alpr-br-dev"


#: the ALPR dev photos (read from ../shared, never copied into the repo)
DEV_DATA = _dev_data()


def interrupt(proc: subprocess.Popen[Any], timeout: float = 15.0) -> int | None:
    """Ctrl-C a ``gtvision`` subprocess and wait for it (killed after ``timeout``)."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None


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


# ---- RTSP ------------------------------------------------------------------------------------

RTSP_LAUNCHER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"]
_RTSP_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav"
)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def rtsp_status(url: str, timeout: float = 5.0) -> int:
    """Status code of an RTSP DESCRIBE of ``url`` (0 when the server does not answer)."""
    parts = urlsplit(url)
    request = f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
    try:
        with socket.create_connection((parts.hostname, parts.port or 554), timeout=timeout) as s:
            s.sendall(request.encode())
            head = s.recv(256).decode("latin-1")
    except OSError:
        return 0
    fields = head.split(" ", 2)
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0


@dataclass
class RtspServer:
    """One ``tests/rtsp_server.py`` process on ``127.0.0.1:port``.

    ``files``: video files it plays once each at ``/<stem>``, like cameras (see the launcher).
    """

    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    files: tuple[Path, ...] = ()

    def url(self, name: str) -> str:
        """Where readers read NAME."""
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def publish_url(self, name: str) -> str:
        """Where a publisher pushes NAME."""
        return f"rtsp://127.0.0.1:{self.port}/pub/{name}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        """Start the launcher and wait for its ``READY`` line; fail clearly if it cannot."""
        if self.running:
            return
        if not Path(SYSTEM_PYTHON).exists():
            pytest.fail(f"{SYSTEM_PYTHON} is missing: install the Debian packages {_RTSP_PACKAGES}")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    SYSTEM_PYTHON,
                    str(RTSP_LAUNCHER),
                    "--port",
                    str(self.port),
                    *map(str, self.files),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                line = self.proc.stdout.readline().decode(errors="replace")
                break
        if not line.startswith("READY") or rtsp_status(self.url("_probe_")) == 0:
            self.kill()
            pytest.fail(
                f"RTSP test server did not start on 127.0.0.1:{self.port} "
                f"(needs Debian packages {_RTSP_PACKAGES}): {_tail(self.log)}"
            )

    def kill(self) -> None:
        """Kill the server at once (clients see the connection drop)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def restart(self) -> None:
        """Kill and start again on the same port."""
        self.kill()
        self.start()


def _start_rtsp_server(tmp: Path) -> RtspServer:
    port = free_port()
    server = RtspServer(port=port, log=tmp / f"rtsp-{port}.log")
    server.start()
    return server


@pytest.fixture(scope="session")
def rtsp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    """The shared RTSP relay (do not kill it: use ``own_rtsp_server`` for that)."""
    server = _start_rtsp_server(tmp_path_factory.mktemp("rtsp"))
    yield server
    server.kill()


@pytest.fixture
def own_rtsp_server(tmp_path: Path) -> Iterator[RtspServer]:
    """A private RTSP relay for one test, which may kill and restart it."""
    server = _start_rtsp_server(tmp_path)
    yield server
    server.kill()


@dataclass
class Publisher:
    """An ``ffmpeg`` process publishing one NAME to an :class:`RtspServer`."""

    server: RtspServer
    name: str
    input_args: list[str]
    codec_args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The read URL of this stream."""
        return self.server.url(self.name)

    @property
    def running(self) -> bool:
        """Whether ffmpeg is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, wait: bool = True) -> None:
        """Start ffmpeg; with ``wait`` block until the stream is readable."""
        if self.running:
            return
        exe = shutil.which("ffmpeg")
        if exe is None:
            pytest.fail("ffmpeg is not installed: install the Debian package ffmpeg")
        cmd = [
            exe, "-hide_banner", "-nostdin", "-loglevel", "warning", "-re", *self.input_args,
            "-an", *self.codec_args, "-rtsp_transport", "tcp", "-f", "rtsp",
            self.server.publish_url(self.name),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until a reader can DESCRIBE the stream; fail with ffmpeg's log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                pytest.fail(f"ffmpeg publishing {self.name} exited: {_tail(self.log)}")
            if rtsp_status(self.url) == 200:
                return
            time.sleep(0.2)
        pytest.fail(f"stream {self.url} not readable after {timeout}s: {_tail(self.log)}")

    def kill(self) -> None:
        """Kill ffmpeg at once (the server drops the stream and its readers)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self, *, wait: bool = True) -> None:
        """Kill and publish again under the same NAME."""
        self.kill()
        self.start(wait=wait)


def _is_h264(path: Path) -> bool:
    import av

    with av.open(str(path)) as container:
        return bool(container.streams.video) and container.streams.video[0].codec.name == "h264"


@dataclass
class _Publishers:
    """Publishers started by one test, all killed at its end."""

    default_server: RtspServer
    logs: Path
    started: list[Publisher] = field(default_factory=list)

    def launch(
        self, server: RtspServer | None, name: str, inputs: list[str], codec: list[str], wait: bool
    ) -> Publisher:
        pub = Publisher(
            server=server or self.default_server,
            name=name,
            input_args=inputs,
            codec_args=codec,
            log=self.logs / f"publish-{name}.log",
        )
        self.started.append(pub)
        pub.start(wait=wait)
        return pub

    def kill_all(self) -> None:
        for pub in self.started:
            pub.kill()


@pytest.fixture
def rtsp_publisher(rtsp_server: RtspServer, tmp_path: Path) -> Iterator[Callable[..., Publisher]]:
    """Factory: publish ffmpeg's synthetic ``testsrc`` as NAME (1280x720@15, GOP 15)."""
    pubs = _Publishers(rtsp_server, tmp_path)

    def publish(
        name: str,
        server: RtspServer | None = None,
        size: str = "1280x720",
        rate: int = 15,
        gop: int = 15,
        wait: bool = True,
    ) -> Publisher:
        inputs = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]
        return pubs.launch(server, name, inputs, [*X264, "-g", str(gop)], wait)

    yield publish
    pubs.kill_all()


@pytest.fixture
def publish_file(rtsp_server: RtspServer, tmp_path: Path) -> Iterator[Callable[..., Publisher]]:
    """Factory: publish a video file as NAME in real time (looped by default)."""
    pubs = _Publishers(rtsp_server, tmp_path)

    def publish(
        path: str | Path,
        name: str,
        loop: bool = True,
        server: RtspServer | None = None,
        wait: bool = True,
    ) -> Publisher:
        path = Path(path)
        if not path.is_file():
            pytest.fail(f"video file to publish does not exist: {path}")
        codec = ["-c:v", "copy"] if _is_h264(path) else X264
        inputs = [*(["-stream_loop", "-1"] if loop else []), "-i", str(path)]
        return pubs.launch(server, name, inputs, codec, wait)

    yield publish
    pubs.kill_all()
