"""The public flow API: the building blocks analysts compose flows from (stable names).

A flow is a function ``build(ctx: FlowContext) -> Dataflow``::

    from bytewax.dataflow import Dataflow
    from gtvision.flows.api import FlowContext, lpr_front, to_sink, video_front

    def build(ctx: FlowContext) -> Dataflow:
        flow = Dataflow("plates")
        video = video_front("video", flow, ctx)
        lpr = lpr_front("lpr", video.analysed, ctx)
        to_sink("out", ctx, lpr.passes, lpr.alerts, video.health)
        return flow

Every block is a Bytewax ``@operator``: its first argument is a step id under which its inner
steps nest, so a block can be used more than once in one flow. Blocks:

=====================  ============================================================================
``video_front``        source → motion → gate: ``.analysed``, ``.gated``, ``.results``, ``.health``
``lpr_front``          plate reads, vehicle passes and hotlist alerts, honouring the per-camera
                       ``lpr_enabled``/``lpr_dedicated`` flags: ``.reads``, ``.passes``, ``.alerts``
``motion_incidents``   one ``motion.incident`` per span of motion of a camera
``to_sink``            merge streams of events, check each is a valid event, write to ``ctx.sink``
``event_clock``        the Bytewax clock for your own windowed steps (event time in replays)
=====================  ============================================================================

See ``docs/flows.md`` for the tutorial and the reference of every name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators.windowing import Clock

from gtvision.events import EventBase, MotionIncident
from gtvision.flows.context import FlowContext
from gtvision.flows.errors import EventCheck, user_step
from gtvision.flows.fronts import LprFront, VideoFront, lpr_front, video_front
from gtvision.flows.params import flow
from gtvision.operators import incidents
from gtvision.operators.clocks import window_clock
from gtvision.operators.motion import MotionResult

__all__ = [
    "FlowContext",
    "LprFront",
    "VideoFront",
    "event_clock",
    "flow",
    "lpr_front",
    "motion_incidents",
    "to_sink",
    "video_front",
]


def event_clock(
    ctx: FlowContext,
    ts_of: Callable[[Any], datetime],
    wait: timedelta = timedelta(seconds=3),
) -> Clock[Any, Any]:
    """The clock of a windowed step over items whose time is ``ts_of(item)`` (aware UTC).

    Replays (``ctx.replay``) use event time only, so a replay gives the same windows however
    fast it runs; live runs let windows also close ``wait`` after their end by the wall clock,
    so a quiet camera's last window still closes.
    """
    return window_clock(ts_of, replay=ctx.replay, wait=wait)


def _ts(result: MotionResult) -> datetime:
    return result.ts


@operator
def motion_incidents(
    step_id: str,
    results: Stream[MotionResult],
    ctx: FlowContext,
    gap: timedelta | None = None,
) -> Stream[MotionIncident]:
    """One ``motion.incident`` per span of motion of a camera (``gap``: ``ctx.incident_gap``)."""
    return incidents.motion_incidents(
        "incidents",
        results,
        gap if gap is not None else ctx.incident_gap,
        clock=event_clock(ctx, _ts),
    )


@operator
def to_sink(step_id: str, ctx: FlowContext, *ups: Stream[Any]) -> None:
    """Write the events of ``ups`` to ``ctx.sink``.

    Each item is checked first: anything that is not a valid :class:`~gtvision.events.EventBase`
    stops the flow with an error naming the step that produced it and the offending value.
    """
    if not ups:
        msg = f"to_sink({step_id!r}) needs at least one stream of events"
        raise TypeError(msg)
    checked = [
        op.map(f"check_{i}", up, EventCheck(user_step(up.stream_id))) for i, up in enumerate(ups)
    ]
    merged: Stream[EventBase] = op.merge("merge", *checked) if len(checked) > 1 else checked[0]
    op.output("sink", merged, ctx.sink)
