"""Camera feeds of the live relay: one demuxing reader per camera, its packets shared by viewers.

A :class:`CameraFeed` reads one camera (RTSP, or a local file looped in real time for the demo)
on a thread, **without decoding**. Every access unit becomes one Annex-B ``av.Packet``:

* keyframes carry SPS/PPS in-band (many cameras send them only in the SDP; a browser that
  joins mid-stream cannot decode an IDR without them), MP4 input is converted from
  length-prefixed NAL units with ffmpeg's ``h264_mp4toannexb`` filter;
* timestamps are one monotonic clock per feed across reconnects and file loops (RTP
  timestamps must not go back), anchored on the stream's own timestamps;
* the packets since the last keyframe (the current GOP) are kept, so a viewer who joins starts
  at once from that keyframe instead of waiting up to a GOP for the next one.

The same packet objects go to every viewer's :class:`PacketTrack`, which aiortc's RTP sender
packetizes as they are (H.264 passthrough: no decoder, no encoder per viewer). A viewer whose
browser offers no usable H.264 gets a :class:`~gtvision.web.livedecode.DecodedTrack` instead.

A camera that drops is reopened with back-off while viewers remain; the viewers see a pause.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gtvision.logs import redact as mask_url
from gtvision.sinks.backoff import Backoff
from gtvision.sources.decode import OPEN_TIMEOUT, RTSP_OPTIONS
from gtvision.sources.streamurl import pin
from gtvision.web.h264rtp import nal_units, packetize, parameter_sets, with_parameter_sets

log = logging.getLogger(__name__)
#: a GOP longer than this (packets or bytes) is not kept: late joiners wait for a keyframe
GOP_MAX_PACKETS = 600
GOP_MAX_BYTES = 16 * 1024 * 1024
#: a viewer more than this many packets behind restarts at the current GOP
QUEUE_MAX = 300


@dataclass(frozen=True, slots=True)
class Unit:
    """One access unit as the viewers get it."""

    packet: av.Packet[Any]
    keyframe: bool
    #: its RTP payloads (H.264 only), cut once for every viewer (:func:`packetize`)
    payloads: tuple[bytes, ...] = ()


class _Clock:
    """One monotonic output timeline for a feed, anchored on the stream's timestamps."""

    def __init__(self, time_base: Fraction) -> None:
        self.time_base = time_base
        self.tick = max(1, round(1 / (1000 * time_base)))  # about 1 ms
        self._t0 = time.monotonic()
        self._offset: int | None = None
        self.last = -1

    def reanchor(self) -> None:
        """A new connection or loop: its timestamps start from anywhere."""
        self._offset = None

    def out(self, pts: int | None) -> int:
        """The output timestamp of a packet with stream timestamp ``pts``."""
        now = round((time.monotonic() - self._t0) / self.time_base)
        if pts is None:
            value = max(now, self.last + self.tick)
        else:
            if self._offset is None:
                self._offset = max(now, self.last + self.tick) - pts
            value = pts + self._offset
            if value <= self.last:  # the camera's clock went back
                self._offset = self.last + self.tick - pts
                value = self.last + self.tick
        self.last = value
        return value


