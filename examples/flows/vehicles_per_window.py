"""Vehicles per camera per 5 minutes: objects crossing the camera's lines (``cameras.zones``)."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import TumblingWindower, count_window

from gtvision.events import EventBase
from gtvision.flows.api import EPOCH, FlowContext, event_clock, line, to_sink, video_front

WINDOW = timedelta(minutes=5)  # windows start at whole multiples of 5 minutes


class VehicleCount(EventBase):
    """Vehicles that crossed a camera's lines in one window (``ts``: window start)."""

    identity: ClassVar[tuple[str, ...]] = ("ts",)
    type: Literal["vehicles.counted"] = "vehicles.counted"
    count: int


def build(ctx: FlowContext) -> Dataflow:
    """Count line crossings per camera in tumbling 5-minute windows."""
    df = Dataflow("vehicles_per_window")
    crossed = line("crossed", video_front("video", df, ctx).results, ctx)
    win, clock = TumblingWindower(WINDOW, EPOCH), event_clock(ctx, lambda e: e.ts)
    counts = count_window("count", crossed, clock, win, lambda e: f"{e.city_id}/{e.camera_id}")

    def counted(item: tuple[str, tuple[int, int]]) -> VehicleCount:
        (city, cam), (w, n) = item[0].split("/"), item[1]
        return VehicleCount(city_id=int(city), camera_id=int(cam), ts=EPOCH + w * WINDOW, count=n)

    to_sink("out", ctx, op.map("counted", counts.down, counted))
    return df
