"""A TCP listener standing in for a camera: records what clients send, answers nothing useful.

Used to prove where a reader connects (or that it does not connect at all) and what request
line it sends. Listens on a loopback address of the caller's choice (any of 127.0.0.0/8).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class Probe:
    """Accepts connections on ``host:port``; ``requests`` holds the first bytes of each."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2.0)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                self.requests.append(data)

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@contextlib.contextmanager
def probe(host: str = "127.0.0.1") -> Iterator[Probe]:
    """A :class:`Probe` for the ``with`` block."""
    p = Probe(host)
    try:
        yield p
    finally:
        p.close()
