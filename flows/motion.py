"""The ``motion`` flow, and the reusable front half of every video flow.

::

    source ─┬─ frames ─ motion ─┬─ motion_gate ─▶ gated frames (LPR and others go on from here)
            │                   └─ results ─ motion_incidents ─┐
            └─ camera events ──────────────────────────────────┴─▶ sink

``video_front`` returns the streams (gated frames with their motion, all motion results, camera
health) so other flows (``flows/lpr.py``) start from the same gate. Frames stay on the worker
that decoded them: every step up to the gate is a non-exchanging ``map``/``filter``. Detection
itself runs inside the source partition when the source takes analyzers (file and RTSP sources),
so the motion state is in the source's recovery snapshot and a resumed replay gives the same
incidents as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from gtvision.events import CameraEvent, EventBase, Frame
from gtvision.flows.context import FlowContext
from gtvision.operators.incidents import motion_incidents
from gtvision.operators.motion import (
    MotionFrame,
    MotionResult,
    analyze_at_source,
    motion,
    motion_gate,
)


@dataclass(frozen=True)
class VideoFront:
    """Streams every video flow starts from."""

    gated: Stream[MotionFrame]
    results: Stream[MotionResult]
    health: Stream[CameraEvent]


def _is_frame(item: Frame | CameraEvent) -> bool:
    return isinstance(item, Frame)


def _result(item: MotionFrame) -> MotionResult:
    return item.result


def video_front(flow: Dataflow, ctx: FlowContext) -> VideoFront:
    """Input, motion detection and motion gate of ``ctx.source``."""
    analyze_at_source(ctx.source, ctx.motion_settings)
    items = op.input("source", flow, ctx.source)
    split = op.branch("split", items, _is_frame)
    frames = cast(Stream[Frame], split.trues)
    health = cast(Stream[CameraEvent], split.falses)
    moving = motion("motion", frames, ctx.motion_settings)
    gated = motion_gate("motion_gate", moving, ctx.motion_settings, ctx.gate_stats)
    results = op.map("motion_results", moving, _result)
    return VideoFront(gated=gated, results=results, health=health)


def build(ctx: FlowContext) -> Dataflow:
    """Motion incidents and camera health events of every camera of ``ctx.source``."""
    flow = Dataflow(ctx.name)
    front = video_front(flow, ctx)
    incidents = motion_incidents(
        "motion_incidents", front.results, ctx.incident_gap, replay=ctx.replay
    )
    events = op.merge(
        "events", cast(Stream[EventBase], incidents), cast(Stream[EventBase], front.health)
    )
    op.output("sink", events, ctx.sink)
    return flow
