"""The one log scanner of the test suite: finds secrets in log text.

:func:`scan` looks for the secrets the tests themselves use (:data:`KNOWN`, plus any passed in)
and for credential *shapes* whatever their value: passwords in URLs, bearer tokens, JWTs,
``token=``/``sig=`` query values, presigned-URL signatures, argon2 hashes and JSON
``"password"`` fields. ``***`` (the masked form) never counts.

``tests/conftest.py`` makes every ``gtvision`` process of a test run (the pytest process and
every ``gtvision`` subprocess) append its JSON log lines to one session file and scans it at the
end of the run (:func:`check_session_log`); a leak fails the run. The security suite calls
:func:`scan` on the logs of its own requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: secrets the test suite uses as values (web tests' JWT secret and user password, the
#: seeded camera URLs' passwords); a log line holding one of them leaked it
KNOWN: tuple[str, ...] = (
    "test-secret-" + "x" * 60,
    "correct horse battery",
    "s3cret-a",
    "s3cret-b",
)
REQUIRED_KEYS = ("ts", "level", "logger", "msg", "request_id", "city_id", "camera_id", "event_id")

_URL_PASSWORD = r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@\"']*:(?!\*\*\*@)[^\s/@\"']+@"
_QUERY = r"(?i)[?&](?:token|sig|x-amz-signature|x-amz-credential|password)=(?!\*\*\*)[^&\s\"']+"
_FIELD = r"(?i)\"(?:password|new_password|refresh_token)\"\s*:\s*\"(?!\*\*\*)[^\"]+\""
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("password in a URL", re.compile(_URL_PASSWORD)),
    ("bearer token", re.compile(r"(?i)\bbearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("token/signature in a query", re.compile(_QUERY)),
    ("argon2 hash", re.compile(r"\$argon2(?:id|i|d)\$")),
    ("password field", re.compile(_FIELD)),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One leak: what was found, where, and the line cut around it."""

    what: str
    source: str
    line_no: int
    excerpt: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line_no}: {self.what}: {self.excerpt}"


def _excerpt(line: str, start: int, end: int) -> str:
    return line[max(0, start - 60) : end + 60].replace("\n", " ")


def scan(text: str, secrets: Iterable[str] = (), source: str = "log") -> list[Finding]:
    """Every secret (known value or credential shape) in ``text``, one finding per hit."""
    values = [s for s in (*KNOWN, *secrets) if s and s != "***"]
    out: list[Finding] = []
    for no, line in enumerate(text.splitlines(), 1):
        for value in values:
            at = line.find(value)
            if at >= 0:
                out.append(Finding("known secret", source, no, _excerpt(line, at, at + len(value))))
        for what, pattern in _SHAPES:
            for m in pattern.finditer(line):
                out.append(Finding(what, source, no, _excerpt(line, m.start(), m.end())))
    return out


def malformed(text: str, source: str = "log") -> list[Finding]:
    """Lines of a JSON log that are not one object with every :data:`REQUIRED_KEYS`."""
    out: list[Finding] = []
    for no, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            out.append(Finding("not JSON", source, no, line[:200]))
            continue
        missing = [k for k in REQUIRED_KEYS if not isinstance(record, dict) or k not in record]
        if missing:
            out.append(Finding(f"missing keys {missing}", source, no, line[:200]))
    return out


def check_session_log(path: Path) -> list[Finding]:
    """Leaks and malformed lines of the session's JSON log (empty when clean)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    return [*malformed(text, path.name), *scan(text, source=path.name)]
