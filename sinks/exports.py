"""Exports: a camera's recording segments joined into one MP4, without re-encoding.

The continuous recorder (:mod:`gtvision.sinks.recordings`) writes contiguous fragmented-MP4
segments, each starting at a keyframe, whose media time 0 is the segment's ``started_at``.
:func:`join_segments` remuxes the packets of the segments overlapping ``[start, end]`` into one
MP4 (``+faststart``, so a browser plays it while downloading):

* it begins at the last keyframe at or before ``start`` (up to one GOP early) and ends with the
  last packet at or before ``end``;
* media time is wall-clock time from the first packet: a gap between segments (camera offline)
  stays a gap, so ``started_at + currentTime`` is the moment on screen;
* a segment whose codec parameters differ from the first one's (the camera was reconfigured)
  ends the export there (``ended_at`` says where); a segment missing from the store is skipped;
* the file is bounded by ``max_bytes`` (:class:`ExportTooLarge`).

It blocks (store reads, muxing, disk): callers run it in a worker thread.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

log = logging.getLogger(__name__)
FASTSTART = {"movflags": "+faststart"}


class ExportTooLarge(Exception):
    """The export would exceed its size bound."""


class NothingToExport(Exception):
    """No recorded frame falls in the range."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A finished recording segment (a ``recordings`` row)."""

    id: str
    started_at: datetime
    object_key: str


@dataclass(frozen=True, slots=True)
class Joined:
    """What :func:`join_segments` wrote."""

    started_at: datetime
    ended_at: datetime
    segments: int
    bytes: int


def _params(stream: Any) -> tuple[Any, ...]:
    cc = stream.codec_context
    return (cc.name, cc.width, cc.height, bytes(cc.extradata or b""))


def _ts(packet: Any) -> int:
    return int(packet.dts if packet.dts is not None else packet.pts or 0)


@dataclass(frozen=True, slots=True)
class _WallClock:
    """Wall-clock time of a segment's packets: media time 0 is the segment's start."""

    started_at: datetime
    time_base: Fraction
    base: int

    def __call__(self, packet: Any) -> datetime:
        seconds = float((_ts(packet) - self.base) * self.time_base)
        return self.started_at + timedelta(seconds=seconds)


class _Writer:
    """The output file: timestamps from the first packet's wall-clock time, kept increasing."""

    def __init__(self, path: Path, template: Any, origin: datetime, max_bytes: int) -> None:
        self.out = av.open(str(path), mode="w", format="mp4", options=FASTSTART)
        self.stream = self.out.add_stream_from_template(template)
        self.params = _params(template)
        self.origin = origin
        self.max_bytes = max_bytes
        self.size = 0
        self.last_dts: int | None = None
        self.last_wall = origin

    def add(self, packet: Any, shift: int, time_base: Fraction, wall: datetime) -> int:
        """Mux ``packet`` moved by ``shift`` (in ``time_base``); returns the shift used."""
        dts = _ts(packet) + shift
        if self.last_dts is not None and dts <= self.last_dts:  # segments overlapping in time
            shift += self.last_dts + 1 - dts
            dts = self.last_dts + 1
        pkt = av.Packet(bytes(packet))
        pkt.stream = self.stream
        pkt.time_base = time_base
        pkt.dts = dts
        pkt.pts = dts if packet.pts is None else int(packet.pts) + shift
        if packet.duration:
            pkt.duration = packet.duration
        pkt.is_keyframe = packet.is_keyframe
        self.out.mux(pkt)
        self.size += packet.size
        if self.size > self.max_bytes:
            msg = f"the export passed its bound of {self.max_bytes} bytes"
            raise ExportTooLarge(msg)
        self.last_dts = dts
        self.last_wall = wall
        return shift


def join_segments(
    fetch: Callable[[str], bytes],
    segments: Sequence[Segment],
    start: datetime,
    end: datetime,
    out_path: Path,
    *,
    max_bytes: int,
) -> Joined:
    """Write the recording of ``[start, end]`` from ``segments`` (by start time) to ``out_path``."""
    writer: _Writer | None = None
    used = 0
    try:
        for seg in segments:
            try:
                data = fetch(seg.object_key)
            except KeyError:
                log.warning("export: segment %s is missing from the store, skipped", seg.id)
                continue
            with av.open(io.BytesIO(data), mode="r") as src:
                stream = src.streams.video[0]
                packets = [p for p in src.demux(stream) if p.size]
                if not packets:
                    continue
                tb = Fraction(stream.time_base or Fraction(1, 90000))
                wall = _WallClock(seg.started_at, tb, _ts(packets[0]))
                first = 0
                if writer is None:
                    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
                    before = [i for i in keys if wall(packets[i]) <= start]
                    if not keys:
                        continue
                    first = before[-1] if before else keys[0]
                    writer = _Writer(out_path, stream, wall(packets[first]), max_bytes)
                elif _params(stream) != writer.params:
                    log.info("export: segment %s has other codec parameters: export ends", seg.id)
                    break
                shift = round((wall(packets[0]) - writer.origin).total_seconds() / tb) - wall.base
                added = 0
                for p in packets[first:]:
                    when = wall(p)
                    if when > end:
                        break
                    shift = writer.add(p, shift, tb, when)
                    added += 1
                used += 1 if added else 0
                if added < len(packets) - first:
                    break  # reached ``end``
    finally:
        if writer is not None:
            writer.out.close()
    if writer is None or writer.last_dts is None:
        msg = f"no recorded frame between {start.isoformat()} and {end.isoformat()}"
        raise NothingToExport(msg)
    size = out_path.stat().st_size
    return Joined(writer.origin, writer.last_wall, used, size)
