"""H.264 bitstream helpers of the live relay: Annex-B NAL units and their RTP payloads.

:func:`packetize` turns one access unit into its RTP payloads (RFC 6184, packetization mode 1)
once per camera, for every viewer of it. Small NAL units (SPS, PPS, SEI, AUD, small slices) are
aggregated into STAP-A packets; a NAL unit larger than a packet is cut into FU-A fragments that
all have the full size except the last one, so that one viewer's packets of a frame can leave
in a single ``sendmsg`` with UDP segmentation offload (:mod:`gtvision.web.rtpfanout`).
"""

from __future__ import annotations

import struct

#: largest RTP payload, as aiortc's own H.264 packetizer (headers and SRTP tag fit in 1500)
PAYLOAD_MAX = 1300
_STAP_A, _FU_A = 24, 28
_SPS, _PPS, _AUD = 7, 8, 9
_START = b"\x00\x00\x00\x01"
_LENGTH = struct.Struct("!H")


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B buffer (start codes removed)."""
    out: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = len(data) if j == -1 else (j - 1 if data[j - 1] == 0 else j)
        if end > start:
            out.append(data[start:end])
        i = j
    return out


def parameter_sets(units: list[bytes]) -> bytes:
    """SPS and PPS among ``units``, as one Annex-B buffer (empty when there are none)."""
    return b"".join(_START + u for u in units if u and u[0] & 0x1F in (_SPS, _PPS))


def with_parameter_sets(data: bytes, sets: bytes) -> bytes:
    """``data`` (a keyframe) with ``sets`` in front of its first picture NAL, unless it has SPS."""
    units = nal_units(data)
    if not sets or any(u and u[0] & 0x1F == _SPS for u in units):
        return data
    head = [u for u in units[:1] if u and u[0] & 0x1F == _AUD]  # an AUD must stay first
    rest = units[len(head) :]
    return b"".join(_START + u for u in head) + sets + b"".join(_START + u for u in rest)


def _stap_a(units: list[bytes]) -> bytes:
    """One NAL unit as it is, or several in one STAP-A (F bit: any; NRI: the highest)."""
    if len(units) == 1:
        return units[0]
    forbidden = any(u[0] & 0x80 for u in units)
    nri = max(u[0] & 0x60 for u in units)
    header = bytes([(0x80 if forbidden else 0) | nri | _STAP_A])
    return header + b"".join(_LENGTH.pack(len(u)) + u for u in units)


def _fu_a(unit: bytes, payload_max: int) -> list[bytes]:
    """FU-A fragments of ``unit``: all ``payload_max`` bytes long but the last one."""
    indicator = (unit[0] & 0xE0) | _FU_A
    kind = unit[0] & 0x1F
    step = payload_max - 2
    body = memoryview(unit)[1:]
    last = len(body) - 1
    out: list[bytes] = []
    for offset in range(0, len(body), step):
        flags = (0x80 if offset == 0 else 0) | (0x40 if offset + step > last else 0)
        out.append(bytes((indicator, flags | kind)) + body[offset : offset + step])
    return out


def packetize(data: bytes, payload_max: int = PAYLOAD_MAX) -> tuple[bytes, ...]:
    """The RTP payloads of one Annex-B access unit ``data`` (RFC 6184, mode 1), in order."""
    if payload_max < 16:
        msg = f"payload_max must be at least 16 bytes, got {payload_max}"
        raise ValueError(msg)
    out: list[bytes] = []
    pending: list[bytes] = []
    size = 1  # the STAP-A header
    for unit in nal_units(data):
        if len(unit) > payload_max:
            if pending:
                out.append(_stap_a(pending))
                pending, size = [], 1
            out.extend(_fu_a(unit, payload_max))
            continue
        if pending and size + 2 + len(unit) > payload_max:
            out.append(_stap_a(pending))
            pending, size = [], 1
        pending.append(unit)
        size += 2 + len(unit)
    if pending:
        out.append(_stap_a(pending))
    return tuple(out)
