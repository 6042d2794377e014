"""Clocks of the windowed steps: event time only for replays, event time + wall clock live.

Every windowed step (motion incidents, your own ``fold_window``/``collect_window`` steps through
:func:`gtvision.flows.api.event_clock`) takes its Bytewax clock from :func:`window_clock`, so a
fix to how live windows wake up is made once, here.

* ``replay=True``: the watermark is the latest item time (no wall-clock component, no
  wake-ups): windows close on later items or at the end of the input, so a replay gives the same
  windows however fast it runs.
* ``replay=False``: :class:`LiveClock`. Its watermark is exactly Bytewax's
  :class:`~bytewax.operators.windowing.EventClock`'s, ``max_ts - wait + (now - arrival of
  max_ts)``: it follows event time while items come and advances with the wall clock when they
  stop, so a window closes ``wait`` after its end even when the camera goes quiet.

**Wake-ups.** To close a window the operator asks its clock when to wake up
(``to_system_utc`` of the window's close time). ``EventClock``'s default answer is the close
time itself, which for a live camera is always in the past (the watermark lags event time by
``wait`` plus the frames' latency), so the runtime re-activated the window step without pause
for as long as a window was open: one core burnt per worker whatever the camera count.
:class:`LiveClock` answers with the wall-clock instant the watermark reaches the close time,
``arrival of max_ts + (close - (max_ts - wait))``, the inverse of the formula above.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from bytewax.operators.windowing import UTC_MAX, UTC_MIN, Clock, ClockLogic, EventClock

V = TypeVar("V")
_FIXED_NOW = datetime(1970, 1, 1, tzinfo=UTC)
# Session windows close when the watermark is strictly past their end: wake up just after.
_SLACK = timedelta(milliseconds=1)


def _fixed_now() -> datetime:
    return _FIXED_NOW


def _no_wakeup(_: datetime) -> datetime | None:
    return None


def _system_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class LiveClockState:
    """Snapshot of a live clock (the fields of Bytewax's ``EventClock`` state)."""

    system_time_of_max_event: datetime
    watermark_base: datetime


class _LiveClockLogic(ClockLogic[V, LiveClockState]):
    def __init__(
        self,
        ts_getter: Callable[[V], datetime],
        wait: timedelta,
        now_getter: Callable[[], datetime],
        resume: LiveClockState | None,
    ) -> None:
        self._ts = ts_getter
        self._wait = wait
        self._now_getter = now_getter
        self._now = now_getter()
        if resume is None:
            resume = LiveClockState(system_time_of_max_event=self._now, watermark_base=UTC_MIN)
        self.state = LiveClockState(resume.system_time_of_max_event, resume.watermark_base)

    def _watermark(self) -> datetime:
        st = self.state
        return st.watermark_base + (self._now - st.system_time_of_max_event)

    def before_batch(self) -> None:
        now = self._now_getter()
        if now > self._now:  # the wall clock may step back (NTP): never let time go back
            self._now = now

    def on_item(self, value: V) -> tuple[datetime, datetime]:
        ts = self._ts(value)
        watermark = self._watermark()
        base = ts - self._wait
        if base > watermark:
            self.state.watermark_base = base
            self.state.system_time_of_max_event = self._now
            return ts, base
        return ts, watermark

    def on_notify(self) -> datetime:
        self.before_batch()
        return self._watermark()

    def on_eof(self) -> datetime:
        return UTC_MAX

    def to_system_utc(self, timestamp: datetime) -> datetime | None:
        st = self.state
        if st.watermark_base == UTC_MIN:
            return None  # nothing seen yet: no window can be open
        try:
            return st.system_time_of_max_event + (timestamp - st.watermark_base) + _SLACK
        except OverflowError:
            return None

    def snapshot(self) -> LiveClockState:
        return copy.deepcopy(self.state)


@dataclass
class LiveClock(Clock[V, LiveClockState], Generic[V]):
    """``EventClock``'s watermark with wake-ups at the wall-clock time a window can close."""

    ts_getter: Callable[[V], datetime]
    wait: timedelta
    now_getter: Callable[[], datetime] = _system_utc

    def build(self, resume_state: LiveClockState | None) -> _LiveClockLogic[V]:
        """A clock logic, resumed from a snapshot (also one of Bytewax's ``EventClock``)."""
        return _LiveClockLogic(self.ts_getter, self.wait, self.now_getter, resume_state)


def window_clock(
    ts_of: Callable[[V], datetime], *, replay: bool, wait: timedelta = timedelta(seconds=3)
) -> Clock[V, Any]:
    """The clock of a windowed step whose items carry their time (``ts_of(item)``, aware UTC)."""
    if replay:
        return EventClock(ts_of, timedelta(0), now_getter=_fixed_now, to_system_utc=_no_wakeup)
    return LiveClock(ts_of, wait)
