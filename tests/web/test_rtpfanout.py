"""The live relay's RTP fan-out: payloads cut once, per-viewer headers, SRTP and batched sends.

Real libsrtp sessions (a sending and a receiving one on the same key, as DTLS-SRTP gives two
peers) and real UDP sockets on loopback; the viewer's side parses with aiortc's own RTP parser
and H.264 depacketizer, so the bytes are checked against what a WebRTC receiver accepts.
End-to-end (aiortc peers that decode the video) is in ``tests/web/test_live.py``.
"""

from __future__ import annotations

import os
import random
import socket
import time
from fractions import Fraction
from typing import Any

import av
import pytest
from aiortc.codecs.h264 import H264PayloadDescriptor
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pylibsrtp import Policy, Session

from gtvision.web import rtpfanout
from gtvision.web.h264rtp import PAYLOAD_MAX, nal_units, packetize
from gtvision.web.livefeed import Unit
from gtvision.web.rtpfanout import ExtensionBlock, RtpWriter, ntp_now
from gtvision.web.rtpsend import Outbox

_START = b"\x00\x00\x00\x01"
_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
_ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def _nal(rng: random.Random, size: int, kind: int) -> bytes:
    body = bytes(rng.choice((0, 1, 2, 3, 0x41, 0xFF)) for _ in range(size - 1))
    body = body.replace(b"\x00\x00", b"\x00\x11")  # no start code inside a NAL unit
    body = body[: size - 2].ljust(size - 2, b"\x22")
    return bytes([0x60 | kind]) + body + b"\x80"[: size - 1]  # ends as an RBSP: not in 0


def _access_unit(rng: random.Random) -> list[bytes]:
    sizes = [rng.choice((2, 5, 40, PAYLOAD_MAX - 1, PAYLOAD_MAX, PAYLOAD_MAX + 1)) for _ in "xy"]
    sizes += [rng.randint(1, 30_000) + 1 for _ in range(rng.randint(0, 3))]
    return [_nal(rng, s, rng.choice((1, 5, 6, 7, 8, 9))) for s in sizes]


@pytest.mark.parametrize("seed", range(40))
def test_payloads_depacketize_to_the_access_unit(seed: int) -> None:
    rng = random.Random(seed)
    units = _access_unit(rng)
    data = b"".join((b"\x00\x00\x01" if rng.random() < 0.3 else _START) + u for u in units)
    payloads = packetize(data)
    assert all(len(p) <= PAYLOAD_MAX for p in payloads)
    rebuilt = b"".join(H264PayloadDescriptor.parse(p)[1] for p in payloads)
    assert rebuilt == b"".join(_START + u for u in units)  # aiortc's depacketizer
    fragments = [p for p in payloads if p[0] & 0x1F == 28]
    runs: list[list[bytes]] = []
    for p in fragments:  # FU-A: start bit opens a run, end bit closes it
        if p[1] & 0x80:
            runs.append([])
        runs[-1].append(p)
    assert sum(len(u) > PAYLOAD_MAX for u in units) == len(runs)
    for run in runs:
        assert [bool(p[1] & 0x40) for p in run] == [False] * (len(run) - 1) + [True]
        assert {len(p) for p in run[:-1]} <= {PAYLOAD_MAX}  # equal sizes: one segmented send
        assert len(run[-1]) <= PAYLOAD_MAX


def test_small_units_are_aggregated_and_a_bad_size_is_refused() -> None:
    sps, pps, sei = b"\x67\x42\x00\x1f", b"\x68\xce\x3c\x80", b"\x06\x05\x01"
    idr = b"\x65" + bytes(range(256)) * 20
    payloads = packetize(b"".join(_START + u for u in (sps, pps, sei, idr)))
    assert payloads[0][0] & 0x1F == 24  # STAP-A
    assert H264PayloadDescriptor.parse(payloads[0])[1] == b"".join(
        _START + u for u in (sps, pps, sei)
    )
    assert packetize(_START + sps) == (sps,)  # one small unit goes as it is
    assert nal_units(b"".join(H264PayloadDescriptor.parse(p)[1] for p in payloads))[-1] == idr
    with pytest.raises(ValueError, match="at least 16 bytes, got 4"):
        packetize(_START + idr, payload_max=4)


