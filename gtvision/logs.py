"""Logging of every gtvision command: text or JSON lines, with request/city/camera/event context.

``GTV_LOG_FORMAT=json`` writes one JSON object per line to stderr (``ts``, ``level``,
``logger``, ``msg``, ``request_id``, ``city_id``, ``camera_id``, ``event_id``, plus ``exc``
for a traceback) for ELK/Loki; ``text`` (the default) stays human-readable. ``GTV_LOG_FILE``
also appends the JSON lines to a file (Filebeat reads it), each record in one ``write`` so
several processes can share the file.

The context fields come from :mod:`contextvars` set where they are known: the web app's
request middleware (request id, and the caller's city and the route's camera/event ids once
the endpoint has them), each camera reader thread (camera and city), the clip and recording
workers (event id). :func:`bound` sets them for a block.

Every line, text or JSON, goes through :func:`redact` first: passwords in URLs, bearer tokens,
JWTs, ``token=``/``sig=`` query values and presigned-URL signatures are replaced by ``***``,
whatever the code logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("gtv_request_id", default=None)
CITY_ID: ContextVar[int | None] = ContextVar("gtv_city_id", default=None)
CAMERA_ID: ContextVar[int | None] = ContextVar("gtv_camera_id", default=None)
EVENT_ID: ContextVar[str | None] = ContextVar("gtv_event_id", default=None)
CONTEXT: dict[str, ContextVar[Any]] = {
    "request_id": REQUEST_ID,
    "city_id": CITY_ID,
    "camera_id": CAMERA_ID,
    "event_id": EVENT_ID,
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_REDACTIONS = (
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)(?!\*\*\*@)[^\s/@]+@"), r"\1***@"),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "***"),
    (
        re.compile(r"(?i)([?&](?:token|sig|x-amz-signature|x-amz-credential|password)=)[^&\s\"']+"),
        r"\1***",
    ),
)


def redact(text: str) -> str:
    """``text`` with credentials replaced by ``***`` (see the module docstring)."""
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


def context() -> dict[str, Any]:
    """The context fields known here (``None`` when unknown)."""
    return {name: var.get() for name, var in CONTEXT.items()}


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Set context fields (``city_id=…, camera_id=…``) for the block."""
    tokens = [(CONTEXT[name], CONTEXT[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, context fields included."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for name, var in CONTEXT.items():
            out[name] = getattr(record, name, None) or var.get()
        out["pid"] = record.process
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = redact(record.exc_text)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, context fields appended when known, credentials redacted."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """``time LEVEL logger: message [request_id=… camera_id=…]``."""
        line = super().format(record)
        known = " ".join(f"{k}={v}" for k, v in context().items() if v is not None)
        return redact(f"{line} [{known}]" if known else line)


class AppendHandler(logging.Handler):
    """JSON lines appended to a file with one ``write`` each (safe across processes)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record's line."""
        try:
            if self._fd >= 0:
                os.write(self._fd, (self.format(record) + "\n").encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Close the file."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with suppress(OSError):
                os.close(fd)
        super().close()


def formatter(log_format: str) -> logging.Formatter:
    """The stderr formatter of ``GTV_LOG_FORMAT``."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each record (a replaced stream is never stale)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_OURS = "_gtvision_logging"


def setup(level: str = "INFO", log_format: str = "text", log_file: Path | None = None) -> None:
    """Configure the root logger of a command.

    Replaces only the handlers an earlier ``setup`` installed: a command run inside another
    program (a test calling ``gtvision.cli.main``) leaves that program's handlers alone.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _OURS, False):
            root.removeHandler(old)
            old.close()
    handlers: list[logging.Handler] = [StderrHandler()]
    handlers[0].setFormatter(formatter(log_format))
    if log_file is not None:
        handlers.append(AppendHandler(log_file))
    for handler in handlers:
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(level)


def uvicorn_config(level: str, log_format: str, log_file: Path | None) -> dict[str, Any]:
    """``uvicorn.run(log_config=…)``: uvicorn's loggers and the root logger of every worker."""
    cls = "gtvision.logs.JsonFormatter" if log_format == "json" else "gtvision.logs.TextFormatter"
    handlers: dict[str, Any] = {
        "stderr": {"class": "logging.StreamHandler", "formatter": "main"},
    }
    if log_file is not None:
        handlers["file"] = {"()": "gtvision.logs.AppendHandler", "path": Path(log_file)}
    names = list(handlers)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": {"()": cls}},
        "handlers": handlers,
        "root": {"handlers": names, "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
        },
    }
