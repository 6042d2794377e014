"""A Bytewax sink writing events as JSON lines (``gtvision replay --jsonl``, ``run --jsonl``).

Two modes:

* streaming (``gtvision run``): each event is written and flushed as it arrives;
* **ordered** (``gtvision replay``): events are spooled to ``OUT.partial`` as they arrive and
  :meth:`JsonlSink.finish` writes ``OUT`` sorted by event time (then camera, type, id) without
  duplicate ids. Cameras replayed in parallel partitions reach the sink in an order that depends
  on scheduling; sorted, the output of a replay is the same bytes every time. With ``resume``
  (a replay resumed from its recovery snapshots) the partial file of the interrupted run is kept
  and appended to (without a last line the interrupted run left half-written): events
  re-emitted after the last snapshot are absorbed by their ids.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
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


def order_key(event: EventBase) -> str:
    """Sort key of the ordered mode: event time, camera, type, id."""
    ts = event.ts.isoformat(timespec="microseconds")
    return f"{ts}\x1f{event.camera_id:020d}\x1f{event.type}\x1f{event.id}"


def _cut_partial_line(path: Path) -> None:
    """Drop the last line of ``path`` when it has no newline (the writer died in the middle).

    The interrupted replay's event in that line was not in a completed snapshot, so the resumed
    run emits it again; appended to the cut line, it would make one line of two that cannot be
    read back.
    """
    try:
        fh = path.open("rb+")
    except FileNotFoundError:
        return
    with fh:
        end = pos = fh.seek(0, os.SEEK_END)
        while pos > 0:
            step = min(1 << 16, pos)
            fh.seek(pos - step)
            newline = fh.read(step).rfind(b"\n")
            if newline >= 0:
                pos += newline + 1 - step
                break
            pos -= step
        if pos < end:
            fh.truncate(pos)


class JsonlSink(DynamicSink[EventBase]):
    """One ``event.to_json()`` line per event to a file (``-`` or ``None``: stdout)."""

    def __init__(
        self, target: str | Path | None = None, *, ordered: bool = False, resume: bool = False
    ) -> None:
        self._target = None if target in (None, "-") else Path(str(target))
        self.ordered = ordered
        self._resume = resume
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.count = 0

    @property
    def spool(self) -> Path:
        """Where the ordered mode collects events before :meth:`finish`."""
        if self._target is not None:
            return self._target.with_name(self._target.name + ".partial")
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gtv-jsonl-")
        return Path(self._tmp.name) / "events.partial"

    def _open(self) -> IO[str]:
        if self._fh is None:
            if self.ordered:
                self.spool.parent.mkdir(parents=True, exist_ok=True)
                if self._resume:
                    _cut_partial_line(self.spool)
                self._fh = self.spool.open("a" if self._resume else "w", encoding="utf-8")
            elif self._target is None:
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
                line = event.to_json()
                fh.write(f"{order_key(event)}\t{line}\n" if self.ordered else line + "\n")
            if not self.ordered:
                self.count += len(events)
            fh.flush()

    def flush(self) -> None:
        """Flush buffered lines."""
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        """Close the file (stdout stays open); an ordered spool stays for a resumed replay."""
        with self._lock:
            if self._fh is not None and self._fh is not sys.stdout:
                self._fh.close()
            self._fh = None

    def finish(self) -> None:
        """Ordered mode: write the spooled events sorted, once each, and drop the spool."""
        self.close()
        if not self.ordered:
            return
        spool = self.spool
        rows: dict[str, tuple[str, str]] = {}
        if spool.exists():
            with spool.open(encoding="utf-8") as fh:
                for raw in fh:
                    key, _, line = raw.rstrip("\n").partition("\t")
                    if line:
                        rows.setdefault(json.loads(line)["id"], (key, line))
        ordered = sorted(rows.values())
        out = sys.stdout if self._target is None else self._target.open("w", encoding="utf-8")
        try:
            out.writelines(line + "\n" for _, line in ordered)
            out.flush()
        finally:
            if out is not sys.stdout:
                out.close()
        self.count = len(ordered)
        spool.unlink(missing_ok=True)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[EventBase]:
        """A partition writing to the shared file (created now, even if no event comes)."""
        with self._lock:
            self._open()
        return _Partition(self)
