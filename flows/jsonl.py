"""A Bytewax sink writing events as JSON lines (``gtvision replay --jsonl``, ``run --jsonl``)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import IO

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from gtvision.events import EventBase


class _Partition(StatelessSinkPartition[EventBase]):
    def __init__(self, sink: JsonlSink) -> None:
        self._sink = sink

    def write_batch(self, items: list[EventBase]) -> None:
        self._sink.write(items)

    def close(self) -> None:
        self._sink.flush()


class JsonlSink(DynamicSink[EventBase]):
    """One ``event.to_json()`` line per event to a file (``-`` or ``None``: stdout)."""

    def __init__(self, target: str | Path | None = None) -> None:
        self._target = None if target in (None, "-") else Path(str(target))
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()
        self.count = 0

    def _open(self) -> IO[str]:
        if self._fh is None:
            if self._target is None:
                self._fh = sys.stdout
            else:
                self._target.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self._target.open("w", encoding="utf-8")
        return self._fh

    def write(self, events: list[EventBase]) -> None:
        """Append ``events`` (thread-safe: workers share the file)."""
        with self._lock:
            fh = self._open()
            for event in events:
                fh.write(event.to_json() + "\n")
            self.count += len(events)
            fh.flush()

    def flush(self) -> None:
        """Flush buffered lines."""
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        """Close the file (stdout stays open)."""
        with self._lock:
            if self._fh is not None and self._fh is not sys.stdout:
                self._fh.close()
            self._fh = None

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[EventBase]:
        """A partition writing to the shared file (created now, even if no event comes)."""
        with self._lock:
            self._open()
        return _Partition(self)
