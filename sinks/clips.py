"""Event clips: per-camera rings of encoded packets, remuxed to MP4 without re-encoding.

The source's reader thread taps every demuxed video packet into the camera's
:class:`PacketRing` (``RINGS.ring(camera_id).push(packet)``; ``reset(stream)`` at each new
connection). The ring keeps ``retain_s`` seconds, always starting at a keyframe.

When an event is stored, :class:`ClipRecorder` waits until the ring has packets up to
``event.ts + post_roll``, takes the packets from the last keyframe at or before
``event.ts - pre_roll`` to that point, remuxes them into an MP4 (``add_stream_from_template``,
timestamps rebased to 0, no decoding), uploads it as ``city/camera/YYYY/MM/DD/<event id>.mp4``
and calls ``on_clip(event_id, key)`` (the Postgres sink then fills ``events.clip_key``).

The ring registry is per process: clips need the camera's reader in the same process as the
sink partition that stores its events (true for ``gtvision run -w N`` in one process).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import av

from gtvision import metrics
from gtvision.events import EventBase
from gtvision.sinks.objects import ObjectStore, object_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Packet:
    ts: datetime
    data: bytes
    pts: int | None
    dts: int | None
    duration: int | None
    keyframe: bool
    seq: int = 0  # position in the ring's whole history (never reused)
    gen: int = 0  # connection (``reset``) the packet belongs to


class PacketRing:
    """Encoded packets of one camera for the last ``retain_s`` seconds (thread-safe)."""

    def __init__(self, retain_s: float = 40.0) -> None:
        self.retain = timedelta(seconds=retain_s)
        self._lock = threading.Lock()
        self._packets: deque[_Packet] = deque()
        self._keys: deque[datetime] = deque()
        self._time_base: Fraction | None = None
        self._pts0: int | None = None
        self._anchor: datetime | None = None
        self._seq = 0
        self.generation = 0
        self.city_id = 0
        self._retired: deque[_Packet] = deque()
        self._templates: dict[int, Any] = {}

    def reset(self, stream: Any, city_id: int | None = None) -> None:
        """A new connection (or file) starts: copy its codec parameters, forget old packets.

        The parameters are copied into a private never-written output container, so the
        template outlives the input container the reader closes on reconnect. The previous
        connection's packets stay readable through :meth:`after` until the next reset, so a
        recorder polling the ring can finish its segment.
        """
        holder = av.open(io.BytesIO(), mode="w", format="mp4")
        template = holder.add_stream_from_template(stream)
        with self._lock:
            self._retired = self._packets
            self._packets = deque()
            self._keys.clear()
            self.generation += 1
            if city_id is not None:
                self.city_id = city_id
            self._templates = {g: t for g, t in self._templates.items() if g == self.generation - 1}
            self._templates[self.generation] = (holder, template)  # the holder keeps it alive
            self._time_base = stream.time_base
            self._pts0, self._anchor = None, None

    def _ts(self, pts: int | None, now: datetime) -> datetime:
        if pts is None or self._time_base is None:
            return now
        if self._pts0 is None or self._anchor is None or pts < self._pts0:
            self._pts0, self._anchor = pts, now
        return self._anchor + timedelta(seconds=float((pts - self._pts0) * self._time_base))

    def push(self, packet: Any, ts: datetime | None = None) -> None:
        """Add a demuxed packet; ``ts`` is its capture time (default: from PTS, anchored now)."""
        if packet.size == 0 or not self._templates:
            return
        with self._lock:
            when = ts or self._ts(packet.pts, datetime.now(UTC))
            key = bool(packet.is_keyframe)
            if not self._packets and not key:
                return  # a ring starts at a keyframe
            data = bytes(packet)
            self._seq += 1
            self._packets.append(
                _Packet(
                    when,
                    data,
                    packet.pts,
                    packet.dts,
                    packet.duration,
                    key,
                    self._seq,
                    self.generation,
                )
            )
            if key:
                self._keys.append(when)
            self._trim(when - self.retain)

    def _trim(self, horizon: datetime) -> None:
        # drop whole GOPs while the next keyframe is still at or before the horizon (O(1) amortised)
        while len(self._keys) >= 2 and self._keys[1] <= horizon:
            self._keys.popleft()
            self._packets.popleft()
            while self._packets and not self._packets[0].keyframe:
                self._packets.popleft()

    @property
    def oldest(self) -> datetime | None:
        """Capture time of the oldest packet kept (a keyframe)."""
        with self._lock:
            return self._packets[0].ts if self._packets else None

    @property
    def latest(self) -> datetime | None:
        """Capture time of the newest packet."""
        with self._lock:
            return self._packets[-1].ts if self._packets else None

    def after(self, seq: int) -> tuple[list[_Packet], dict[int, Any]]:
        """Packets numbered above ``seq`` (previous connection's first) and templates by gen."""
        with self._lock:
            out: list[_Packet] = []
            for packets in (self._packets, self._retired):
                for p in reversed(packets):
                    if p.seq <= seq:
                        break
                    out.append(p)
            templates = {g: t for g, (_, t) in self._templates.items()}
        out.reverse()
        return out, templates

    def cut(self, start: datetime, end: datetime) -> tuple[list[_Packet], Any]:
        """Packets from the last keyframe at or before ``start`` up to ``end``, and the template.

        A window that starts before the current connection's first packet is cut from the
        previous connection when it still holds packets after ``start`` (an event just before a
        reconnect, or at the end of a demo loop).
        """
        with self._lock:
            packets, gen = list(self._packets), self.generation
            old = self._retired
            if old and old[-1].ts >= start and (not packets or packets[0].ts > start):
                packets, gen = list(old), gen - 1
            template = self._templates[gen][1] if gen in self._templates else None
        first = 0
        for i, p in enumerate(packets):
            if p.ts > start:
                break
            if p.keyframe:
                first = i
        while first < len(packets) and not packets[first].keyframe:
            first += 1
        return [p for p in packets[first:] if p.ts <= end], template


def mux_packet(out: Any, stream: Any, p: _Packet, base: int, time_base: Fraction) -> None:
    """Mux one tapped packet (in ``time_base``) into ``stream`` of ``out``, moved back ``base``."""
    pkt = av.Packet(p.data)
    pkt.stream = stream
    pkt.time_base = time_base
    pkt.pts = None if p.pts is None else p.pts - base
    pkt.dts = None if p.dts is None else p.dts - base
    if p.duration:
        pkt.duration = p.duration
    pkt.is_keyframe = p.keyframe
    out.mux(pkt)


def remux_mp4(packets: list[_Packet], template: Any) -> bytes:
    """An MP4 of ``packets`` (first one a keyframe), timestamps rebased to 0, no re-encoding."""
    if not packets or not packets[0].keyframe:
        msg = f"a clip must start with a keyframe, got {len(packets)} packets"
        raise ValueError(msg)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream_from_template(template)
        base = min(p.dts if p.dts is not None else (p.pts or 0) for p in packets)
        for p in packets:
            mux_packet(out, stream, p, base, template.time_base)
    return buf.getvalue()


class RingRegistry:
    """The rings of this process, by camera id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rings: dict[int, PacketRing] = {}
        self.retain_s = 40.0

    def ring(self, camera_id: int) -> PacketRing:
        """The ring of ``camera_id`` (created on first use)."""
        with self._lock:
            ring = self._rings.get(camera_id)
            if ring is None:
                ring = self._rings[camera_id] = PacketRing(self.retain_s)
            return ring

    def need(self, seconds: float) -> None:
        """Make every ring (present and future) keep at least ``seconds`` of packets."""
        with self._lock:
            self.retain_s = max(self.retain_s, seconds)
            for ring in self._rings.values():
                ring.retain = max(ring.retain, timedelta(seconds=self.retain_s))

    def get(self, camera_id: int) -> PacketRing | None:
        """The ring of ``camera_id`` if a source taps one."""
        with self._lock:
            return self._rings.get(camera_id)

    def snapshot(self) -> dict[int, PacketRing]:
        """The rings tapped right now, by camera id."""
        with self._lock:
            return dict(self._rings)

    def drop(self, camera_id: int) -> None:
        """Forget a removed camera."""
        with self._lock:
            self._rings.pop(camera_id, None)


RINGS = RingRegistry()


@dataclass(frozen=True, slots=True)
class _Request:
    event: EventBase
    start: datetime
    end: datetime
    deadline: float


class ClipRecorder:
    """Cuts, uploads and links clips of stored events on a background thread."""

    def __init__(
        self,
        store: ObjectStore,
        on_clip: Callable[[str, str], None],
        *,
        pre_roll_s: float = 5.0,
        post_roll_s: float = 5.0,
        rings: RingRegistry = RINGS,
        poll_s: float = 0.2,
    ) -> None:
        self._store = store
        self._on_clip = on_clip
        self._pre = timedelta(seconds=pre_roll_s)
        self._post = timedelta(seconds=post_roll_s)
        self._rings = rings
        self._poll_s = poll_s
        self._pending: list[_Request] = []
        self._asked: dict[str, None] = {}
        # emission delay margin: incidents are emitted after they end, passes after a gap
        rings.need(pre_roll_s + post_roll_s + 30.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.done: deque[str] = deque(maxlen=1000)  # ids of the latest clips made
        self._thread = threading.Thread(target=self._run, name="clip-recorder", daemon=True)
        self._thread.start()

    def request(self, event: EventBase) -> bool:
        """Queue a clip of ``event`` if its camera is tapped here; True when queued."""
        if self._rings.get(event.camera_id) is None:
            return False
        with self._lock:
            if event.id in self._asked:
                return False  # re-emitted event: its clip is already queued or made
            self._asked[event.id] = None
            while len(self._asked) > 10_000:
                self._asked.pop(next(iter(self._asked)))
        wait = self._post.total_seconds() + 30.0  # give up waiting for packets after this
        req = _Request(event, event.ts - self._pre, event.ts + self._post, time.monotonic() + wait)
        with self._lock:
            self._pending.append(req)
        return True

    @property
    def pending(self) -> int:
        """Clips not cut yet."""
        with self._lock:
            return len(self._pending)

    def _due(self) -> list[_Request]:
        now = time.monotonic()
        with self._lock:
            due: list[_Request] = []
            keep: list[_Request] = []
            for req in self._pending:
                ring = self._rings.get(req.event.camera_id)
                latest = ring.latest if ring else None
                ready = latest is not None and latest >= req.end
                (due if ready or now >= req.deadline or ring is None else keep).append(req)
            self._pending = keep
        return due

    def _make(self, req: _Request) -> None:
        ring = self._rings.get(req.event.camera_id)
        if ring is None:
            return
        packets, template = ring.cut(req.start, req.end)
        if not packets or template is None:
            log.warning("no packets for the clip of event %s: not recorded", req.event.id)
            return
        data = remux_mp4(packets, template)
        key = object_key(req.event, "mp4")
        self._store.put(key, data, "video/mp4")
        self._on_clip(req.event.id, key)
        self.done.append(req.event.id)
        metrics.CLIPS.inc()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            for req in self._due():
                try:
                    self._make(req)
                except Exception:
                    metrics.UPLOAD_FAILURES.labels("clip").inc()
                    log.exception("clip of event %s failed", req.event.id)

    def close(self, flush: bool = True) -> None:
        """Stop the thread; with ``flush``, cut what is pending with the packets at hand."""
        self._stop.set()
        self._thread.join(timeout=10)
        if flush:
            with self._lock:
                pending, self._pending = self._pending, []
            for req in pending:
                try:
                    self._make(req)
                except Exception:
                    metrics.UPLOAD_FAILURES.labels("clip").inc()
                    log.exception("clip of event %s failed", req.event.id)
