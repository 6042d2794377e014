"""An RTSP server that plays video files like cameras, each from its first frame, once.

Run it with Debian's interpreter (``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``)::

    /usr/bin/python3 tests/flows/rtsp_files.py --port 8555 a.mp4 b.mp4

``rtsp://127.0.0.1:PORT/a`` plays ``a.mp4`` (H.264 MP4, no re-encoding) in real time from its
first frame for the first reader that asks; later requests for ``a`` get ``404 Not Found``, so
a reader that reconnects after the end does not replay the file under new times. This is how
the multi-camera replay test feeds "the same files" to live cameras that see every frame.

Prints ``READY <port>`` once it accepts connections; runs until killed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

LAUNCH = (
    "( filesrc location={path} ! qtdemux ! h264parse config-interval=-1 ! "
    "rtph264pay name=pay0 pt=96 config-interval=-1 )"
)


def main(argv: list[str] | None = None) -> int:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_thread_pool().set_max_threads(-1)
    mounts = server.get_mount_points()

    def once(_factory: Any, media: Any, mount: str) -> None:
        # unmounted once it plays (SETUP still looks the mount up after DESCRIBE)
        def playing(_media: Any, state: int) -> None:
            if state == Gst.State.PLAYING:
                GLib.idle_add(lambda: mounts.remove_factory(mount) and False)

        media.connect("new-state", playing)

    for path in args.files:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(LAUNCH.format(path=str(path.resolve())))
        factory.set_shared(False)
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        mount = f"/{path.stem}"
        factory.connect("media-configure", once, mount)
        mounts.add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
