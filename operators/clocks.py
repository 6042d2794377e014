"""Clocks of the windowed steps: event time only for replays, event time + wall clock live.

Every windowed step (motion incidents, your own ``fold_window``/``collect_window`` steps through
:func:`gtvision.flows.api.event_clock`) takes its Bytewax clock from :func:`window_clock`, so a
fix to how live windows wake up is made once, here.

* ``replay=True``: the watermark is the latest item time (no wall-clock component, no
  wake-ups): windows close on later items or at the end of the input, so a replay gives the same
  windows however fast it runs.
* ``replay=False``: Bytewax's :class:`~bytewax.operators.windowing.EventClock` with ``wait``: the
  watermark also advances with the wall clock, so a window closes ``wait`` after its end even
  when the camera goes quiet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bytewax.operators.windowing import Clock, EventClock

V = TypeVar("V")
_FIXED_NOW = datetime(1970, 1, 1, tzinfo=UTC)


def _fixed_now() -> datetime:
    return _FIXED_NOW


def _no_wakeup(_: datetime) -> datetime | None:
    return None


def window_clock(
    ts_of: Callable[[V], datetime], *, replay: bool, wait: timedelta = timedelta(seconds=3)
) -> Clock[V, Any]:
    """The clock of a windowed step whose items carry their time (``ts_of(item)``, aware UTC)."""
    if replay:
        return EventClock(ts_of, timedelta(0), now_getter=_fixed_now, to_system_utc=_no_wakeup)
    return EventClock(ts_of, wait)
