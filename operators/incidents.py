"""Motion incidents: per-camera session windows over motion results, in event time.

Motion results with motion are keyed by camera and folded into Bytewax session windows: a window
closes when no motion was seen for ``gap``. Each closed window becomes one
:class:`~gtvision.events.MotionIncident` (start and end = first and last moving frame, peak
score, union box, frame count). Only :class:`MotionResult` values cross workers here.

Clocks (:mod:`gtvision.operators.clocks`): ``replay=True`` uses event time only (the watermark is
the latest frame time, windows close on later frames or at the end of the file), so a replay
gives the same incidents however fast it runs. Live flows let the watermark also advance with
the wall clock, so an incident closes ``gap + wait`` after its last motion even when the camera
goes quiet; the step sleeps until then (no busy re-activation while an incident is open).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators.windowing import Clock, SessionWindower, fold_window

from gtvision.events import Box, MotionIncident
from gtvision.operators.clocks import window_clock
from gtvision.operators.motion import MotionResult


@dataclass(slots=True)
class IncidentAcc:
    """Accumulator of one open incident (light: snapshotted by Bytewax recovery)."""

    city_id: int = 0
    camera_id: int = 0
    start: datetime | None = None
    end: datetime | None = None
    peak: float = 0.0
    box: Box | None = None
    frames: int = 0

    def add(self, r: MotionResult) -> IncidentAcc:
        """Fold one motion result in."""
        self.city_id, self.camera_id = r.city_id, r.camera_id
        self.start = r.ts if self.start is None else min(self.start, r.ts)
        self.end = r.ts if self.end is None else max(self.end, r.ts)
        self.peak = max(self.peak, r.score)
        u = r.union()
        if u is not None:
            self.box = u if self.box is None else self.box.union(u)
        self.frames += 1
        return self

    def merge(self, other: IncidentAcc) -> IncidentAcc:
        """Combine two windows that a late frame joined."""
        starts = [t for t in (self.start, other.start) if t is not None]
        ends = [t for t in (self.end, other.end) if t is not None]
        self.start = min(starts) if starts else None
        self.end = max(ends) if ends else None
        self.peak = max(self.peak, other.peak)
        if other.box is not None:
            self.box = other.box if self.box is None else self.box.union(other.box)
        self.frames += other.frames
        self.city_id, self.camera_id = other.city_id or self.city_id, other.camera_id
        return self

    def incident(self) -> MotionIncident | None:
        """The finished incident (``None`` for an empty accumulator)."""
        if self.start is None or self.end is None:
            return None
        return MotionIncident(
            city_id=self.city_id,
            camera_id=self.camera_id,
            ts=self.start,
            start=self.start,
            end=self.end,
            peak_score=min(1.0, self.peak),
            box=self.box,
            frames=self.frames,
        )


def _ts(r: MotionResult) -> datetime:
    return r.ts


def _finish(key_acc: tuple[str, tuple[int, IncidentAcc]]) -> MotionIncident | None:
    return key_acc[1][1].incident()


@operator
def motion_incidents(
    step_id: str,
    up: Stream[MotionResult],
    gap: timedelta = timedelta(seconds=2),
    *,
    replay: bool = False,
    wait: timedelta = timedelta(seconds=3),
    clock: Clock[MotionResult, Any] | None = None,
) -> Stream[MotionIncident]:
    """Group moving frames per camera into incidents separated by ``gap`` without motion.

    ``clock`` defaults to :func:`~gtvision.operators.clocks.window_clock` (``replay``, ``wait``).
    """
    moving = op.filter("moving", up, lambda r: r.motion)
    keyed = op.key_on("by_camera", moving, lambda r: str(r.camera_id))
    clock = clock if clock is not None else window_clock(_ts, replay=replay, wait=wait)
    windows = fold_window(
        "sessions",
        keyed,
        clock,
        SessionWindower(gap=gap),
        IncidentAcc,
        IncidentAcc.add,
        IncidentAcc.merge,
    )
    return op.filter_map("incident", windows.down, _finish)
