"""``LoopingSource``: a recorded video played again and again in real time, until told to stop.

Each loop is a fresh :class:`~gtvision.sources.file.FileSource` partition anchored at the wall
clock of the loop's start, so frame times track "now" and every loop yields new event ids (the
ids are derived from event times). The partition ends when ``stop`` is set or after ``loops``
loops (0: forever). There is nothing to resume: a restarted demo starts a new loop.

Like a live camera, it does not wait for a slow flow: frames more than ``max_lag_s`` behind the
wall clock when the flow asks for them are dropped (and counted in ``dropped``), so the events
stay close to "now" on a busy machine instead of lagging more with every loop.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from gtvision.events import Frame
from gtvision.sources.decode import SourceItem
from gtvision.sources.file import FileResume, FileSource


class _LoopPartition(StatefulSourcePartition[SourceItem, None]):
    def __init__(self, src: LoopingSource, step_id: str, part: str) -> None:
        self._src = src
        self._step_id, self._part = step_id, part
        self.loops = 0
        self._inner: StatefulSourcePartition[SourceItem, FileResume] | None = None
        self._open()

    def _open(self) -> None:
        self.loops += 1
        inner = FileSource(
            self._src.path,
            city_id=self._src.city_id,
            camera_id=self._src.camera_id,
            analysis_fps=self._src.analysis_fps,
            start=datetime.now(UTC),
            realtime=True,
        )
        self._inner = inner.build_part(self._step_id, inner.list_parts()[0], None)

    def _close_inner(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None

    def next_batch(self) -> list[SourceItem]:
        if self._src.stop.is_set():
            self._close_inner()
            raise StopIteration
        assert self._inner is not None
        try:
            batch = list(self._inner.next_batch())
        except StopIteration:
            self._close_inner()
            if self._src.loops and self.loops >= self._src.loops:
                raise
            self._open()
            return []
        oldest = datetime.now(UTC) - self._src.max_lag
        kept = [i for i in batch if not isinstance(i, Frame) or i.ts >= oldest]
        self._src.dropped += len(batch) - len(kept)
        return kept

    def next_awake(self) -> datetime | None:
        if self._src.stop.is_set() or self._inner is None:
            return None
        due = self._inner.next_awake()
        if due is None:
            return None
        # wake at least every 100 ms to notice the stop flag
        soon = datetime.now(UTC).timestamp() + 0.1
        return due if due.timestamp() <= soon else datetime.fromtimestamp(soon, UTC)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._close_inner()


class LoopingSource(FixedPartitionedSource[SourceItem, None]):
    """``path`` looped in real time as camera ``camera_id`` of city ``city_id``."""

    def __init__(
        self,
        path: Path,
        *,
        city_id: int,
        camera_id: int,
        analysis_fps: float = 5.0,
        loops: int = 0,
        max_lag_s: float = 1.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.path = path
        self.city_id, self.camera_id = city_id, camera_id
        self.analysis_fps = analysis_fps
        self.loops = loops
        self.max_lag = timedelta(seconds=max_lag_s)
        self.dropped = 0
        self.stop = stop if stop is not None else threading.Event()

    def list_parts(self) -> list[str]:
        """One partition: the looped file."""
        return [f"loop-{self.camera_id}"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _LoopPartition:
        """Start the first loop."""
        return _LoopPartition(self, step_id, for_part)
