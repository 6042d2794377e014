"""The front halves every video flow starts from: frames with motion, and the LPR pipeline.

Both are Bytewax ``@operator`` functions: their step ids nest under the ``step_id`` you give, so
each can be used more than once in a flow (two sources, two LPR configurations …).

::

    video_front: source ─┬─ frames ─ motion ─┬─ analysed (every analysed frame + motion)
                         │                   ├─ motion_gate ─ gated (frames with motion + tail)
                         │                   └─ results (MotionResult, light)
                         └─ camera events ───── health

    lpr_front: analysed ─ lpr cameras ─┬─ dedicated ───┬─ read_frames ─┬─ reads ─ plate_passes ─┐
                                       └─ motion_gate ─┘               │  ticks ─┘              │
                                                                       └─ plates       passes ──┤
                                                                             hotlist_alerts ─ alerts

Frames stay on the worker that decoded them: every step that touches a frame is a
non-exchanging ``map``/``filter``/``branch``. Motion detection runs inside the source partition
(:func:`~gtvision.operators.motion.analyze_at_source`), so detector state is part of the
source's recovery snapshots.

Each pass gets a ``direction`` when its camera has a line (``cameras.zones``): ``in``/``out``
when the plate crossed it, else ``toward``/``away`` (see :class:`_Direction`).

Per-camera LPR policy (from the ``cameras`` table, reloaded every ``GTV_HOTLIST_REFRESH_S``):
``lpr_enabled = false`` cameras are not read; ``lpr_dedicated = true`` cameras skip the motion
gate (every analysed frame is read). Cameras the table does not know are read behind the gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import FixedPartitionedSource

from gtvision.config import Settings
from gtvision.events import Alert, CameraEvent, Frame, PlatePass, PlateRead
from gtvision.flows.context import FlowContext
from gtvision.operators.geometry import crossing, lines_of
from gtvision.operators.hotlist import HotlistSource, PgHotlists, StaticHotlists, hotlist_alerts
from gtvision.operators.lpr import FrameReads, ReaderConfig, ReadRequest, read_frames
from gtvision.operators.motion import (
    GateStats,
    MotionFrame,
    MotionResult,
    analyze_at_source,
    motion,
    motion_gate,
)
from gtvision.operators.passes import CameraTick, PassConfig, plate_passes, tick_of
from gtvision.operators.refresh import Reloading
from gtvision.operators.tracking import FrameObjects, plate_objects
from gtvision.sources.decode import SourceItem

_CAMERA_FLAGS = "SELECT id, lpr_enabled, lpr_dedicated FROM cameras"


@dataclass(frozen=True)
class VideoFront:
    """Streams of :func:`video_front`."""

    analysed: Stream[MotionFrame]
    """Every analysed frame with its motion result (frames: keep these steps non-exchanging)."""
    gated: Stream[MotionFrame]
    """Frames with motion and the ``tail_s`` after it (what detectors should look at)."""
    results: Stream[MotionResult]
    """Motion of every analysed frame (light: safe to key and exchange)."""
    health: Stream[CameraEvent]
    """``camera.online|offline|stalled`` events of the source."""


@dataclass(frozen=True)
class LprFront:
    """Streams of :func:`lpr_front`."""

    reads: Stream[PlateRead]
    """Every plate read (one per plate per read frame, with a small JPEG crop)."""
    passes: Stream[PlatePass]
    """One ``lpr.detected`` per vehicle pass."""
    alerts: Stream[Alert]
    """One ``alert.triggered`` per pass matching a live hotlist entry of its city."""
    plates: Stream[FrameObjects]
    """The plate boxes (and texts) of every frame read, also frames without a plate, for
    ``track``/``zone``/``line`` (label ``plate``)."""


def _is_frame(item: SourceItem) -> bool:
    return isinstance(item, Frame)


def _result(item: MotionFrame) -> MotionResult:
    return item.result


@operator
def video_front(
    step_id: str,
    flow: Dataflow,
    ctx: FlowContext,
    source: FixedPartitionedSource[SourceItem, Any] | None = None,
) -> VideoFront:
    """Input of ``source`` (default ``ctx.source``), motion detection and the motion gate."""
    src = source if source is not None else ctx.source
    analyze_at_source(src, ctx.motion_settings)
    items = op.input("source", flow, src)
    split = op.branch("split", items, _is_frame)
    frames = cast(Stream[Frame], split.trues)
    health = cast(Stream[CameraEvent], split.falses)
    analysed = motion("motion", frames, ctx.motion_settings)
    gated = motion_gate("motion_gate", analysed, ctx.motion_settings, ctx.gate_stats)
    results = op.map("motion_results", analysed, _result)
    return VideoFront(analysed=analysed, gated=gated, results=results, health=health)


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

    def enabled(self, item: MotionFrame) -> bool:
        """True when the frame's camera is read for plates."""
        return self.flags(item.frame.camera_id).enabled

    def dedicated(self, item: MotionFrame) -> bool:
        """True when the frame's camera skips the motion gate."""
        return self.flags(item.frame.camera_id).dedicated


