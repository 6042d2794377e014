"""Motion entering a polygon zone at night (22:00–06:00 in the city's own time zone)."""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from pydantic import BaseModel, Field

from gtvision.events import ZoneEntered
from gtvision.flows.api import FlowContext, Zone, flow, to_sink, video_front, zone


class Params(BaseModel):
    """The zone and the night's local hours."""

    zone: Zone | None = Field(default=None, description="the zone (default: the camera's zones)")
    from_hour: int = Field(default=22, ge=0, le=23, description="night starts (local hour)")
    to_hour: int = Field(default=6, ge=0, le=23, description="night ends (local hour)")


@flow(params=Params)
def build(ctx: FlowContext) -> Dataflow:
    """``zone.entered`` events whose local time is at night."""
    p = ctx.params_of(Params)
    df = Dataflow("night_zone_motion")
    video = video_front("video", df, ctx)
    entered = zone("entered", video.results, ctx, zones=[p.zone] if p.zone else None)

    def at_night(e: ZoneEntered) -> bool:
        hour = e.ts.astimezone(ctx.tz(e.city_id)).hour  # cities.timezone, else GTV_TIMEZONE
        if p.from_hour > p.to_hour:
            return hour >= p.from_hour or hour < p.to_hour
        return p.from_hour <= hour < p.to_hour

    to_sink("out", ctx, op.filter("at_night", entered, at_night))
    return df