class CameraFeed:
    """One camera read once for every viewer of this process (see the module docstring)."""

    def __init__(
        self,
        camera_id: int,
        source: str | Path,
        container: Any,
        allow: Sequence[str] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self.allow = allow
        stream = container.streams.video[0]
        self.codec: str = stream.codec_context.name
        self.time_base: Fraction = Fraction(stream.time_base or Fraction(1, 90000))
        self.extradata: bytes = bytes(stream.codec_context.extradata or b"")
        self.ended = False
        self.receiving_since: datetime | None = None  # first packet of the current connection
        self.last_packet = 0.0  # time.monotonic() of the latest packet
        self._clock = _Clock(self.time_base)
        self._gop: list[Unit] = []
        self._gop_bytes = 0
        self._subscribers: list[Callable[[Unit | None], None]] = []
        self._stop = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._run, args=(container,), name=f"live-cam{camera_id}", daemon=True
        )
        self._thread.start()

    @property
    def tick(self) -> int:
        """About a millisecond in the feed's time base: the least step between two packets."""
        return self._clock.tick

    # ---- opening (blocking: call through asyncio.to_thread) ---------------------------------
    @staticmethod
    def open_container(source: str | Path, allow: Sequence[str] | None = None) -> Any:
        """Open ``source`` (an RTSP URL, or a local video file) and check it has video.

        With ``allow`` (``GTV_CAMERA_ALLOW_CIDRS``) the URL's host is resolved and checked now
        and the stream opened at the checked address (:func:`~gtvision.sources.streamurl.pin`;
        raises :class:`~gtvision.sources.streamurl.UnsafeUrl`), on every (re)connect.
        """
        if isinstance(source, Path):
            container = av.open(str(source))
        else:
            url = source if allow is None else pin(source, allow)
            container = av.open(url, options=dict(RTSP_OPTIONS), timeout=OPEN_TIMEOUT)
        if not container.streams.video:
            container.close()
            msg = f"{_shown(source)} has no video stream"
            raise ValueError(msg)
        return container

    # ---- the reader thread --------------------------------------------------------------------
    def _run(self, container: Any) -> None:
        backoff = Backoff(base_s=0.5, cap_s=10.0)
        while not self._stop.is_set():
            try:
                self._read(container)
                backoff.reset()
            except Exception as err:  # PyAV raises OSError subclasses, EOFError, ValueError
                log.warning(
                    "camera %s: live reader: %s", self.camera_id, describe(err, self.source)
                )
            finally:
                container.close()
            self._post(self._disconnected)
            while not self._stop.is_set():
                if self._stop.wait(backoff.next()):
                    break
                try:
                    container = self.open_container(self.source, self.allow)
                    break
                except Exception as err:
                    log.info(
                        "camera %s: live reopen failed: %s", self.camera_id, type(err).__name__
                    )
        self._post(self._finish)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop (gone after the app shut down: nothing to do)."""
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            self._stop.set()

    def _read(self, container: Any) -> None:
        stream = container.streams.video[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        h264 = stream.codec_context.name == "h264"
        avcc = h264 and extradata[:1] == b"\x01"  # MP4's length-prefixed NAL units
        bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream) if avcc else None
        sets = b"" if avcc else parameter_sets(nal_units(extradata))
        is_file = isinstance(self.source, Path)
        paced_from: float | None = None
        self._clock.reanchor()
        while not self._stop.is_set():
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return
                if packet.size == 0:
                    continue
                for out in bsf.filter(packet) if bsf is not None else (packet,):
                    data = bytes(out)
                    if h264 and not avcc:
                        found = parameter_sets(nal_units(data)) if out.is_keyframe else b""
                        sets = found or sets
                        data = with_parameter_sets(data, sets) if out.is_keyframe else data
                    # decode order: RTP timestamps must grow (cameras send no B-frames anyway)
                    ts = out.dts if out.dts is not None else out.pts
                    if is_file and ts is not None:
                        paced_from = self._pace(ts, paced_from)
                    unit = self._unit(data, ts, out.is_keyframe)
                    self._post(self._deliver, unit)
            if not is_file:
                return  # the stream ended: reconnect
            container.seek(0)  # loop the file
            self._clock.reanchor()
            paced_from = None

    def _pace(self, ts: int, origin: float | None) -> float:
        """Sleep until a file packet's time comes (real-time playback); returns the origin."""
        t = float(ts * self.time_base)
        if origin is None:
            return time.monotonic() - t
        due = origin + t
        while (delay := due - time.monotonic()) > 0 and not self._stop.wait(min(delay, 0.5)):
            pass
        return origin

    def _unit(self, data: bytes, pts: int | None, keyframe: bool) -> Unit:
        packet = av.Packet(data)
        packet.pts = packet.dts = self._clock.out(pts)
        packet.time_base = self.time_base
        return Unit(packet, keyframe, packetize(data) if self.codec == "h264" else ())

    # ---- on the event loop --------------------------------------------------------------------
    def _drop_gop(self) -> None:
        self._gop, self._gop_bytes = [], 0

    def _disconnected(self) -> None:
        self._drop_gop()  # the next GOP is a new stream's
        self.receiving_since = None

    def receiving(self, within_s: float) -> datetime | None:
        """Since when this connection delivers, if a packet came in the last ``within_s``."""
        if self.receiving_since is None or time.monotonic() - self.last_packet > within_s:
            return None
        return self.receiving_since

    def _deliver(self, unit: Unit) -> None:
        self.last_packet = time.monotonic()
        if self.receiving_since is None:
            self.receiving_since = datetime.now(UTC)
        if unit.keyframe:
            self._gop, self._gop_bytes = [unit], unit.packet.size
        elif self._gop:
            self._gop.append(unit)
            self._gop_bytes += unit.packet.size
            if len(self._gop) > GOP_MAX_PACKETS or self._gop_bytes > GOP_MAX_BYTES:
                self._drop_gop()
        for offer in list(self._subscribers):
            offer(unit)

    def _finish(self) -> None:
        self.ended = True
        for offer in list(self._subscribers):
            offer(None)
        self._subscribers.clear()

    def gop(self) -> list[Unit]:
        """The packets since the last keyframe (empty while none is kept)."""
        return list(self._gop)

    def subscribe(self, offer: Callable[[Unit | None], None]) -> None:
        """Send every next unit to ``offer`` (``None`` when the feed ends)."""
        if self.ended:
            offer(None)
        else:
            self._subscribers.append(offer)

    def unsubscribe(self, offer: Callable[[Unit | None], None]) -> None:
        """Stop sending to ``offer``."""
        if offer in self._subscribers:
            self._subscribers.remove(offer)

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._stop.is_set()

    def close(self) -> None:
        """Stop reading (the thread leaves at its next packet or read timeout)."""
        self._stop.set()


