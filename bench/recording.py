"""What continuous recording costs per camera, against decoding the same video.

The recorder's muxing thread (:class:`gtvision.sinks.recordings.SegmentRecorder`) writes the
packets the reader already demuxed into fragmented-MP4 segments, without decoding. This bench
taps a 1280×720 H.264 file (~3 Mbit/s: noise keeps the encoder busy) into a packet ring, then
measures in one run:

* baseline: CPU time to decode the file (what every camera's reader spends anyway);
* recorder: CPU time of ``poll()`` muxing all of it into 10 s segments in a temporary spool
  (the upload thread is not part of this figure: it does one object PUT per segment);

and prints the ratio, ms of CPU per second of video and the cameras one core could record.
Finished segments are handed to a collector instead of the uploader (no network).

    .venv/bin/python bench/recording.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from gtvision.sinks.clips import RingRegistry
from gtvision.sinks.recordings import SegmentRecorder
from gtvision.sources.testvideo import make_video, moving_box

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _Collector:
    """Stands in for the uploader: keeps the finished segment paths."""

    def __init__(self) -> None:
        self.done: list[Path] = []

    def started(self, event: Any) -> None:
        """Nothing to send."""

    def dropped(self, started: Any) -> None:
        """Nothing to send."""

    def finished(self, mp4: Path) -> None:
        """Keep the path."""
        self.done.append(mp4)

    def close(self, timeout_s: float = 0.0) -> None:
        """Nothing to flush."""


def decode_cpu(video: Path) -> float:
    t0 = time.process_time()
    with av.open(str(video)) as f:
        for _ in f.decode(f.streams.video[0]):
            pass
    return time.process_time() - t0


def record_cpu(video: Path, spool: Path) -> tuple[float, int, int]:
    rings = RingRegistry()
    rings.need(3600)
    ring = rings.ring(1)
    with av.open(str(video)) as f:
        stream = f.streams.video[0]
        tb = stream.time_base or Fraction(1, 90000)
        ring.reset(stream, 1)
        for p in f.demux(stream):
            if p.pts is not None:
                ring.push(p, T0 + timedelta(seconds=float(p.pts * tb)))
    sink = _Collector()
    recorder = SegmentRecorder(
        sink,  # type: ignore[arg-type]
        spool,
        segment_s=10,
        rings=rings,
        poll_s=3600,
    )
    t0 = time.process_time()
    recorder.poll()
    recorder.close()
    cpu = time.process_time() - t0
    size = sum(p.stat().st_size for p in sink.done)
    return cpu, len(sink.done), size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scene = [moving_box(1, args.seconds - 1), "noise=alls=12:allf=t"]
        video = make_video(Path(tmp) / "cam.mp4", duration=args.seconds, size=(1280, 720),
                           fps=15, gop=15, bitrate="3M", filters=scene)  # fmt: skip
        decode = min(decode_cpu(video) for _ in range(3))
        runs = [record_cpu(video, Path(tmp) / f"spool{i}") for i in range(3)]
        record = min(r[0] for r in runs)
        _, segments, size = runs[0]
        video_bytes = video.stat().st_size
    per_s = record / args.seconds * 1000
    print(f"video: {args.seconds} s of 1280x720 H.264 at 15 fps, {video_bytes} bytes")
    print(f"decode (baseline): {decode * 1000:.0f} ms CPU")
    print(f"record: {record * 1000:.0f} ms CPU, {segments} segments, {size} bytes")
    print(f"record / decode: {record / decode:.3f}")
    print(f"record: {per_s:.2f} ms CPU per second of video = {1000 / per_s:.0f} cameras per core")


if __name__ == "__main__":
    main()
