"""Passthrough RTP for many viewers: packets cut once per camera, per viewer only SRTP and a send.

aiortc's sender handles every packet of every viewer in Python objects: an ``RtpPacket``, its
header extensions (``abs-send-time`` from a ``datetime``), ``serialize``, the DTLS transport's
``_send_rtp``, ICE's ``sendto`` and one ``sendto`` system call per packet, after one task wake
per viewer and frame. That made an added passthrough viewer cost about half of the camera's
first viewer (``bench/webrtc.py``). For a passthrough viewer :func:`attach` replaces aiortc's RTP
loop (``RTCRtpSender._run_rtp``) with an :class:`RtpWriter`:

* the payloads are the feed's (``Unit.payloads``, cut once by
  :func:`~gtvision.web.h264rtp.packetize` for every viewer);
* the viewer's header is one ``struct`` call per packet (sequence number, timestamp, SSRC,
  marker), the header extensions (``mid``, ``abs-send-time``, as aiortc writes them) one block
  per frame;
* SRTP with the viewer's DTLS-SRTP session (libsrtp through pylibsrtp, as aiortc does);
* one ``sendmsg`` with UDP segmentation offload (``UDP_SEGMENT``) per run of equal-size packets
  of a frame on the ICE pair's socket, instead of one system call per packet (one ``sendto`` per
  packet where the kernel refuses it);
* it runs in the feed's delivery callback: no task wakes per viewer and frame.

Everything else stays aiortc's: negotiation, DTLS, ICE and its consent checks, RTCP (sender
reports from the counters this writer keeps, receiver reports, PLI), stop. A NACK is answered
from this writer's history (RTX when negotiated).

It relies on these aiortc and aioice internals (aiortc is pinned in ``pyproject.toml``):
``RTCRtpSender._run_rtp``/``_retransmit``/``_rtx_ssrc``, the sender's ``__rtp_started``,
``__rtp_exited`` and report counters, ``RTCDtlsTransport._tx_srtp``, ``RTCIceTransport.
_connection`` and aioice's ``Connection._nominated``. When one is missing, or the ICE route is
not a plain UDP socket (a TURN relay), the viewer gets aiortc's own loop unchanged
(:class:`~gtvision.web.livefeed.PacketTrack`); ``gtvision_live_fanout_viewers_total`` says which.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections import deque
from typing import Any

from aioice.ice import StunProtocol
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket, wrap_rtx

from gtvision import metrics
from gtvision.web.livefeed import CameraFeed, Unit
from gtvision.web.rtpsend import Outbox

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHII")
_EXTENSION = struct.Struct("!HH")
#: frames kept to answer NACKs (aiortc keeps 128 packets: ~0.6 s at 2 Mbit/s; this ~2.5 s)
HISTORY_FRAMES = 64
_SENDER = "_RTCRtpSender__"
_PRIVATE = ("rtp_started", "rtp_exited", "ntp_timestamp", "rtp_timestamp")
_COUNTERS = ("octet_count", "packet_count")
_NTP_EPOCH_S = 2208988800  # 1900-01-01 to 1970-01-01
_PROBE = 0xA5C3E7  # an abs-send-time value, to find where it sits in the extension block


def ntp_now() -> int:
    """The time as a 64-bit NTP timestamp (aiortc's ``clock.current_ntp_time``, cheaper)."""
    seconds, ns = divmod(time.time_ns(), 1_000_000_000)
    return ((seconds + _NTP_EPOCH_S) << 32) | ((ns << 32) // 1_000_000_000)


class ExtensionBlock:
    """A viewer's RTP header extension block: its ``mid``, and ``abs-send-time`` per frame.

    Written by aiortc's own ``HeaderExtensionsMap`` once, with a probe value; each frame then
    only puts its 3-byte send time where the probe was.
    """

    def __init__(self, extensions: HeaderExtensionsMap, mid: str | None) -> None:
        values = HeaderExtensions()
        values.mid = mid
        values.abs_send_time = _PROBE
        profile, value = extensions.set(values)
        block = _EXTENSION.pack(profile, len(value) >> 2) + value if value else b""
        at = block.find(_PROBE.to_bytes(3, "big"))
        self._head, self._tail = (block, b"") if at < 0 else (block[:at], block[at + 3 :])
        self._timed = at >= 0

    def at(self, ntp: int) -> bytes:
        """The block for a frame sent at ``ntp``."""
        if not self._timed:
            return self._head
        return self._head + ((ntp >> 14) & 0x00FFFFFF).to_bytes(3, "big") + self._tail


def route_of(sender: Any) -> Outbox | None:
    """The outbox of a connected aiortc sender (``None``: its ICE pair is not a UDP socket)."""
    dtls = sender.transport
    srtp = getattr(dtls, "_tx_srtp", None)
    connection = getattr(getattr(dtls, "transport", None), "_connection", None)
    pair = getattr(connection, "_nominated", {}).get(1)
    if srtp is None or pair is None or type(pair.protocol) is not StunProtocol:
        return None
    transport = pair.protocol.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None:
        return None
    own = socket.socket(fileno=os.dup(sock.fileno()))  # the same socket, closed on our own
    own.setblocking(False)
    return Outbox(own, tuple(pair.remote_addr), srtp)


def supported(sender: Any) -> bool:
    """Whether this aiortc's sender has what :func:`attach` replaces and updates."""
    names = [_SENDER + n for n in (*_PRIVATE, *_COUNTERS)] + ["_run_rtp", "_retransmit"]
    return all(hasattr(sender, n) for n in names) and hasattr(sender, "_rtx_ssrc")


def attach(sender: Any, feed: CameraFeed) -> bool:
    """Send ``feed`` to ``sender``'s viewer through an :class:`RtpWriter` once connected.

    ``sender`` is the aiortc sender of a passthrough viewer (its track a ``PacketTrack``,
    its codec H.264). Returns ``False``, leaving aiortc's loop in place, when this aiortc lacks
    what the writer needs.
    """
    if not supported(sender):
        metrics.LIVE_FANOUT.labels("aiortc").inc()
        log.warning("aiortc's RTP sender is not the one the fan-out knows: its own loop is used")
        return False
    aiortc_send, aiortc_run = sender.send, sender._run_rtp

    async def send(parameters: Any) -> None:
        async def run(codec: Any) -> None:
            outbox = route_of(sender)
            if outbox is None:
                metrics.LIVE_FANOUT.labels("aiortc").inc()
                await aiortc_run(codec)
                return
            metrics.LIVE_FANOUT.labels("fanout").inc()
            writer = RtpWriter(sender, feed, parameters, outbox)
            setattr(sender, "_retransmit", writer.retransmit)  # noqa: B010 (instance override)
            await writer.run()

        setattr(sender, "_run_rtp", run)  # noqa: B010 (aiortc's send() starts it)
        await aiortc_send(parameters)

    setattr(sender, "send", send)  # noqa: B010
    return True


class RtpWriter:
    """One viewer's passthrough RTP stream (see the module docstring)."""

    def __init__(self, sender: Any, feed: CameraFeed, parameters: Any, outbox: Outbox) -> None:
        self._sender = sender
        self._feed = feed
        self._outbox = outbox
        codec = parameters.codecs[0]
        self._pt: int = codec.payloadType
        self._rtx_pt: int | None = next(
            (
                c.payloadType
                for c in parameters.codecs
                if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == self._pt
            ),
            None,
        )
        self._rtx_seq = random_sequence_number()
        self._ssrc: int = sender._ssrc
        self._mid: str | None = parameters.muxId
        self._extensions = HeaderExtensionsMap()
        self._extensions.configure(parameters)
        self._block = ExtensionBlock(self._extensions, self._mid)
        self._seq = random_sequence_number()
        self._origin = int.from_bytes(os.urandom(4), "big")
        self._num = feed.time_base.numerator * 90000
        self._den = feed.time_base.denominator
        self._tick = feed.tick
        self._last = -1
        self._synced = False
        self._octets = self._packets = 0
        self._history: deque[tuple[int, int, tuple[bytes, ...]]] = deque(maxlen=HISTORY_FRAMES)
        self._done: asyncio.Future[None] | None = None

    def _private(self, name: str) -> Any:
        return getattr(self._sender, _SENDER + name)

    async def run(self) -> None:
        """Send from the kept GOP on, until the feed ends or aiortc stops the sender."""
        self._private("rtp_started").set()
        self._done = asyncio.get_running_loop().create_future()
        try:
            self._burst(self._feed.gop())
            self._feed.subscribe(self.offer)
            await self._done
        except asyncio.CancelledError:  # aiortc's stop(), as its own loop
            pass
        finally:
            self._feed.unsubscribe(self.offer)
            self._outbox.sock.close()
            metrics.LIVE_FANOUT_PACKETS.labels("sent").inc(self._outbox.sent)
            metrics.LIVE_FANOUT_PACKETS.labels("dropped").inc(self._outbox.dropped)
            track = self._sender.track
            if track is not None:
                track.stop()
            self._private("rtp_exited").set()

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _burst(self, gop: list[Unit]) -> None:
        """The kept GOP at once, its timestamps squeezed to just before now (as PacketTrack)."""
        if not gop:
            return
        self._synced = True
        top = gop[-1].packet.pts or 0
        for i, unit in enumerate(gop):
            self._send(unit, top - (len(gop) - 1 - i) * self._tick)

    def offer(self, unit: Unit | None) -> None:
        """The feed's next unit (``None``: the feed ended); sent before this returns."""
        if unit is None:
            self._finish()
            return
        if not self._synced:
            if not unit.keyframe:
                return
            self._synced = True
        try:
            self._send(unit, unit.packet.pts or 0)
        except Exception:  # one viewer's failure must not stop the feed's other viewers
            log.exception("camera %s: a live viewer's RTP writer failed", self._feed.camera_id)
            self._finish()

    def _send(self, unit: Unit, pts: int) -> None:
        if pts <= self._last:
            pts = self._last + self._tick
        self._last = pts
        ts = (self._origin + pts * self._num // self._den) & 0xFFFFFFFF
        ntp = ntp_now()
        block = self._block.at(ntp)
        first = 0x90 if block else 0x80
        payloads = unit.payloads
        last = len(payloads) - 1
        seq, pt, ssrc, add, pack = self._seq, self._pt, self._ssrc, self._outbox.add, _HEADER.pack
        self._history.append((seq, ts, payloads))
        for i, payload in enumerate(payloads):
            add(pack(first, (0x80 if i == last else 0) | pt, seq, ts, ssrc), block, payload)
            seq = (seq + 1) & 0xFFFF
        self._seq = seq
        self._outbox.flush()
        self._octets += sum(map(len, payloads))
        self._packets += len(payloads)
        sender = self._sender  # what aiortc's sender reports are made of
        setattr(sender, _SENDER + "ntp_timestamp", ntp)
        setattr(sender, _SENDER + "rtp_timestamp", ts)
        setattr(sender, _SENDER + "octet_count", self._octets)
        setattr(sender, _SENDER + "packet_count", self._packets)

    async def retransmit(self, sequence_number: int) -> None:
        """Send packet ``sequence_number`` again (a NACK), as RTX when negotiated."""
        kept = next(
            (f for f in reversed(self._history) if (sequence_number - f[0]) & 0xFFFF < len(f[2])),
            None,
        )
        if kept is None:
            return  # too old: the viewer will ask for a keyframe
        first, ts, payloads = kept
        k = (sequence_number - first) & 0xFFFF
        packet = RtpPacket(
            payload_type=self._pt,
            marker=int(k == len(payloads) - 1),
            sequence_number=sequence_number,
            timestamp=ts,
        )
        packet.ssrc = self._ssrc
        packet.payload = payloads[k]
        packet.extensions.mid = self._mid
        packet.extensions.abs_send_time = (ntp_now() >> 14) & 0x00FFFFFF
        if self._rtx_pt is not None:
            packet = wrap_rtx(
                packet,
                payload_type=self._rtx_pt,
                sequence_number=self._rtx_seq,
                ssrc=self._sender._rtx_ssrc,
            )
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        data = packet.serialize(self._extensions)
        self._outbox.add(data[:12], b"", data[12:])
        self._outbox.flush()
