"""The ``motion`` flow: motion incidents and camera health of every camera.

Written on the public flow API (:mod:`gtvision.flows.api`), like your own flows::

    source ─┬─ frames ─ motion ─ results ─ motion_incidents ─┐
            └─ camera events ─────────────────────────────────┴─▶ sink
"""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from gtvision.flows.api import FlowContext, motion_incidents, to_sink, video_front


def build(ctx: FlowContext) -> Dataflow:
    """Motion incidents and camera health events of every camera of ``ctx.source``."""
    flow = Dataflow(ctx.name)
    video = video_front("video", flow, ctx)
    incidents = motion_incidents("motion_incidents", video.results, ctx)
    to_sink("sink", ctx, incidents, video.health)
    return flow
