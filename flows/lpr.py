"""The ``lpr`` flow: one ``lpr.detected`` per vehicle pass and ``alert.triggered`` on hotlist hits.

::

    source ─┬─ frames ─┬─ lpr cameras ─┬─ dedicated ─────────────────────┬─ read_plates ─┐
            │          │               └─ motion ─ motion_gate ─ frame ──┘               │
            │          └─ ticks (camera, time) ──────────────────────────── plate_passes ◀┘
            │                                                                   │
            │                                                  hotlist_alerts ◀─┤
            └─ camera events ──────────────────────────────────────────────────┴─▶ sink

* Frames stay on the worker that decoded them: motion, gate and plate reading are
  non-exchanging steps. Only light values cross workers: plate reads (with a small JPEG crop),
  per-frame :class:`~gtvision.operators.passes.CameraTick` heartbeats, passes, alerts.
* Motion runs inside the source partitions (:func:`~gtvision.operators.motion.analyze_at_source`),
  so detector backgrounds and gate tails are part of the source's recovery snapshots.
* Cameras with ``lpr_enabled = false`` are not read. Dedicated LPR cameras
  (``lpr_dedicated = true``) skip the motion gate: every analysed frame is read. Both flags
  come from the ``cameras`` table (reloaded every ``GTV_HOTLIST_REFRESH_S`` seconds); cameras
  the table does not know (replays without ``--camera``, ``GTV_RTSP_URLS``) are gated.
* Frames the gate passes only for its tail (no motion of their own) are read without the
  detector's larger-size retry (:class:`~gtvision.operators.lpr.ReadRequest`).
* A pass ends ``GTV_LPR_PASS_GAP_S`` seconds (event time) after its last read.
* Hotlists come from the ``hotlists`` table when ``GTV_DATABASE_URL`` is set (reloaded in the
  background, so entries added through the API reach the running flow), else none.

Copy this file to write your own flow: ``build(ctx) -> Dataflow``, then
``gtvision replay VIDEO --flow mypkg.myflow:build``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from gtvision.config import Settings
from gtvision.events import CameraEvent, EventBase, Frame
from gtvision.flows.context import FlowContext
from gtvision.operators.hotlist import HotlistSource, PgHotlists, StaticHotlists, hotlist_alerts
from gtvision.operators.lpr import ReadRequest, read_plates
from gtvision.operators.motion import MotionFrame, analyze_at_source, motion, motion_gate
from gtvision.operators.passes import PassConfig, plate_passes, tick_of
from gtvision.operators.refresh import Reloading

_CAMERA_FLAGS = "SELECT id, lpr_enabled, lpr_dedicated FROM cameras"


@dataclass(frozen=True, slots=True)
class LprFlags:
    """Whether a camera is read for plates, and whether it skips the motion gate."""

    enabled: bool = True
    dedicated: bool = False


def _load_flags(dsn: str) -> dict[int, LprFlags]:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=5) as conn:
        rows = conn.execute(_CAMERA_FLAGS).fetchall()
    return {int(cid): LprFlags(bool(on), bool(ded)) for cid, on, ded in rows}


class LprCameras:
    """LPR flags per camera id (from the ``cameras`` table when there is a database)."""

    def __init__(self, settings: Settings, refresh_s: float = 10.0) -> None:
        dsn = settings.database_url
        self._flags: Reloading[dict[int, LprFlags]] | None = None
        if dsn:
            self._flags = Reloading(lambda: _load_flags(dsn), {}, refresh_s, "camera LPR flags")

    def flags(self, camera_id: int) -> LprFlags:
        """Flags of ``camera_id`` (defaults for unknown cameras)."""
        known = self._flags.get() if self._flags is not None else {}
        return known.get(camera_id, LprFlags())

    def enabled(self, frame: Frame) -> bool:
        """True when the frame's camera is read for plates."""
        return self.flags(frame.camera_id).enabled

    def dedicated(self, frame: Frame) -> bool:
        """True when the frame's camera skips the motion gate."""
        return self.flags(frame.camera_id).dedicated


def hotlists_for(settings: Settings, refresh_s: float = 10.0) -> HotlistSource:
    """Postgres hotlists when a database is configured, else an empty hotlist."""
    if settings.database_url:
        return PgHotlists(settings.database_url, refresh_s)
    return StaticHotlists(())


def _is_frame(item: Frame | CameraEvent) -> bool:
    return isinstance(item, Frame)


def _gated_request(item: MotionFrame) -> ReadRequest:
    # tail frames (no motion of their own) are not retried at the larger detector size
    return ReadRequest(item.frame, retry=item.result.motion)


def _dedicated_request(frame: Frame) -> ReadRequest:
    return ReadRequest(frame)


def build(
    ctx: FlowContext,
    hotlists: HotlistSource | None = None,
    passes: PassConfig | None = None,
) -> Dataflow:
    """Plate passes, hotlist alerts and camera health of every camera of ``ctx.source``."""
    settings = ctx.settings
    cameras = LprCameras(settings, settings.hotlist_refresh_s)
    flow = Dataflow(ctx.name)
    analyze_at_source(ctx.source, ctx.motion_settings)
    items = op.input("source", flow, ctx.source)
    split = op.branch("split", items, _is_frame)
    frames = cast(Stream[Frame], split.trues)
    health = cast(Stream[CameraEvent], split.falses)

    lpr_frames = op.filter("lpr_cameras", frames, cameras.enabled)
    route = op.branch("dedicated", lpr_frames, cameras.dedicated)
    moving = motion("motion", route.falses, ctx.motion_settings)
    gated = motion_gate("motion_gate", moving, ctx.motion_settings, ctx.gate_stats)
    to_read = op.merge(
        "to_read",
        op.map("dedicated_frames", route.trues, _dedicated_request),
        op.map("gated_frames", gated, _gated_request),
    )
    reads = read_plates("read_plates", to_read, settings.models_path, device=settings.device)

    ticks = op.map("ticks", lpr_frames, tick_of)
    gap = settings.lpr_pass_gap_s
    config = passes or PassConfig(gap_s=gap, idle_s=None if ctx.replay else 30.0)
    found = plate_passes("passes", reads, ticks, config)
    hot = hotlists or hotlists_for(settings, settings.hotlist_refresh_s)
    alerts = hotlist_alerts("hotlist", found, hot)
    events = op.merge(
        "events",
        cast(Stream[EventBase], found),
        cast(Stream[EventBase], alerts),
        cast(Stream[EventBase], health),
    )
    op.output("sink", events, ctx.sink)
    return flow