def hotlists_for(settings: Settings, refresh_s: float = 10.0) -> HotlistSource:
    """Postgres hotlists when a database is configured, else an empty hotlist."""
    if settings.database_url:
        return PgHotlists(settings.database_url, refresh_s)
    return StaticHotlists(())


def _gated_request(item: MotionFrame) -> ReadRequest:
    # tail frames (no motion of their own) are not retried at the larger detector size
    return ReadRequest(item.frame, retry=item.result.motion)


def _dedicated_request(item: MotionFrame) -> ReadRequest:
    return ReadRequest(item.frame)


def _tick(item: MotionFrame) -> CameraTick:
    return tick_of(item.frame)


class _Direction:
    """``lpr.detected`` gets its direction when its camera has a line (``ctx.zones``).

    The pass's path is the bottom centre of its first and last plate boxes: crossing a line
    gives ``in``/``out`` (the first line crossed, in the camera's order); otherwise the plate
    growing or shrinking by more than 15 % gives ``toward``/``away``.
    """

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx

    def __call__(self, p: PlatePass) -> PlatePass:
        lines = lines_of(list(self.ctx.zones(p.camera_id)))
        if not lines or p.first_box is None or p.last_box is None or not p.frame_size:
            return p
        w, h = p.frame_size
        a, b = p.first_box, p.last_box
        start, end = ((a.x1 + a.x2) / 2 / w, a.y2 / h), ((b.x1 + b.x2) / 2 / w, b.y2 / h)
        direction: str | None = next((d for ln in lines if (d := crossing(ln, start, end))), None)
        grow = (b.y2 - b.y1) / max(a.y2 - a.y1, 1e-6)
        if direction is None and abs(math.log(grow)) > math.log(1.15):
            direction = "toward" if grow > 1 else "away"
        return p.model_copy(update={"direction": direction}) if direction else p


@operator
def lpr_front(
    step_id: str,
    analysed: Stream[MotionFrame],
    ctx: FlowContext,
    hotlists: HotlistSource | None = None,
    pass_config: PassConfig | None = None,
) -> LprFront:
    """Plate reads, vehicle passes and hotlist alerts of ``analysed`` (``video_front().analysed``).

    ``hotlists`` defaults to the ``hotlists`` table (none without a database); ``pass_config`` to
    ``GTV_LPR_PASS_GAP_S`` with a wall-clock idle flush on live runs only.
    """
    settings = ctx.settings
    cameras = LprCameras(settings, settings.hotlist_refresh_s)
    lpr_frames = op.filter("lpr_cameras", analysed, cameras.enabled)
    route = op.branch("dedicated", lpr_frames, cameras.dedicated)
    # the gate of the gated cameras (its figures are not added to ctx.gate_stats: the video
    # front's gate already counts every frame)
    gated = motion_gate("motion_gate", route.falses, ctx.motion_settings, GateStats())
    to_read = op.merge(
        "to_read",
        op.map("dedicated_frames", route.trues, _dedicated_request),
        op.map("gated_frames", gated, _gated_request),
    )
    frames = read_frames(
        "read_plates",
        to_read,
        settings.models_path,
        device=settings.device,
        config=ReaderConfig.from_settings(settings),  # GTV_PLATE_FORMATS, GTV_THREADS
    )
    reads = op.flat_map("reads", frames, FrameReads.items)
    ticks = op.map("ticks", lpr_frames, _tick)
    config = pass_config or PassConfig(
        gap_s=settings.lpr_pass_gap_s, idle_s=None if ctx.replay else 30.0
    )
    found = op.map("direction", plate_passes("passes", reads, ticks, config), _Direction(ctx))
    hot = hotlists or hotlists_for(settings, settings.hotlist_refresh_s)
    alerts = hotlist_alerts("hotlist", found, hot)
    plates = op.map("plates", frames, plate_objects)
    return LprFront(reads=reads, passes=found, alerts=alerts, plates=plates)
