"""Motion incidents: per-camera sessions over motion results, in event time.

Motion results with motion are keyed by camera and folded into sessions: a session closes when no
motion was seen for the camera's gap. Each closed session becomes one
:class:`~gtvision.events.MotionIncident` (start and end = first and last moving frame, peak
score, union box, frame count). Only :class:`MotionResult` values cross workers here.

**Gap per camera.** The gap is ``max(gap, interval_factor × interval)``, where ``interval`` is
the camera's typical time between analysed frames as its detector measured it
(:attr:`MotionResult.interval`, the median of the last few). At 5 fps that is the configured gap
(2 s); a keyframe-only camera (frames 2 s apart) gets 5 s, so one missed or late keyframe does
not split a motion period. Bytewax's ``SessionWindower`` has one fixed gap for every key, so the
sessions are a small ``stateful_batch`` logic of our own (one open session per camera: a
camera's results come in order from the one partition that reads it).

Clocks (:mod:`gtvision.operators.clocks`): ``replay=True`` uses event time only (the watermark is
the latest frame time, sessions close on later frames or at the end of the file), so a replay
gives the same incidents however fast it runs. Live flows let the watermark also advance with
the wall clock, so an incident closes ``gap + wait`` after its last motion even when the camera
goes quiet; the step asks to be woken up at the wall-clock instant the watermark passes the
session's close time (``ClockLogic.to_system_utc``), so it sleeps while an incident is open.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic
from bytewax.operators.windowing import Clock, ClockLogic

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


@dataclass(slots=True)
class SessionState:
    """Recovery snapshot of one camera's sessions."""

    clock: Any
    """The clock logic's own snapshot."""
    open: IncidentAcc | None
    interval: float
    """The camera's latest analysis interval in seconds (0: unknown)."""
    closed_end: datetime | None
    """End of the latest closed incident (older results are late: dropped)."""


class _Sessions(StatefulBatchLogic[MotionResult, MotionIncident, SessionState]):
    """One camera's open incident; closes it when the watermark passes its end + gap."""

    def __init__(
        self,
        clock: ClockLogic[MotionResult, Any],
        gap: timedelta,
        interval_factor: float,
        resume: SessionState | None,
    ) -> None:
        self._clock = clock
        self._gap, self._factor = gap, interval_factor
        self._open = resume.open if resume is not None else None
        self._interval = resume.interval if resume is not None else 0.0
        self._closed_end = resume.closed_end if resume is not None else None

    def gap(self) -> timedelta:
        """The camera's gap: ``max(gap, interval_factor × interval)``."""
        return max(self._gap, timedelta(seconds=self._factor * self._interval))

    def _close(self, now: datetime | None = None) -> list[MotionIncident]:
        acc = self._open
        if acc is None or acc.end is None or (now is not None and now <= acc.end + self.gap()):
            return []
        self._open, self._closed_end = None, acc.end
        incident = acc.incident()
        return [incident] if incident is not None else []

    def on_batch(self, values: list[MotionResult]) -> tuple[list[MotionIncident], bool]:
        self._clock.before_batch()
        out: list[MotionIncident] = []
        for r in values:
            ts, watermark = self._clock.on_item(r)
            if r.interval > 0:
                self._interval = r.interval
            out += self._close(watermark)
            if self._closed_end is not None and ts <= self._closed_end:
                continue  # its incident is already out
            acc = self._open
            if acc is not None and acc.end is not None and ts - acc.end > self.gap():
                out += self._close()
            if self._open is None:
                self._open = IncidentAcc()
            self._open.add(r)
        return out, self.RETAIN

    def on_notify(self) -> tuple[list[MotionIncident], bool]:
        return self._close(self._clock.on_notify()), self.RETAIN

    def on_eof(self) -> tuple[list[MotionIncident], bool]:
        return self._close(self._clock.on_eof()), self.RETAIN

    def notify_at(self) -> datetime | None:
        acc = self._open
        if acc is None or acc.end is None:
            return None
        return self._clock.to_system_utc(acc.end + self.gap())

    def snapshot(self) -> SessionState:
        acc = None if self._open is None else dataclasses.replace(self._open)
        return SessionState(self._clock.snapshot(), acc, self._interval, self._closed_end)


@operator
def motion_incidents(
    step_id: str,
    up: Stream[MotionResult],
    gap: timedelta = timedelta(seconds=2),
    *,
    replay: bool = False,
    wait: timedelta = timedelta(seconds=3),
    clock: Clock[MotionResult, Any] | None = None,
    interval_factor: float = 2.5,
) -> Stream[MotionIncident]:
    """Group moving frames per camera into incidents separated by a gap without motion.

    The gap of a camera is ``max(gap, interval_factor × its analysis interval)``. ``clock``
    defaults to :func:`~gtvision.operators.clocks.window_clock` (``replay``, ``wait``).
    """
    if gap <= timedelta(0) or interval_factor < 0:
        msg = f"gap must be > 0 and interval_factor >= 0, got {gap!r} and {interval_factor!r}"
        raise ValueError(msg)
    moving = op.filter("moving", up, lambda r: r.motion)
    keyed = op.key_on("by_camera", moving, lambda r: str(r.camera_id))
    clock = clock if clock is not None else window_clock(_ts, replay=replay, wait=wait)

    def build(resume: object) -> _Sessions:
        state = resume if isinstance(resume, SessionState) else None  # else: cold start
        logic = clock.build(state.clock if state is not None else None)
        return _Sessions(logic, gap, interval_factor, state)

    sessions = op.stateful_batch("camera_sessions", keyed, build)
    return op.map("incident", sessions, _value)


def _value(key_incident: tuple[str, MotionIncident]) -> MotionIncident:
    return key_incident[1]