class PacketTrack(MediaStreamTrack):
    """One viewer's video: the feed's packets, starting at a keyframe, in a bounded queue."""

    kind = "video"

    def __init__(self, feed: CameraFeed) -> None:
        super().__init__()
        self._feed = feed
        self._queue: asyncio.Queue[Unit | None] = asyncio.Queue()
        self._tick = feed.tick
        self._last = -1
        self._synced = False
        self._started = False  # aiortc's own sender reads it: not with the fan-out

    def _start(self) -> None:
        self._started = True
        self._burst(self._feed.gop())
        self._feed.subscribe(self._offer)

    def _burst(self, gop: list[Unit]) -> None:
        """Queue the current GOP with its timestamps squeezed to just before now.

        Its frames are already late: the player shows them at once and continues live from
        the last one, instead of playing the GOP at its own pace behind real time.
        """
        if not gop:
            return
        self._synced = True
        top = gop[-1].packet.pts or 0
        for i, unit in enumerate(gop):
            squeezed = top - (len(gop) - 1 - i) * self._tick
            self._queue.put_nowait(Unit(self._copy(unit.packet, squeezed), unit.keyframe))

    @staticmethod
    def _copy(packet: av.Packet[Any], pts: int) -> av.Packet[Any]:
        out = av.Packet(bytes(packet))
        out.pts = out.dts = pts
        out.time_base = packet.time_base
        return out

    def _offer(self, unit: Unit | None) -> None:
        if unit is None:
            self._queue.put_nowait(None)
            return
        if self._queue.qsize() >= QUEUE_MAX:  # too slow: start again from the current GOP
            while not self._queue.empty():
                self._queue.get_nowait()
            self._synced = False
            self._burst(self._feed.gop())  # the feed's GOP already ends with ``unit``
            return
        if not self._synced and not unit.keyframe:
            return
        self._synced = True
        self._queue.put_nowait(unit)

    async def recv(self) -> av.Packet[Any]:
        """The next packet; timestamps kept strictly increasing for this viewer."""
        if self.readyState != "live":
            raise MediaStreamError
        if not self._started:
            self._start()
        unit = await self._queue.get()
        if unit is None:
            self.stop()
            raise MediaStreamError
        packet = unit.packet
        pts = packet.pts or 0
        if pts <= self._last:
            packet = self._copy(packet, self._last + self._tick)
        self._last = packet.pts or 0
        return packet

    def stop(self) -> None:
        """The viewer left (or the feed ended)."""
        super().stop()
        self._feed.unsubscribe(self._offer)


def _shown(source: str | Path) -> str:
    return str(source) if isinstance(source, Path) else mask_url(source)


def describe(err: BaseException, source: str | Path) -> str:
    """``Type: message`` of an error opening or reading ``source``, its password masked.

    PyAV puts the URL it was given, credentials included, into its error messages (the URL
    opened, which is not ``source`` when the host was pinned to its address): every URL
    password in the text is masked.
    """
    return mask_url(f"{type(err).__name__}: {err}")
