"""Running statistics a camera's motion detector keeps: the cadence of its analysed frames.

:class:`Cadence` measures the interval between consecutive analysed frames of one camera (the
median of the last few, so a reconnect or a dropped frame does not move it). The detector puts
it in every :class:`~gtvision.operators.motion.MotionResult` (``interval``), so keyed steps that
only see moving frames still know how far apart the camera's frames are: the incident step
widens its session gap for keyframe-only cameras (frames ~2 s apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from statistics import median

CADENCE_SAMPLES = 9
"""How many recent intervals the median is taken over."""


@dataclass(slots=True)
class Cadence:
    """Interval between a camera's analysed frames (part of the detector's recovery state)."""

    last_ts: datetime | None = None
    deltas: tuple[float, ...] = ()
    """The latest intervals in seconds, oldest first (at most :data:`CADENCE_SAMPLES`)."""

    def update(self, ts: datetime) -> float:
        """Count a frame taken at ``ts``, return :attr:`interval` (older frames are skipped)."""
        last = self.last_ts
        if last is None or ts > last:
            if last is not None:
                dt = (ts - last).total_seconds()
                self.deltas = (*self.deltas[1 - CADENCE_SAMPLES :], dt)
            self.last_ts = ts
        return self.interval

    @property
    def interval(self) -> float:
        """Median interval in seconds (0 until two frames were seen)."""
        return float(median(self.deltas)) if self.deltas else 0.0

    def copy(self) -> Cadence:
        """An independent copy (for snapshots)."""
        return Cadence(self.last_ts, self.deltas)
