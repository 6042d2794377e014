"""The web tier as deployed, on loopback: `gtvision serve` instances behind HAProxy.

Used by ``tests/deploy/test_haproxy.py`` and ``bench/api.py`` (which puts the repository root on
``sys.path``). HAProxy runs Debian's binary on ``deploy/haproxy.cfg`` itself, parametrised by
environment variables exactly as compose/k8s do; TLS uses a self-signed certificate made here.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"


def self_signed(work: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (HAProxy PEM with key, CA file)."""
    key, cert = work / "tls.key", work / "tls.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=gtvision-test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    pem = work / "haproxy.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    pem.chmod(0o600)
    return pem, cert


def client_tls(ca: Path) -> ssl.SSLContext:
    """A client context that trusts only the test certificate."""
    return ssl.create_default_context(cafile=str(ca))


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Instance:
    """One ``gtvision serve`` process on ``127.0.0.1:port``."""

    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL, reached directly (not through HAProxy)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process (do not wait)."""
        cmd = [sys.executable, "-m", "gtvision.cli", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=out, cwd=ROOT)

    def wait_ready(self, timeout: float = 60) -> None:
        """Until ``/readyz`` answers 200; RuntimeError with the log when it does not."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                msg = f"gtvision serve on port {self.port} not ready: {_tail(self.log)}"
                raise RuntimeError(msg)
            time.sleep(0.2)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process (SIGKILL: no clean shutdown) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class HAProxy:
    """Debian's haproxy on ``deploy/haproxy.cfg`` with ``GTV_HAPROXY_*`` from ``env``."""

    https_port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """HTTPS base URL of the balancer."""
        return f"https://127.0.0.1:{self.https_port}"

    def start(self, timeout: float = 15) -> None:
        """Check the configuration, start haproxy in the foreground and wait for its port."""
        env = {**os.environ, **self.env}
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(HAPROXY_CFG)], env=env, capture_output=True, text=True
        )
        if check.returncode != 0:
            msg = f"deploy/haproxy.cfg refused: {check.stdout[-800:]} {check.stderr[-800:]}"
            raise RuntimeError(msg)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", str(HAPROXY_CFG)], env=env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + timeout
        while not _listening(self.https_port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                msg = f"haproxy did not listen on {self.https_port}: {_tail(self.log)}"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop haproxy."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def haproxy_env(
    https_port: int, pem: Path, instances: list[Instance], **extra: str
) -> dict[str, str]:
    """``GTV_HAPROXY_*`` for a balancer on loopback in front of ``instances`` (at most 4)."""
    env = {
        "GTV_HAPROXY_HTTPS_BIND": f"127.0.0.1:{https_port}",
        "GTV_HAPROXY_CERT": str(pem),
    }
    for i, inst in enumerate(instances, 1):
        env[f"GTV_HAPROXY_WEB{i}"] = f"127.0.0.1:{inst.port}"
    env.update(extra)
    return env


def server_states(stats_port: int) -> dict[str, str]:
    """``web`` backend server name -> status (UP/DOWN/…) from HAProxy's CSV stats."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=3) as resp:
        text = resp.read().decode()
    lines = text.splitlines()
    head = lines[0].lstrip("# ").split(",")
    out: dict[str, str] = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split(","), strict=False))
        if row.get("pxname") == "web" and row.get("svname") not in ("FRONTEND", "BACKEND"):
            out[row["svname"]] = row.get("status", "")
    return out
