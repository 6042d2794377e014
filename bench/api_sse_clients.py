"""SSE load generator for ``bench/api.py`` (runs in its own process).

Opens N raw HTTP/1.1 connections to ``/stream/events``, prints ``READY`` when all got their
200 headers, then records the wall-clock time each connection receives its first ``data:``
line and prints them as JSON on stdout once all arrived (or after a timeout). Closes every
connection when stdin says ``close``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time


async def one(
    host: str, port: int, path: str, token: str, got: list[float]
) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(head.decode(errors="replace"))

    async def wait_data() -> None:
        buf = b""
        while b"\ndata:" not in buf and not buf.startswith(b"data:"):
            chunk = await reader.read(65536)
            if not chunk:
                return
            buf = (buf + chunk)[-4096:]
        got.append(time.time())

    asyncio.get_running_loop().create_task(wait_data())
    return writer


async def main() -> None:
    host, port, path, token, n = (
        sys.argv[1],
        int(sys.argv[2]),
        sys.argv[3],
        sys.argv[4],
        int(sys.argv[5]),
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
    got: list[float] = []
    writers = []
    for start in range(0, n, 100):  # connect in batches of 100
        writers += await asyncio.gather(
            *(one(host, port, path, token, got) for _ in range(start, min(n, start + 100)))
        )
    print("READY", flush=True)
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a list
        await asyncio.sleep(0.01)
    print(json.dumps(got), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in writers:
        w.close()
    await asyncio.sleep(0.5)
    print("CLOSED", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
