"""Flow errors a person can read: the user's exception first, Bytewax's Rust trace only on demand.

* :class:`EventCheck` is the step ``to_sink`` puts before the sink: a value that is not a valid
  event stops the flow with a :class:`FlowValueError` naming the producing step and the value.
* :func:`flow_error` turns the exception ``cli_main``/``run_main`` raise (Bytewax wraps the step's
  exception in ``BytewaxRuntimeError`` layers) into the message to print: the first line is the
  user's exception type and message (all of it: pydantic errors span several lines), then the
  step it came from.
* :class:`QuietRustPanics` filters the panic report Bytewax's Rust core writes straight to file
  descriptor 2 before the Python exception surfaces (``thread '<unnamed>' panicked at …``, a
  backtrace when ``RUST_BACKTRACE`` is set); ``-v`` keeps it. Every other line passes through.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import traceback
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from gtvision.events import EventBase

_STEP = re.compile(r'in step "([^"]+)"')
_CORE_STEPS = frozenset(
    {"branch", "flat_map_batch", "input", "inspect_debug", "merge", "output", "redistribute",
     "stateful_batch", "down"}
)  # fmt: skip
_MAX_VALUE = 300


class FlowValueError(ValueError):
    """A step sent something to the sink that is not a valid event."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE] + "…"


class EventCheck:
    """Pass valid events through; stop the flow on anything else (naming ``origin``)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def __call__(self, item: Any) -> EventBase:
        """``item`` if it is a valid event, else :class:`FlowValueError`."""
        if not isinstance(item, EventBase):
            msg = (
                f"step {self.origin!r} sent a {type(item).__name__} to the sink, not an event: "
                f"{_short(item)} (emit an instance of a gtvision.events.EventBase subclass)"
            )
            raise FlowValueError(msg)
        try:
            type(item).model_validate(item.model_dump())
        except ValidationError as err:
            msg = f"step {self.origin!r} sent an invalid {type(item).__name__}: {err}"
            raise FlowValueError(msg) from None
        return item


def user_step(step_id: str) -> str:
    """The step a person wrote: ``step_id`` without trailing Bytewax core steps.

    ``flow.hits.flat_map_batch`` → ``flow.hits``.
    """
    parts = step_id.split(".")
    while len(parts) > 2 and parts[-1] in _CORE_STEPS:
        parts.pop()
    return ".".join(parts)


def _is_bytewax(err: BaseException) -> bool:
    return type(err).__module__.startswith("bytewax")


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = [err]
    while (nxt := seen[-1].__cause__ or seen[-1].__context__) is not None and nxt not in seen:
        seen.append(nxt)
    return seen


def user_error(err: BaseException) -> BaseException:
    """The outermost exception of the chain that Bytewax did not raise (else ``err``)."""
    return next((e for e in _chain(err) if not _is_bytewax(e)), err)


def failing_step(err: BaseException) -> str | None:
    """The user-level step id named by Bytewax's wrappers (``flow.step``), if any."""
    steps = [m.group(1) for e in _chain(err) if (m := _STEP.search(str(e)))]
    if not steps:
        return None
    return user_step(steps[-1])


def flow_error(err: BaseException, *, verbose: bool = False) -> str:
    """What to print for a failed flow: ``Type: message`` first, then where it happened."""
    user = user_error(err)
    text = str(user).strip() or repr(user)
    lines = [f"{type(user).__name__}: {text}"]
    step = failing_step(err)
    if step is not None and not isinstance(user, FlowValueError):
        lines.append(f"  (in step {step!r})")
    if verbose:
        lines.append("".join(traceback.format_exception(err)).rstrip())
    else:
        lines.append("  (run with -v for the full trace)")
    return "\n".join(lines)


_PANIC_START = re.compile(r"^thread '.*' panicked at ")
_PANIC_BODY = re.compile(
    r"^(Box<dyn Any>|stack backtrace:|note: (run with|Some details)|\s+\d+: |\s+at )"
)


class QuietRustPanics:
    """Context manager: drop Rust panic reports from fd 2 unless ``verbose`` (thread-safe)."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> QuietRustPanics:
        if self.verbose:
            return self
        sys.stderr.flush()
        read_fd, write_fd = os.pipe()
        self._saved = os.dup(2)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(
            target=self._pump, args=(read_fd, self._saved), name="stderr-filter", daemon=True
        )
        self._thread.start()
        return self

    @staticmethod
    def _pump(read_fd: int, out_fd: int) -> None:
        # never stops reading before EOF: a full pipe would block every writer of stderr
        in_panic, writable = False, True
        with os.fdopen(read_fd, "rb") as pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace")
                if _PANIC_START.match(line):
                    in_panic = True
                    continue
                if in_panic and (_PANIC_BODY.match(line) or not line.strip()):
                    continue
                in_panic = False
                view = memoryview(raw)
                while writable and view:
                    try:
                        view = view[os.write(out_fd, view) :]
                    except OSError:  # the real stderr went away (closed pipe): drain only
                        writable = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._saved is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last writer: the pump sees EOF
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self._saved)
        self._saved = None
