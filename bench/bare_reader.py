"""The decode floor: read RTSP streams with bare PyAV, nothing else (the baseline of CPU figures).

One thread per URL opens the stream with the options gtvision's camera reader uses (TCP, no
probing, ``thread_type='AUTO'``) and decodes every frame (``--keyframes-only``: only keyframes,
like a camera with ``keyframes_only``), reconnecting when the stream ends. Nothing is converted,
queued or analysed. Measure its process CPU time beside a ``gtvision run`` of the same streams
(``tests/flows/test_idle.py``, ``bench/capacity.py``). On SIGTERM/SIGINT it prints
``frames <n>`` per URL and exits 0.

    .venv/bin/python bench/bare_reader.py URL [URL ...] [--keyframes-only] [--seconds S]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType

import av

from gtvision.sources.decode import OPEN_TIMEOUT, RTSP_OPTIONS


def read(url: str, keyframes_only: bool, stop: threading.Event, counts: dict[str, int]) -> None:
    """Decode ``url`` until ``stop`` (reconnect after a second when the stream ends or fails)."""
    while not stop.is_set():
        try:
            with av.open(url, options=dict(RTSP_OPTIONS), timeout=OPEN_TIMEOUT) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                if keyframes_only:
                    stream.codec_context.skip_frame = "NONKEY"
                for packet in container.demux(stream):
                    if stop.is_set():
                        return
                    for _ in packet.decode():
                        counts[url] = counts.get(url, 0) + 1
        except (av.FFmpegError, OSError):
            pass
        stop.wait(1.0)


def main(argv: list[str] | None = None) -> int:
    """Read every URL until a signal (or ``--seconds``); print the frame counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--keyframes-only", action="store_true")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after S s (0: never)")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    counts: dict[str, int] = {}
    threads = [
        threading.Thread(target=read, args=(u, args.keyframes_only, stop, counts), daemon=True)
        for u in args.urls
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
    while not stop.wait(0.5):
        if deadline is not None and time.monotonic() >= deadline:
            stop.set()
    for t in threads:
        t.join(timeout=5)
    for url in args.urls:
        print(f"frames {counts.get(url, 0)} {url}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
