"""A local Bytewax cluster of ``gtvision`` processes for tests: start, signal, kill, restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..conftest import free_port

GTV = [sys.executable, "-m", "gtvision.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any ``GTV_`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update(extra)
    return env


@dataclass
class LocalCluster:
    """``processes`` copies of one ``gtvision`` command joined with ``-i``/``-a`` on loopback.

    ``args(i)`` gives process ``i``'s own arguments (output file, ``-r`` directory, …) and
    ``env(i)`` its environment. Every start gets fresh ports (a killed process's port may be in
    TIME_WAIT). Logs go to ``logs/p<i>.log`` (appended across restarts).
    """

    command: list[str]
    processes: int
    logs: Path
    args: dict[int, list[str]] = field(default_factory=dict)
    env: dict[int, dict[str, str]] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        """Start every process (a new cluster: new ports)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(self.processes))
        self.procs = []
        for i in range(self.processes):
            cmd = [*GTV, *self.command, "-i", str(i), "-a", addresses, *self.args.get(i, [])]
            with (self.logs / f"p{i}.log").open("ab") as log:
                self.procs.append(
                    subprocess.Popen(cmd, env=self.env.get(i), stdout=log, stderr=subprocess.STDOUT)
                )

    def log(self, i: int) -> str:
        """Everything process ``i`` wrote so far."""
        path = self.logs / f"p{i}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self) -> list[bool]:
        """Which processes still run."""
        return [p.poll() is None for p in self.procs]

    def signal_all(
        self, sig: int = signal.SIGTERM, timeout: float = 30.0
    ) -> tuple[list[int], float]:
        """Send ``sig`` to every process; their exit codes and the seconds until the last exit."""
        t0 = time.monotonic()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(sig)
        codes = self.wait(timeout)
        return codes, time.monotonic() - t0

    def wait(self, timeout: float) -> list[int]:
        """Wait for every process (killed after ``timeout``: code -9)."""
        deadline = time.monotonic() + timeout
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes

    def kill(self, i: int) -> None:
        """SIGKILL process ``i``."""
        self.procs[i].kill()
        self.procs[i].wait()

    def stop(self) -> None:
        """Kill whatever still runs (test teardown)."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
