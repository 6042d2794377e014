"""The same plate at two (or more) cameras within N minutes: one ``plate.trajectory`` each."""

from __future__ import annotations

from bytewax.dataflow import Dataflow
from pydantic import BaseModel, Field

from gtvision.flows.api import (
    FlowContext,
    Spread,
    flow,
    lpr_front,
    to_sink,
    trajectories,
    video_front,
)


class Params(BaseModel):
    """Time window, and the cameras to consider (default: all)."""

    within_min: float = Field(default=10, gt=0, description="time window, minutes")
    cameras: tuple[int, ...] = Field(default=(), description="only these cameras (default all)")


@flow(params=Params)
def build(ctx: FlowContext) -> Dataflow:
    """Plate passes and the trajectories of plates seen at two cameras within the window."""
    p = ctx.params_of(Params)
    df = Dataflow("same_plate_two_cameras")
    video = video_front("video", df, ctx)
    lpr = lpr_front("lpr", video.analysed, ctx)  # honours lpr_enabled / lpr_dedicated
    rule = Spread(min_cameras=2, within_s=p.within_min * 60, cameras=p.cameras)
    seen = trajectories("seen", lpr.passes, ctx, [rule])
    to_sink("out", ctx, seen, lpr.passes)
    return df
