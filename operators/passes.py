"""One ``lpr.detected`` event per vehicle pass: group the plate reads of one vehicle.

Reads are keyed by camera (``"<city>/<camera>"``). Per camera, a private ``StatefulLogic`` keeps
the open passes. A read joins the open pass whose plate is within ``max_distance`` of it in the
OCR-confusion-aware distance (:func:`gtvision.operators.lpr.ocrdist.ocr_distance`, e.g. ``O``/``0``
costs 0.5) -- or whose last box overlaps the read's box (IoU >= ``join_iou``) within
``iou_window_s``, which keeps a badly misread frame of the same vehicle inside its pass.
Otherwise it opens a new pass, so several vehicles in view at once give separate passes.

**When a pass ends.** Observed event time drives it: a pass ends after ``gap_s`` seconds of the
camera's timeline were looked at without a read of it. Each camera has an
:class:`~gtvision.operators.timeline.ObservedClock` advanced by every analysed frame (its light
:class:`CameraTick` heartbeat, one per analysed frame from the source stream, so a pass also
ends when frames keep coming but plates do not) and by every read; a hole of frames the live
reader dropped under load counts as at most two frame intervals, so a vehicle still in view
across the hole keeps its pass (one ``lpr.detected`` per vehicle however loaded the flow is).
The camera's watermark, in observed seconds, is its latest read, or its latest tick minus a
lateness -- ticks travel on another branch of the dataflow than the reads (which wait for the
detector), so a tick may overtake the reads of earlier frames of the same source batch; the
lateness covers a source batch: ``tick_lateness_s`` or ``tick_lateness_frames`` frame
intervals, whichever is longer. A pass whose last read is more than ``gap_s`` behind the
watermark is emitted. Without dropped frames observed time is event time, so a replay emits
exactly what a live run would, whatever the processing speed.

A camera that had ticks keeps its state (its observed clock) between passes, so the frame
interval is known when a pass starts; the state goes when the camera is silent for ``idle_s``.

Two fallbacks: ``notify_at`` flushes every open pass of a camera when nothing at all arrived
for ``idle_s`` of wall-clock time (camera gone; it must exceed the longest processing stall of a
source batch, or a slow detector splits passes; replays set it to None and rely on event time
alone), and end of stream (EOF: the end of a replayed file, or a clean stop of a live run)
flushes all passes. A pass longer than ``max_pass_s`` (a parked car) is emitted and a new one
starts.

Late reads (older than the watermark allows) that match a pass emitted less than ``gap_s`` ago
are dropped instead of opening a duplicate pass.

The emitted :class:`PlatePass` has the voted plate (:mod:`gtvision.operators.lpr.vote`), first and
last seen, number of reads, the crop/box/models of the most confident read, and top-3
candidates. ``ts`` is ``first_seen`` and the id is the UUID5 of city, camera, first_seen and
plate (two vehicles can be first seen in the same frame), so replays are idempotent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulLogic

from gtvision.events import Box, Frame, PlatePass, PlateRead
from gtvision.operators.lpr.ocrdist import ocr_distance
from gtvision.operators.lpr.vote import Ballot, vote
from gtvision.operators.timeline import ObservedClock

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Wall-clock time, aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CameraTick:
    """Event-time heartbeat of a camera: 'frames up to ``ts`` have been seen'."""

    city_id: int
    camera_id: int
    ts: datetime


def tick_of(frame: Frame) -> CameraTick:
    """The light heartbeat of a frame (safe to exchange between workers)."""
    return CameraTick(city_id=frame.city_id, camera_id=frame.camera_id, ts=frame.ts)


@dataclass(frozen=True, slots=True)
class PassConfig:
    """Tuning of pass grouping (seconds are event time unless named wall-clock)."""

    gap_s: float = 1.5
    max_distance: float = 2.0
    join_iou: float = 0.3
    iou_window_s: float = 0.5
    tick_lateness_s: float = 3.5
    tick_lateness_frames: int = 10
    max_pass_s: float = 120.0
    idle_s: float | None = 30.0  # wall-clock; None: no wall-clock flush (replays)
    max_reads: int = 64

    def __post_init__(self) -> None:
        """Reject nonsensical values."""
        if (
            self.gap_s <= 0
            or (self.idle_s is not None and self.idle_s <= 0)
            or self.max_pass_s <= 0
        ):
            msg = f"pass times must be > 0, got gap_s={self.gap_s}, idle_s={self.idle_s}"
            raise ValueError(msg)
        if self.max_distance < 0 or self.max_reads < 1:
            msg = f"bad pass config: max_distance={self.max_distance}, max_reads={self.max_reads}"
            raise ValueError(msg)


@dataclass
class OpenPass:
    """Reads of one vehicle so far (crops dropped except the best read's)."""

    first_seen: datetime
    last_seen: datetime
    last_obs: float  # observed clock of the camera at the last read
    last_box: Box
    last_text: str
    last_frame: int
    text: str
    count: int
    best: PlateRead
    ballots: list[tuple[float, Ballot]] = field(default_factory=list)
    first_box: Box | None = None
    end_box: Box | None = None
    """Boxes of the earliest and the latest read in time (the pass's path in the picture)."""


@dataclass
class Tombstone:
    """A pass already emitted, kept for ``gap_s`` to absorb late reads."""

    text: str
    last_obs: float


@dataclass
class PassState:
    """Per-camera state: open passes, recently emitted passes, observed clock and marks."""

    open: list[OpenPass] = field(default_factory=list)
    closed: list[Tombstone] = field(default_factory=list)
    timeline: ObservedClock = field(default_factory=ObservedClock)
    pending: list[PlateRead] = field(default_factory=list)  # reads ahead of their frame's tick
    read_mark: float | None = None  # observed clock of the latest read
    tick_mark: float | None = None  # observed clock of the latest tick
    last_arrival: datetime | None = None

    def watermark(self, lateness: float) -> float | None:
        """Latest read, or latest tick minus ``lateness``, whichever is later (observed s)."""
        marks = [m for m in (self.read_mark, self.tick_mark) if m is not None]
        if self.tick_mark is not None:
            marks[-1] = self.tick_mark - lateness
        return max(marks) if marks else None


def build_pass(p: OpenPass) -> PlatePass:
    """The ``lpr.detected`` event of a finished pass."""
    result = vote([b for _, b in p.ballots])
    best = p.best
    return PlatePass(
        city_id=best.city_id,
        camera_id=best.camera_id,
        ts=p.first_seen,
        plate=result.text,
        confidence=result.confidence,
        first_seen=p.first_seen,
        last_seen=p.last_seen,
        reads=p.count,
        box=best.box,
        candidates=result.candidates(),
        crop_jpeg=best.crop_jpeg,
        models=dict(best.models),
        first_box=p.first_box,
        last_box=p.end_box,
        frame_size=best.frame_size,
    )


class _PassLogic(StatefulLogic[PlateRead | CameraTick, PlatePass, PassState]):
    def __init__(self, config: PassConfig, clock: Clock, resume: PassState | None) -> None:
        self.config = config
        self.clock = clock
        if resume is not None and not hasattr(resume, "timeline"):
            resume = None  # a snapshot of the former event-time state: start afresh
        self.state = resume if resume is not None else PassState()
        self.gap = config.gap_s
        self.iou_window = config.iou_window_s

    # -- bytewax hooks ------------------------------------------------------------------------
    def on_item(self, value: PlateRead | CameraTick) -> tuple[Iterable[PlatePass], bool]:
        st = self.state
        st.last_arrival = self.clock()
        if isinstance(value, PlateRead):
            last_tick = st.timeline.last_tick
            if last_tick is not None and value.ts > last_tick:
                st.pending.append(value)  # its frame's tick is still on its way
                return [], self._retain()
            return self._read(value), self._retain()
        st.timeline.advance(value.ts, tick=True)
        obs = st.timeline.at(value.ts)
        st.tick_mark = obs if st.tick_mark is None else max(st.tick_mark, obs)
        out = self._ready(value.ts)
        out.extend(self._expire(self._watermark()))
        return out, self._retain()

    def on_notify(self) -> tuple[Iterable[PlatePass], bool]:
        return self._ready(None) + self._flush(), StatefulLogic.DISCARD

    def on_eof(self) -> tuple[Iterable[PlatePass], bool]:
        return self._ready(None) + self._flush(), StatefulLogic.DISCARD

    def _watermark(self) -> float:
        st = self.state
        frames = st.timeline.interval() * self.config.tick_lateness_frames
        mark = st.watermark(max(self.config.tick_lateness_s, frames))
        return mark if mark is not None else float("-inf")

    def _ready(self, upto: datetime | None) -> list[PlatePass]:
        """Handle the held reads whose frames' ticks arrived (all of them: ``upto=None``)."""
        st = self.state
        ready = [r for r in st.pending if upto is None or r.ts <= upto]
        if not ready:
            return []
        st.pending = [r for r in st.pending if upto is not None and r.ts > upto]
        out: list[PlatePass] = []
        for read in sorted(ready, key=lambda r: r.ts):
            out.extend(self._read(read))
        return out

    def _read(self, read: PlateRead) -> list[PlatePass]:
        st = self.state
        st.timeline.advance(read.ts, tick=False)
        obs = st.timeline.at(read.ts)
        st.read_mark = obs if st.read_mark is None else max(st.read_mark, obs)
        out = self._expire(self._watermark())
        if read.text:
            out.extend(self._add(read, obs))
        return out

    def notify_at(self) -> datetime | None:
        # also when no pass is open: a camera silent for idle_s drops its timeline
        st, idle = self.state, self.config.idle_s
        if idle is None or st.last_arrival is None:
            return None
        return st.last_arrival + timedelta(seconds=idle)

    def snapshot(self) -> PassState:
        return copy.deepcopy(self.state)

    # -- grouping -----------------------------------------------------------------------------
    def _retain(self) -> bool:
        # A camera with ticks keeps its timeline between passes: a state rebuilt at the first
        # read of a pass knows no frame interval, so the first hole of dropped frames would
        # count in full and split that pass (seen on a loaded 2-process cluster: one read,
        # 1.6 s of dropped frames, then the rest of the pass). It goes at the idle flush.
        st = self.state
        keep = st.open or st.closed or st.pending or st.timeline.last_tick is not None
        return StatefulLogic.RETAIN if keep else StatefulLogic.DISCARD

    def _flush(self) -> list[PlatePass]:
        out = [build_pass(p) for p in self.state.open]
        self.state.open.clear()
        self.state.closed.clear()
        return out

    def _emit(self, p: OpenPass) -> PlatePass:
        self.state.closed.append(Tombstone(text=p.text, last_obs=p.last_obs))
        return build_pass(p)

    def _expire(self, watermark: float) -> list[PlatePass]:
        st = self.state
        done = [p for p in st.open if p.last_obs + self.gap < watermark]
        st.open = [p for p in st.open if p.last_obs + self.gap >= watermark]
        st.closed = [t for t in st.closed if t.last_obs + 2 * self.gap >= watermark]
        return [self._emit(p) for p in sorted(done, key=lambda p: p.first_seen)]

    def _late(self, read: PlateRead, obs: float) -> bool:
        for t in self.state.closed:
            near = obs <= t.last_obs + self.gap
            if near and ocr_distance(read.text, t.text) <= self.config.max_distance:
                return True
        return False

    def _match(self, read: PlateRead, obs: float) -> OpenPass | None:
        cfg = self.config
        best: tuple[float, float, OpenPass] | None = None
        for p in self.state.open:
            if obs > p.last_obs + self.gap:
                continue
            iou = read.box.iou(p.last_box)
            if p.last_frame == read.frame_index and iou < 0.1:
                continue  # another plate in the same frame is another vehicle
            dist = min(ocr_distance(read.text, p.text), ocr_distance(read.text, p.last_text))
            key = join_key(dist, iou, obs - p.last_obs <= self.iou_window, cfg)
            if key is None:
                continue
            if best is None or key < best[:2]:
                best = (*key, p)
        return best[2] if best is not None else None

    def _add(self, read: PlateRead, obs: float) -> list[PlatePass]:
        out: list[PlatePass] = []
        p = self._match(read, obs)
        max_pass = timedelta(seconds=self.config.max_pass_s)
        if p is not None and read.ts - p.first_seen > max_pass:
            self.state.open.remove(p)
            self.state.open.append(_new_pass(read, obs))  # the same vehicle, still there
            return [build_pass(p)]
        if p is None:
            if not self._late(read, obs):
                self.state.open.append(_new_pass(read, obs))
            return out
        _join(p, read, obs, self.config.max_reads)
        return out


def join_key(
    dist: float, iou: float, near_in_time: bool, config: PassConfig
) -> tuple[float, float] | None:
    """How well a read joins an open pass (lower is better), ``None`` when it does not.

    It joins when its text is within ``max_distance`` of the pass's, or its box overlaps the
    pass's last box (IoU >= ``join_iou``) within ``iou_window_s`` (``near_in_time``); text
    matches rank first, then overlap.
    """
    if dist > config.max_distance and (iou < config.join_iou or not near_in_time):
        return None
    return (dist if dist <= config.max_distance else config.max_distance + 1.0, -iou)


def _new_pass(read: PlateRead, obs: float) -> OpenPass:
    return OpenPass(
        first_seen=read.ts,
        last_seen=read.ts,
        last_obs=obs,
        last_box=read.box,
        last_text=read.text,
        last_frame=read.frame_index,
        text=read.text,
        count=1,
        best=read,
        ballots=[(read.confidence, Ballot.of(read))],
        first_box=read.box,
        end_box=read.box,
    )


def _join(p: OpenPass, read: PlateRead, obs: float, max_reads: int) -> None:
    if read.ts < p.first_seen:
        p.first_box = read.box
    if read.ts >= p.last_seen:
        p.end_box = read.box
    p.first_seen = min(p.first_seen, read.ts)
    p.last_seen = max(p.last_seen, read.ts)
    p.last_obs = max(p.last_obs, obs)
    p.last_box, p.last_text, p.last_frame = read.box, read.text, read.frame_index
    p.count += 1
    if read.confidence > p.best.confidence or (p.best.crop_jpeg is None and read.crop_jpeg):
        p.best = read
    p.ballots.append((read.confidence, Ballot.of(read)))
    if len(p.ballots) > max_reads:
        p.ballots.sort(key=lambda cb: (-cb[0], cb[1].text))
        del p.ballots[max_reads:]
    p.text = vote([b for _, b in p.ballots]).text


def _camera_key(item: PlateRead | CameraTick) -> str:
    return f"{item.city_id}/{item.camera_id}"


@operator
def plate_passes(
    step_id: str,
    reads: Stream[PlateRead] | Stream[PlateRead | CameraTick],
    ticks: Stream[CameraTick] | None = None,
    config: PassConfig | None = None,
    clock: Clock = utcnow,
) -> Stream[PlatePass]:
    """Group plate reads into vehicle passes; emit one :class:`PlatePass` when a pass ends."""
    cfg = config or PassConfig()
    merged: Stream[PlateRead | CameraTick] = (
        op.merge("merge", reads, ticks) if ticks is not None else reads  # type: ignore[assignment]
    )
    keyed = op.key_on("by_camera", merged, _camera_key)

    def build(resume: PassState | None) -> _PassLogic:
        return _PassLogic(cfg, clock, resume)

    passes = op.stateful("group", keyed, build)
    return op.key_rm("unkey", passes)
