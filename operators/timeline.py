"""How much of a camera's timeline was actually looked at: the clock of pass gaps.

A live reader drops frames when the flow falls behind (its queue keeps the newest frames), so
the frames that reach the plate reader come in bursts with holes between them. A vehicle still
in view across a 2 s hole is not "2 s unseen": nobody looked. :class:`ObservedClock` counts only
observed time: every analysed frame (a :class:`~gtvision.operators.passes.CameraTick`, or a
plate read) advances it by the time since the previous analysed frame, but by at most
``hole_factor`` frame intervals (the interval is the smallest recent spacing between analysed
frames, i.e. ``1 / GTV_ANALYSIS_FPS`` for a camera read at full rate). A hole of dropped frames
therefore counts as one frame interval or two, while a camera whose frames all arrive counts
event time exactly, so a replay (no drops) gives the same passes as before.

Until the first tick arrives only reads drive the clock, uncapped (a flow without ticks cannot
tell dropped frames from frames without plates). Times are mapped through the recent analysed
frames (``anchors``), so a read that arrives after later frames' ticks gets the observed time
of its own frame.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime

_DELTAS = 32  # spacing samples for the frame interval
_ANCHORS = 512  # analysed frames remembered for mapping reads (~100 s at 5 fps)


@dataclass
class ObservedClock:
    """Observed seconds of one camera's timeline (see the module docstring)."""

    hole_factor: float = 2.0
    capped: bool = False
    last_ts: datetime | None = None
    last_tick: datetime | None = None
    observed: float = 0.0
    deltas: deque[float] = field(default_factory=lambda: deque(maxlen=_DELTAS))
    anchors: deque[tuple[datetime, float]] = field(default_factory=lambda: deque(maxlen=_ANCHORS))

    def __deepcopy__(self, memo: dict[int, object]) -> ObservedClock:
        """A copy for a snapshot: the deques hold immutable values, so they are copied flat.

        A live camera keeps its clock between passes, so every camera's clock is in every
        snapshot; ``copy.deepcopy`` of 512 datetime anchors cost ~1 ms per camera.
        """
        return replace(
            self,
            deltas=deque(self.deltas, maxlen=self.deltas.maxlen),
            anchors=deque(self.anchors, maxlen=self.anchors.maxlen),
        )

    def interval(self) -> float:
        """Spacing of analysed frames: the smallest recent tick-to-tick step (0 before two)."""
        return min(self.deltas) if self.deltas else 0.0

    def _span(self, seconds: float) -> float:
        """Observed seconds of ``seconds`` of event time after an analysed frame."""
        if not self.capped or not self.deltas:
            return seconds
        return min(seconds, self.hole_factor * self.interval())

    def advance(self, ts: datetime, *, tick: bool) -> None:
        """An analysed frame at ``ts`` (``tick``: from the frame heartbeat stream)."""
        if tick:
            self.capped = True
            if self.last_tick is not None and ts > self.last_tick:
                self.deltas.append((ts - self.last_tick).total_seconds())
            self.last_tick = ts if self.last_tick is None else max(self.last_tick, ts)
        if self.last_ts is None:
            self.last_ts = ts
            self.anchors.append((ts, self.observed))
            return
        delta = (ts - self.last_ts).total_seconds()
        if delta <= 0:
            return  # an older frame (a read behind its tick): mapped by at()
        self.observed += self._span(delta)
        self.last_ts = ts
        self.anchors.append((ts, self.observed))

    def at(self, ts: datetime) -> float:
        """The observed clock at event time ``ts``."""
        if self.last_ts is None or not self.anchors:
            return 0.0
        if ts >= self.last_ts:
            return self.observed + self._span((ts - self.last_ts).total_seconds())
        times = [t for t, _ in self.anchors]
        i = bisect.bisect_right(times, ts) - 1
        if i < 0:
            first_ts, first_obs = self.anchors[0]
            return first_obs - (first_ts - ts).total_seconds()
        anchor_ts, anchor_obs = self.anchors[i]
        return anchor_obs + self._span((ts - anchor_ts).total_seconds())
