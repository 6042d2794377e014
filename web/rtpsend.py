"""One WebRTC viewer's outgoing RTP: SRTP sealing in place and batched UDP sends.

An :class:`Outbox` takes the RTP packets of one frame (:meth:`Outbox.add`), seals each with the
viewer's DTLS-SRTP session straight into one buffer, and :meth:`Outbox.flush` sends them in
order: every run of equal-size packets (the last may be shorter) leaves in one ``sendmsg`` with
UDP segmentation offload (``UDP_SEGMENT``, Linux ≥ 4.18), so a frame of a 2 Mbit/s camera costs
one or two system calls instead of eight. Where the kernel refuses segmentation the outbox
falls back, once and for good, to one ``sendto`` per packet.

Sealing uses libsrtp through pylibsrtp's cffi binding on the outbox's own buffer (no per-packet
copies and allocations: ``Session.protect`` makes three); when that binding is not the one
known here it uses ``Session.protect``. Both give the same bytes (tested).
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from typing import Any

log = logging.getLogger(__name__)

UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
_GSO_SEGMENTS, _GSO_BYTES = 64, 65000  # the kernel's limits on one segmented send
_GSO_REFUSED = {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
_SEGMENT = struct.Struct("=H")
#: room libsrtp may need after a packet (the longest tag and MKI: pylibsrtp's own margin)
TRAILER_MAX = 16 + 128


def _binding(srtp: Any) -> tuple[Any, Any, Any] | None:
    """Pylibsrtp's ``(ffi, lib, srtp_t)`` for ``srtp``, when they are where we know them."""
    try:
        from pylibsrtp._binding import ffi, lib  # type: ignore[import-not-found]

        return ffi, lib, srtp._srtp[0]
    except (ImportError, AttributeError, TypeError):
        return None


class Outbox:
    """The sealed packets of one frame for one viewer, and where they go."""

    def __init__(self, sock: socket.socket, address: tuple[Any, ...], srtp: Any) -> None:
        self.sock = sock
        self.address = address
        self.gso = True
        self.sent = 0
        self.dropped = 0
        self._protect = srtp.protect
        self._c = _binding(srtp)
        self._length: Any = None if self._c is None else self._c[0].new("int *")
        self._buf = bytearray()
        self._ptr: Any = None
        self._spans: list[int] = []  # sealed lengths, packed from offset 0
        self._pos = 0
        self._grow(64 * 1500)

    def _grow(self, size: int) -> None:
        buf = bytearray(size)
        buf[: self._pos] = self._buf[: self._pos]
        self._buf = buf
        self._ptr = None if self._c is None else self._c[0].from_buffer(buf)

    def add(self, header: bytes, block: bytes, payload: bytes) -> None:
        """Seal ``header + block + payload`` (an RTP packet) after the packets added before."""
        pos = self._pos
        n = len(header) + len(block) + len(payload)
        if pos + n + TRAILER_MAX > len(self._buf):
            self._grow(2 * (pos + n + TRAILER_MAX))
        buf = self._buf
        if self._c is None:
            sealed = self._protect(header + block + payload)
            end = pos + len(sealed)
            buf[pos:end] = sealed
        else:
            a = pos + len(header)
            b = a + len(block)
            buf[pos:a] = header
            buf[a:b] = block
            buf[b : pos + n] = payload
            length = self._length
            length[0] = n
            status = self._c[1].srtp_protect(self._c[2], self._ptr + pos, length)
            if status:
                msg = f"libsrtp could not seal an RTP packet of {n} bytes: status {status}"
                raise RuntimeError(msg)
            end = pos + length[0]
        self._spans.append(end - pos)
        self._pos = end

    def sealed(self) -> list[bytes]:
        """The packets added since the last flush, sealed (for tests and retransmissions)."""
        out, pos = [], 0
        for size in self._spans:
            out.append(bytes(self._buf[pos : pos + size]))
            pos += size
        return out

    def flush(self) -> None:
        """Send the packets added since the last flush, in order, and forget them."""
        spans, n = self._spans, len(self._spans)
        view = memoryview(self._buf)
        try:
            i = start = 0
            while i < n:
                size = spans[i]
                j, stop = i + 1, start + size
                if self.gso:
                    most = min(_GSO_SEGMENTS, _GSO_BYTES // size)
                    while j < n and j - i < most and spans[j] == size:
                        stop += size
                        j += 1
                    if j < n and j - i < most and spans[j] < size:
                        stop += spans[j]  # a shorter packet may end a segmented send
                        j += 1
                self._send(view, start, stop, size, j - i)
                i, start = j, stop
        finally:
            view.release()
            self._spans = []
            self._pos = 0

    def _send(self, view: memoryview, start: int, stop: int, size: int, count: int) -> None:
        try:
            if count == 1:
                self.sock.sendto(view[start:stop], self.address)
            else:
                cmsg = [(socket.SOL_UDP, UDP_SEGMENT, _SEGMENT.pack(size))]
                self.sock.sendmsg([view[start:stop]], cmsg, 0, self.address)
        except BlockingIOError:  # the socket's buffer is full: lost, as UDP (NACK may ask)
            self.dropped += count
            return
        except OSError as err:
            if count > 1 and err.errno in _GSO_REFUSED:
                log.info("UDP segmentation refused (%s): one send per packet", err)
                self.gso = False
                for k in range(count):
                    low = start + k * size
                    self._send(view, low, min(low + size, stop), size, 1)
                return
            self.dropped += count  # e.g. the viewer's port is closed: ICE will notice
            return
        self.sent += count