def _sessions() -> tuple[Session, Session, Session]:
    """A sender's session, its twin (same key) and the receiver's."""
    key = os.urandom(44)
    profile = Policy.SRTP_PROFILE_AEAD_AES_256_GCM

    def make(kind: int) -> Session:
        return Session(Policy(key=key, ssrc_type=kind, srtp_profile=profile))

    return (
        make(Policy.SSRC_ANY_OUTBOUND),
        make(Policy.SSRC_ANY_OUTBOUND),
        make(Policy.SSRC_ANY_INBOUND),
    )


def _sockets() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setblocking(False)
    return tx, rx


def test_in_place_sealing_gives_what_pylibsrtp_gives() -> None:
    send, twin, _ = _sessions()
    tx, rx = _sockets()
    outbox = Outbox(tx, rx.getsockname(), send)
    assert outbox._c is not None  # the in-place path is the one under test
    rng = random.Random(7)
    packets = [
        (bytes([0x80, 102]) + i.to_bytes(2, "big") + bytes(8), rng.randbytes(8), rng.randbytes(n))
        for i, n in enumerate((1300, 1300, 10, 700, 1301))
    ]
    for header, block, payload in packets:
        outbox.add(header, block, payload)
    assert outbox.sealed() == [twin.protect(h + b + p) for h, b, p in packets]
    tx.close()
    rx.close()


class _Sender:
    """What the writer reads of aiortc's sender and writes for its reports."""

    def __init__(self) -> None:
        self._ssrc = 0x1234ABCD
        self._rtx_ssrc = 0x55667788
        self.track = None


class _Feed:
    camera_id = 1
    time_base = Fraction(1, 1000)
    tick = 1

    def __init__(self, gop: list[Unit]) -> None:
        self._gop = gop
        self.subscribers: list[Any] = []

    def gop(self) -> list[Unit]:
        return list(self._gop)

    def subscribe(self, offer: Any) -> None:
        self.subscribers.append(offer)

    def unsubscribe(self, offer: Any) -> None:
        self.subscribers.remove(offer)


def _parameters(rtx: bool) -> RTCRtpSendParameters:
    codecs = [RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)]
    if rtx:
        codecs.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=103, parameters={"apt": 102}
            )
        )
    extensions = [
        RTCRtpHeaderExtensionParameters(id=3, uri=_MID),
        RTCRtpHeaderExtensionParameters(id=5, uri=_ABS),
    ]
    return RTCRtpSendParameters(codecs=codecs, headerExtensions=extensions, muxId="1")


def _unit(data: bytes, pts: int, keyframe: bool) -> Unit:
    packet = av.Packet(data)
    packet.pts = packet.dts = pts
    packet.time_base = Fraction(1, 1000)
    return Unit(packet, keyframe, packetize(data))


def _received(rx: socket.socket, recv: Session, count: int) -> list[RtpPacket]:
    extensions = HeaderExtensionsMap()
    extensions.configure(_parameters(rtx=True))
    out = []
    for _ in range(count):
        packet = RtpPacket.parse(recv.unprotect(rx.recv(65536)), extensions)
        out.append(packet)
    return out


