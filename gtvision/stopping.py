"""Stopping a running flow cleanly on SIGINT/SIGTERM.

Bytewax's own reaction to a signal is to interrupt its workers: the run ends with a Rust panic
report and ``BytewaxRuntimeError: signal received`` (exit 1), open windows are lost and sinks
are not closed. ``gtvision run`` instead installs :class:`GracefulStop`: the first SIGINT or
SIGTERM only sets an event; the live source sees it and ends its partitions (EOF), so the
dataflow completes by itself the way a replay does at the end of its file: windowed and stateful
steps flush (open motion incidents and plate passes are emitted), Bytewax takes its EOF
snapshot, and the sinks close (pending clips are cut, the open recording segment is finished
and uploaded). A second signal aborts at once (exit 130), like Bytewax's default.

Bytewax runs Python signal handlers from its worker loop (one process, one worker) or its
main-thread wait loop (several workers or processes) every millisecond, so the flag is set
within a millisecond of the signal. In a cluster every process must be signalled (what a
supervisor stopping the deployment does): the dataflow completes once every process's sources
have ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """Context manager: the first SIGINT/SIGTERM sets :attr:`event`, a second one aborts."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event if event is not None else threading.Event()
        self._saved: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():
            log.warning("%s again: stopping at once", name)
            raise KeyboardInterrupt
        log.info("%s: stopping (cameras close, open windows flush, sinks finish)", name)
        self.event.set()

    def __enter__(self) -> GracefulStop:
        for sig in STOP_SIGNALS:
            self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()


def exit_now(code: int = 0) -> None:
    """End the process at once after a completed stop (logs and output flushed first).

    Everything that matters is closed by then (sinks, recorder, pools); what is left is the
    interpreter's finalisation, which for a process that loaded the plate models (torch,
    onnxruntime thread pools) takes 3-6 s on a loaded machine, enough to miss a supervisor's
    grace period.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
