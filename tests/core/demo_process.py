"""A ``gtvision demo`` subprocess for end-to-end tests: start, read its console, stop.

Shared by the SSE test and the Playwright test (and ``bench/demo.py``). Everything runs on
loopback with a private data directory; the model cache is the user's (``gtvision models pull``
fills it once).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

PASSWORD_LINE = re.compile(r"login\s+user 'admin', password '([^']+)'")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DemoProcess:
    """A running ``gtvision demo`` and everything it printed so far."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[str]
    started: float
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        """The console so far."""
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The first console line matching ``pattern``; fails on timeout or early exit."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := rx.search(line):
                    return m
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader drain
                msg = (
                    f"demo exited with {self.proc.returncode} before {pattern!r}:\n{self.output()}"
                )
                raise AssertionError(msg)
            time.sleep(0.1)
        msg = f"no line matching {pattern!r} within {timeout_s} s:\n{self.output()}"
        raise AssertionError(msg)

    def password(self) -> str:
        """The admin password the demo printed."""
        return self.wait_for_line(PASSWORD_LINE.pattern, 120).group(1)

    def login(self, client: httpx.Client) -> str:
        """An access token for ``admin``."""
        r = client.post("/auth/login", json={"username": "admin", "password": self.password()})
        r.raise_for_status()
        return str(r.json()["access_token"])

    def interrupt(self, timeout_s: float = 10.0) -> int:
        """Send SIGINT (Ctrl-C) and wait; the exit code (kills and fails after ``timeout_s``)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            msg = f"demo did not exit within {timeout_s} s of SIGINT:\n{self.output()}"
            raise AssertionError(msg) from None

    def postgres_processes(self) -> list[psutil.Process]:
        """Live ``postgres`` processes whose command line names this data directory."""
        found = []
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(p.info.get("cmdline") or [])
            if p.info.get("name") == "postgres" and str(self.data_dir) in cmd:
                found.append(p)
        return found


def demo_env(data_dir: Path, port: int) -> dict[str, str]:
    """Environment of a demo on nothing configured: no GTV_* but the data dir and port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update({"GTV_DATA_DIR": str(data_dir), "GTV_HTTP_PORT": str(port)})
    env.pop("XDG_RUNTIME_DIR", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_demo(data_dir: Path, port: int | None = None, *args: str) -> DemoProcess:
    """Start ``gtvision demo`` (the venv's script) with its console captured."""
    port = port or free_port()
    exe = Path(sys.executable).with_name("gtvision")
    proc = subprocess.Popen(
        [str(exe), "demo", *args],
        env=demo_env(data_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    demo = DemoProcess(data_dir=data_dir, port=port, proc=proc, started=time.monotonic())
    demo._reader = threading.Thread(target=demo._read, daemon=True)
    demo._reader.start()
    return demo


def sse_events(
    client: httpx.Client, token: str, city_id: int, timeout_s: float
) -> Iterator[tuple[str, dict[str, object]]]:
    """``(event type, payload)`` of ``/stream/events`` until ``timeout_s`` passes."""
    stream_token = client.post(
        "/auth/stream-token", headers={"Authorization": f"Bearer {token}"}
    ).json()["token"]
    params = {"token": stream_token, "city_id": str(city_id)}
    deadline = time.monotonic() + timeout_s
    timeout = httpx.Timeout(10.0, read=30.0)
    with client.stream("GET", "/stream/events", params=params, timeout=timeout) as resp:
        resp.raise_for_status()
        kind, data = "", ""
        lines = resp.iter_lines()
        while time.monotonic() < deadline:
            try:
                line = next(lines)
            except (StopIteration, httpx.ReadTimeout):
                return
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data += line.partition(":")[2].strip()
            elif not line and data:
                yield kind, json.loads(data)
                kind, data = "", ""
