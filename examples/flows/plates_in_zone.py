"""Plates seen in a zone: one ``zone.entered`` per vehicle whose plate enters it, with the plate."""

from __future__ import annotations

from bytewax.dataflow import Dataflow
from pydantic import BaseModel, Field

from gtvision.flows.api import FlowContext, Zone, flow, lpr_front, to_sink, video_front, zone


class Params(BaseModel):
    """The zone (default: the camera's own zones, ``cameras.zones``)."""

    zone: Zone | None = Field(default=None, description="the zone (default: the camera's zones)")


@flow(params=Params)
def build(ctx: FlowContext) -> Dataflow:
    """``zone.entered`` (label ``plate``, ``plate`` = the track's best read) per plate entering."""
    p = ctx.params_of(Params)
    df = Dataflow("plates_in_zone")
    video = video_front("video", df, ctx)
    lpr = lpr_front("lpr", video.analysed, ctx)
    seen = zone("seen", lpr.plates, ctx, zones=[p.zone] if p.zone else None)
    to_sink("out", ctx, seen, lpr.passes)
    return df
