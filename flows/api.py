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
                       ``lpr_enabled``/``lpr_dedicated`` flags: ``.reads``, ``.passes``,
                       ``.alerts``, ``.plates`` (plate boxes of every frame read, for ``zone``)
``motion_incidents``   one ``motion.incident`` per span of motion of a camera
``track``              tracks per camera: ByteTrack for motion blobs or your detector's boxes,
                       plate boxes (``LprFront.plates``) followed by their text
``zone``               one ``zone.entered`` per tracked object entering a zone (plates: with
                       the ``plate``)
``line``               one ``line.crossed`` per tracked object crossing a directed line
``trajectories``       one ``plate.trajectory`` per vehicle seen "at A then B within T" or
                       "at N cameras within T" across a city (old/Mercosul forms joined)
``trajectory_alerts``  ``alert.triggered`` for trajectories of hotlisted plates
``to_sink``            merge streams of events, check each is a valid event, write to ``ctx.sink``
``event_clock``        the Bytewax clock for your own windowed steps (event time in replays)
=====================  ============================================================================

See ``docs/flows.md`` for the tutorial and the reference of every name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators.windowing import Clock

from gtvision.events import (
    EventBase,
    LineCrossed,
    MotionIncident,
    PlatePass,
    PlateTrajectory,
    ZoneEntered,
)
from gtvision.flows.context import FlowContext
from gtvision.flows.errors import EventCheck, user_step
from gtvision.flows.fronts import LprFront, VideoFront, lpr_front, video_front
from gtvision.flows.params import flow
from gtvision.operators import incidents
from gtvision.operators.clocks import window_clock
from gtvision.operators.geometry import Line, Zone
from gtvision.operators.hotlist import HotlistSource
from gtvision.operators.motion import MotionResult
from gtvision.operators.passes import PassConfig, utcnow
from gtvision.operators.tracking import (
    FrameObjects,
    TrackedObjects,
    TrackerConfig,
    motion_objects,
)
from gtvision.operators.tracking import track as track_objects
from gtvision.operators.trajectories import (
    Rule,
    Spread,
    Then,
    TrajectoryConfig,
    plate_trajectories,
    trajectory_alerts,
)
from gtvision.operators.zones import line_crossings, zone_entries
from gtvision.sources.decode import EPOCH

__all__ = [
    "EPOCH",
    "FlowContext",
    "FrameObjects",
    "Line",
    "LprFront",
    "Spread",
    "Then",
    "TrackedObjects",
    "VideoFront",
    "Zone",
    "event_clock",
    "flow",
    "line",
    "lpr_front",
    "motion_incidents",
    "motion_objects",
    "to_sink",
    "track",
    "trajectories",
    "trajectory_alerts",
    "video_front",
    "zone",
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
    """One ``motion.incident`` per span of motion of a camera.

    ``gap`` (default ``ctx.incident_gap``) is the least quiet time that ends one; a camera whose
    analysed frames are further apart (keyframe-only) gets 2.5 × its interval.
    """
    return incidents.motion_incidents(
        "incidents",
        results,
        gap if gap is not None else ctx.incident_gap,
        clock=event_clock(ctx, _ts),
    )


Objects = Stream[MotionResult] | Stream[FrameObjects] | Stream[TrackedObjects]


def _as_objects(
    item: MotionResult | FrameObjects | TrackedObjects,
) -> FrameObjects | TrackedObjects:
    return motion_objects(item) if isinstance(item, MotionResult) else item


@operator
def track(step_id: str, objects: Objects, ctx: FlowContext) -> Stream[TrackedObjects]:
    """Track each camera's objects: one :class:`TrackedObjects` per frame.

    ``objects``: ``video_front().results`` (motion blobs, nearby blobs merged; ByteTrack),
    ``lpr_front().plates`` (plate boxes, followed by their text: ``GTV_LPR_PASS_GAP_S``) or
    your own :class:`FrameObjects` (every analysed frame, also empty ones). Track once and give
    the result to several ``zone``/``line`` steps: tracking is the costly part.
    """
    found = op.map("objects", objects, _as_objects)  # type: ignore[arg-type]
    config = TrackerConfig(
        fps=ctx.settings.analysis_fps, plates=PassConfig(gap_s=ctx.settings.lpr_pass_gap_s)
    )
    return track_objects("bytetrack", found, config)


class _Shapes:
    """Zones/lines of a camera: the fixed ones given to the operator, else ``ctx.zones``."""

    def __init__(self, ctx: FlowContext, fixed: Sequence[Zone | Line] | None) -> None:
        self.ctx, self.fixed = ctx, tuple(fixed) if fixed is not None else None

    def __call__(self, camera_id: int) -> tuple[Zone | Line, ...]:
        return self.fixed if self.fixed is not None else self.ctx.zones(camera_id)


@operator
def zone(
    step_id: str,
    objects: Objects,
    ctx: FlowContext,
    zones: Sequence[Zone] | None = None,
) -> Stream[ZoneEntered]:
    """One ``zone.entered`` per tracked object entering a zone.

    ``objects``: what :func:`track` takes (then tracked here), or its output.
    ``zones`` default to the camera's ``cameras.zones``.
    """
    return zone_entries("entries", track("track", objects, ctx), _Shapes(ctx, zones))


@operator
def line(
    step_id: str,
    objects: Objects,
    ctx: FlowContext,
    lines: Sequence[Line] | None = None,
) -> Stream[LineCrossed]:
    """One ``line.crossed`` (``in``/``out``) per tracked object crossing a directed line."""
    return line_crossings("crossings", track("track", objects, ctx), _Shapes(ctx, lines))


class _Listed:
    """Passes whose plate matches a live hotlist entry of their city."""

    def __init__(self, hotlists: HotlistSource) -> None:
        self.hotlists = hotlists

    def __call__(self, p: PlatePass) -> bool:
        return self.hotlists.matcher(p.city_id).best(p.plate, utcnow()) is not None


@operator
def trajectories(
    step_id: str,
    passes: Stream[PlatePass],
    ctx: FlowContext,
    rules: Sequence[Rule],
    lateness: timedelta = timedelta(seconds=60),
    hotlists: HotlistSource | None = None,
) -> Stream[PlateTrajectory]:
    """One ``plate.trajectory`` per match of ``rules`` (:class:`Then`, :class:`Spread`).

    ``lateness``: how late (event time) a pass may arrive and still join its vehicle's matches.
    ``hotlists``: follow only plates on a live hotlist entry of their city (e.g.
    ``hotlists_for(ctx.settings)`` for the ``hotlists`` table).
    """
    config = TrajectoryConfig(
        lateness_s=lateness.total_seconds(),
        idle_s=None if ctx.replay else max(lateness.total_seconds(), 1.0),
    )
    followed = op.filter("listed", passes, _Listed(hotlists)) if hotlists is not None else passes
    return plate_trajectories("match", followed, rules, config)


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
