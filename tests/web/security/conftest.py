"""Security suite fixtures: one app per module, fake names for DNS, and the suite's log scan.

* ``sapi``: the app of the module (``SETTINGS = {...}`` at module level changes its settings),
  started once per module on the module's seeded world (real PostgreSQL and Redis).
* ``names``: host names ending in ``.test`` resolved to addresses the test chooses (and may
  change between calls: DNS rebinding); every other name goes to the real resolver.
* Log scan: every record logged while the suite runs (root, DEBUG) is kept *as logged*, before
  any formatter masks it; at the end no line may hold what ``tests.logscan.scan`` finds (known
  secrets, tokens the tests registered, JWTs, bearer tokens, URL passwords, unmasked
  ``sig=``/``token=`` values) or a traceback. Stricter than the session log scan of
  ``tests/conftest.py``, which reads the redacted JSON lines.
"""

from __future__ import annotations

import logging
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from gtvision.config import Settings
from tests.logscan import scan
from tests.web.conftest import PASSWORD, SECRET, Api, api_over

SECRETS: set[str] = {PASSWORD, SECRET, "s3cret-a", "s3cret-b"}
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")


def leaks(lines: list[str], secrets: set[str]) -> list[str]:
    """Secrets (``tests.logscan.scan``: known values and credential shapes) and tracebacks."""
    text = "\n".join(line.replace("\n", " | ") for line in lines)
    found = [str(f) for f in scan(text, secrets, source="security-suite")]
    found += [f"traceback: {line[:300]}" for line in lines if _TRACEBACK.search(line)]
    return found


# the tests' own HTTP client logs the URLs it requests (signed ones included): not the product's
_TEST_CLIENTS = frozenset({"httpx", "httpcore"})


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in _TEST_CLIENTS:
            return
        try:
            self.lines.append(self.format(record))
        except Exception as err:  # a record that cannot be formatted is a finding too
            self.lines.append(f"unformattable record from {record.name}: {err!r}")


@pytest.fixture(scope="package", autouse=True)
def log_scan() -> Iterator[set[str]]:
    """Capture every log record of the suite; fail the suite if any line leaks a secret."""
    keep = _Keep()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(keep)
    root.setLevel(logging.DEBUG)
    try:
        yield SECRETS
    finally:
        root.removeHandler(keep)
        root.setLevel(old_level)
    found = leaks(keep.lines, SECRETS)
    assert not found, "secrets in the security suite's log:\n" + "\n".join(found[:20])
    assert len(keep.lines) > 0, "the log scan saw no log record at all: capture is broken"


@pytest.fixture
def secrets(log_scan: set[str]) -> set[str]:
    """Add strings that must never appear in the log (the scan runs at the end of the suite)."""
    return log_scan


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sapi(request: pytest.FixtureRequest, web_backend: Any) -> AsyncIterator[Api]:
    """The module's app, started once, on the module's world."""
    settings, feed, store, writer, world = web_backend
    extra = getattr(request.module, "SETTINGS", {})
    prefix = f"{settings.redis_prefix}{uuid.uuid4().hex[:6]}:"
    s: Settings = settings.model_copy(update={"redis_prefix": prefix, **extra})
    async with api_over(s, feed, store, writer, world) as api:
        yield api


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """``names["cam.test"] = ["10.0.0.7", "127.0.0.2"]``: each lookup takes the next address.

    Python's resolver only (``socket.getaddrinfo``): what the app checks. ffmpeg resolves with
    libc and never sees these, so a reader that connects to the name instead of the checked
    address reaches whatever the real resolver says (``localhost``) or nothing (``*.test``).
    Once a name's list is used up, lookups go to the real resolver.
    """
    table: dict[str, list[str]] = {}
    real: Callable[..., Any] = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not table.get(name):
            return real(host, port, *args, **kw)
        addr = table[name].pop(0)
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        port = int(port or 0)
        sockaddr = (addr, port, 0, 0) if family == socket.AF_INET6 else (addr, port)
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return table
