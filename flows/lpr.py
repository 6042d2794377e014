"""The ``lpr`` flow: one ``lpr.detected`` per vehicle pass and ``alert.triggered`` on hotlist hits.

Written on the public flow API (:mod:`gtvision.flows.api`); :func:`~gtvision.flows.api.lpr_front`
does the work (per-camera ``lpr_enabled``/``lpr_dedicated`` policy, motion gate, plate reading,
pass grouping in event time, hotlist alerts from the ``hotlists`` table)::

    source ─ video_front ─┬─ analysed ─ lpr_front ─┬─ passes ─┐
                          │                        └─ alerts ─┤
                          └─ health ──────────────────────────┴─▶ sink
"""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from gtvision.flows.api import FlowContext, lpr_front, to_sink, video_front
from gtvision.operators.hotlist import HotlistSource
from gtvision.operators.passes import PassConfig


def build(
    ctx: FlowContext,
    hotlists: HotlistSource | None = None,
    passes: PassConfig | None = None,
) -> Dataflow:
    """Plate passes, hotlist alerts and camera health of every camera of ``ctx.source``."""
    flow = Dataflow(ctx.name)
    video = video_front("video", flow, ctx)
    lpr = lpr_front("lpr", video.analysed, ctx, hotlists=hotlists, pass_config=passes)
    to_sink("sink", ctx, lpr.passes, lpr.alerts, video.health)
    return flow