@pytest.mark.parametrize("gso", [True, False])
def test_a_viewer_receives_every_frame_as_aiortc_would_send_it(gso: bool) -> None:
    send, _, recv = _sessions()
    tx, rx = _sockets()
    rng = random.Random(11)
    frames = [_START + _nal(rng, n, 5 if i == 0 else 1) for i, n in enumerate((9000, 3000, 40))]
    units = [_unit(f, 40 * i, i == 0) for i, f in enumerate(frames)]
    feed = _Feed(units[:1])  # the kept GOP: the first frame
    sender = _Sender()
    outbox = Outbox(tx, rx.getsockname(), send)
    outbox.gso = gso
    writer = RtpWriter(sender, feed, _parameters(rtx=True), outbox)  # type: ignore[arg-type]
    writer._burst(feed.gop())
    for unit in units[1:]:
        writer.offer(unit)
    total = sum(len(u.payloads) for u in units)
    before = ntp_now()
    packets = _received(rx, recv, total)
    assert outbox.sent == total
    assert outbox.dropped == 0
    seqs = [p.sequence_number for p in packets]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(total)]
    assert {p.ssrc for p in packets} == {sender._ssrc}
    assert {p.payload_type for p in packets} == {102}
    assert {p.extensions.mid for p in packets} == {"1"}
    ref = (before >> 14) & 0xFFFFFF  # abs-send-time: 6.18 fixed point, wraps every 64 s
    ages = [(ref - (p.extensions.abs_send_time or 0)) & 0xFFFFFF for p in packets]
    assert all(min(a, 0x1000000 - a) < 2**18 for a in ages)  # within 1 s of now
    by_ts: dict[int, list[RtpPacket]] = {}
    for p in packets:
        by_ts.setdefault(p.timestamp, []).append(p)
    stamps = list(by_ts)  # in the order sent
    assert [(b - stamps[0]) & 0xFFFFFFFF for b in stamps] == [0, 3600, 7200]  # 40 ms at 90 kHz
    for unit, stamp in zip(units, stamps, strict=True):
        got = by_ts[stamp]
        assert [p.marker for p in got] == [0] * (len(got) - 1) + [1]
        assert tuple(p.payload for p in got) == unit.payloads
    assert vars(sender)["_RTCRtpSender__packet_count"] == total  # for its sender reports
    tx.close()
    rx.close()


async def test_a_nack_is_answered_from_the_history_as_rtx() -> None:
    send, _, recv = _sessions()
    tx, rx = _sockets()
    rng = random.Random(3)
    unit = _unit(_START + _nal(rng, 5000, 5), 0, True)
    sender = _Sender()
    outbox = Outbox(tx, rx.getsockname(), send)
    writer = RtpWriter(sender, _Feed([unit]), _parameters(rtx=True), outbox)  # type: ignore[arg-type]
    writer._burst([unit])
    first = _received(rx, recv, len(unit.payloads))
    lost = first[2]
    await writer.retransmit(lost.sequence_number)
    (rtx,) = _received(rx, recv, 1)
    assert (rtx.payload_type, rtx.ssrc) == (103, sender._rtx_ssrc)
    assert rtx.payload[:2] == lost.sequence_number.to_bytes(2, "big")  # RFC 4588: the OSN
    assert rtx.payload[2:] == lost.payload
    assert rtx.timestamp == lost.timestamp
    await writer.retransmit((lost.sequence_number + 1000) & 0xFFFF)  # never sent: nothing
    rx.settimeout(0.3)
    with pytest.raises(TimeoutError):
        rx.recv(65536)
    tx.close()
    rx.close()


def test_extension_block_is_aiorts_own() -> None:
    extensions = HeaderExtensionsMap()
    extensions.configure(_parameters(rtx=False))
    block = ExtensionBlock(extensions, "1")
    for ntp in (ntp_now(), 0, (1 << 64) - 1, ntp_now() + 12345 * 2**20):
        packet = RtpPacket(payload_type=102, sequence_number=1, timestamp=2, ssrc=3)
        packet.extensions.mid = "1"
        packet.extensions.abs_send_time = (ntp >> 14) & 0xFFFFFF
        assert packet.serialize(extensions)[12:] == block.at(ntp)
    none = ExtensionBlock(HeaderExtensionsMap(), None)
    assert none.at(ntp_now()) == b""


def test_ntp_now_is_aiortcs_clock() -> None:
    from aiortc import clock

    a, ours, b = clock.current_ntp_time(), ntp_now(), clock.current_ntp_time()
    assert a - 2**22 <= ours <= b + 2**22  # within ~1 ms of aiortc's, on the same scale
    time.sleep(0.01)
    assert ntp_now() - ours >= 2**32 // 100


def test_this_aiortc_has_what_the_fan_out_replaces() -> None:
    """The fan-out reaches into aiortc's sender: an aiortc that moved it is seen here first."""
    from aiortc import RTCPeerConnection

    async def check() -> bool:
        pc = RTCPeerConnection()
        sender = pc.addTransceiver("video", direction="sendonly").sender
        try:
            return rtpfanout.supported(sender)
        finally:
            await pc.close()

    import asyncio

    assert asyncio.run(check())
