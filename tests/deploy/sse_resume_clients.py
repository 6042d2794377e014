"""N SSE clients that behave like browsers' EventSource, in their own process.

Usage: ``python sse_resume_clients.py HOST PORT CAFILE TOKEN N LAST_ID``. Each client opens
``GET /stream/events`` over TLS with ``Last-Event-ID: LAST_ID`` and, whenever its connection
ends or fails, reconnects after 0.2–0.7 s with the id of the last event it received. Prints
``READY`` once every client got its first 200, then, when stdin says ``stop``, one JSON object:
``{"ids": [[id, …] per client], "reconnects": [n per client], "errors": [first errors]}``.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import ssl
import sys


class Client:
    """One EventSource-like client."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext, token: str, last: str) -> None:
        self.host, self.port, self.tls, self.token = host, port, tls, token
        self.last = last
        self.ids: list[str] = []
        self.reconnects = -1
        self.errors: list[str] = []
        self.connected = asyncio.Event()

    async def run(self) -> None:
        while True:
            self.reconnects += 1
            try:
                await self._stream()
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError, RuntimeError) as err:
                if len(self.errors) < 3:
                    self.errors.append(f"{type(err).__name__}: {err}"[:200])
            await asyncio.sleep(random.uniform(0.2, 0.7))

    async def _stream(self) -> None:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.tls, server_hostname="localhost"
        )
        try:
            writer.write(
                f"GET /stream/events HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Accept: text/event-stream\r\nAuthorization: Bearer {self.token}\r\n"
                f"Last-Event-ID: {self.last}\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status:
                msg = f"status {status.decode(errors='replace')}"
                raise RuntimeError(msg)
            self.connected.set()
            await self._events(reader, chunked=b"transfer-encoding: chunked" in head.lower())
        finally:
            writer.close()

    async def _events(self, reader: asyncio.StreamReader, *, chunked: bool) -> None:
        event_id = ""
        has_data = False
        buf = b""
        while True:
            if chunked:
                size_line = await reader.readline()
                if not size_line:
                    return
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    return
                buf += await reader.readexactly(size)
                await reader.readexactly(2)
            else:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.rstrip(b"\r").decode()
                if not line:
                    if has_data and event_id:
                        self.ids.append(event_id)
                        self.last = event_id
                    event_id, has_data = "", False
                elif line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    has_data = True


async def main() -> None:
    host, port, cafile, token, n, last = sys.argv[1:7]
    count = int(n)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    tls = ssl.create_default_context(cafile=cafile)
    clients = [Client(host, int(port), tls, token, last) for _ in range(count)]
    tasks = []
    for start in range(0, count, 50):  # connect in batches
        batch = clients[start : start + 50]
        tasks += [asyncio.create_task(c.run()) for c in batch]
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in batch)), 60)
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for task in tasks:
        task.cancel()
    out = {
        "ids": [c.ids for c in clients],
        "reconnects": [c.reconnects for c in clients],
        "errors": sorted({e for c in clients for e in c.errors})[:20],
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
