"""Fixtures of the deploy-file tests: Debian's exporters and a process runner.

``exporters`` starts Debian's ``prometheus-node-exporter`` and ``prometheus-postgres-exporter``
(the versions the compose/k8s images are pinned to) on free loopback ports, once per session:
the Prometheus test scrapes them and the Grafana test takes the metric names and labels the
dashboards may use from their real output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
#: label names every scraped series gets from Prometheus itself
TARGET_LABELS = frozenset({"job", "instance"})


def _tail(path: Path, lines: int = 6) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def http_get(url: str, timeout: float = 3.0) -> str:
    """Body of a GET (raises on errors)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 40) -> str:
    """Poll ``url`` until it answers 200; fail with the process log when it dies or times out."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode}: {_tail(log)}")
        try:
            return http_get(url)
        except OSError as err:
            last = str(err)
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout}s ({last}): {_tail(log)}")


@dataclass
class Processes:
    """Processes started by one test (or session), all stopped at its end."""

    logs: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Path:
        """Start ``cmd`` with stdout/stderr in ``<logs>/<name>.log``; return the log path."""
        exe = shutil.which(cmd[0]) if "/" not in cmd[0] else cmd[0]
        if exe is None:
            pytest.fail(f"{cmd[0]} is not installed (see .ci/install's Debian packages)")
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen([exe, *cmd[1:]], env=env, stdout=out, stderr=out)
        self.started.append(proc)
        return log

    def last(self) -> subprocess.Popen[bytes]:
        """The process started last."""
        return self.started[-1]

    def stop_all(self) -> None:
        """SIGINT every process, kill what does not stop within 15 s."""
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for proc in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Start processes for one test; they are stopped at its end."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@dataclass(frozen=True)
class Exporter:
    """A running exporter: its address and the series names → label names of its output."""

    address: str
    series: dict[str, frozenset[str]]


_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def parse_series(text: str) -> dict[str, frozenset[str]]:
    """Sample names of an exposition text (exactly as exposed) with the union of their labels.

    (prometheus-client's parser would rename counters without ``_total``; Prometheus does not.)
    """
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"cannot parse exposition line {line!r}"
        out.setdefault(m.group(1), set()).update(_LABEL.findall(m.group(2) or ""))
    return {name: frozenset(labels) for name, labels in out.items()}


@pytest.fixture(scope="session")
def exporters(
    pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Exporter]]:
    """Debian's node and postgres exporters on loopback (``node``, ``postgres``)."""
    procs = Processes(tmp_path_factory.mktemp("exporters"))
    node_port, pg_port = free_port(), free_port()
    node_log = procs.start(
        "node-exporter",
        ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{node_port}"],
    )
    node_proc = procs.last()
    dsn = pg_admin_dsn + ("&" if "?" in pg_admin_dsn else "?") + "sslmode=disable"
    pg_log = procs.start(
        "postgres-exporter",
        ["prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{pg_port}"],
        env={"PATH": os.environ.get("PATH", "/usr/bin"), "DATA_SOURCE_NAME": dsn},
    )
    pg_proc = procs.last()
    try:
        found = {}
        for name, port, proc, log in (
            ("node", node_port, node_proc, node_log),
            ("postgres", pg_port, pg_proc, pg_log),
        ):
            text = wait_http(f"http://127.0.0.1:{port}/metrics", proc, log)
            found[name] = Exporter(f"127.0.0.1:{port}", parse_series(text))
        assert found["postgres"].series.get("pg_up") is not None
        yield found
    finally:
        procs.stop_all()
