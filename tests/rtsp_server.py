"""A small RTSP relay for tests: GStreamer's rtsp-server with RECORD support.

Run it with Debian's interpreter (it needs ``python3-gi`` and ``gir1.2-gst-rtsp-server-1.0``)::

    /usr/bin/python3 tests/rtsp_server.py --port 8554

* A publisher ANNOUNCEs/RECORDs H.264 to ``rtsp://127.0.0.1:PORT/pub/NAME``
  (``ffmpeg -re ... -c:v libx264 -rtsp_transport tcp -f rtsp rtsp://127.0.0.1:PORT/pub/NAME``).
* Readers PLAY ``rtsp://127.0.0.1:PORT/NAME``. The access units are relayed as they are (no
  decoding, no re-encoding): ``rtph264depay ! h264parse ! appsink`` on the publish side,
  ``appsrc ! rtph264pay`` per reader on the read side. A reader starts at the next keyframe;
  SPS/PPS are repeated in-band before every IDR. A reader that stops reading loses new
  access units once 20 MB are queued for it (the publisher is never blocked).
* Reading a NAME nobody publishes answers ``404 Not Found``. When the publisher goes away its
  readers are disconnected (like MediaMTX), so they see the stream end and must reconnect.
* NAME is one path segment (``[A-Za-z0-9_.-]``); only H.264 is relayed.
* Video files given on the command line (H.264 MP4) are played like cameras, each from its
  first frame, once: ``rtsp://127.0.0.1:PORT/STEM`` plays ``STEM.mp4`` in real time to the
  first reader that asks; later requests get ``404 Not Found``, so a reader that reconnects
  after the end does not replay the file under new times (the multi-camera replay test feeds
  "the same files" this way to live cameras that see every frame).

The process prints ``READY <port>`` on stdout once it accepts connections, and runs until it
is killed. Mounts are created on demand by :class:`Mounts` when a request for a path arrives.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
H264_CAPS = "video/x-h264,stream-format=byte-stream,alignment=au"
RECORD_LAUNCH = (
    "( rtph264depay name=depay0 ! h264parse config-interval=-1 ! "
    f"{H264_CAPS} ! appsink name=sink emit-signals=true sync=false async=false "
    "max-buffers=200 drop=true )"
)
PLAY_LAUNCH = (
    "( appsrc name=src is-live=true format=time do-timestamp=false block=false "
    "max-bytes=20000000 leaky-type=upstream ! rtph264pay name=pay0 pt=96 config-interval=0 )"
)
FILE_LAUNCH = (
    "( filesrc location={path} ! qtdemux ! h264parse config-interval=-1 ! "
    "rtph264pay name=pay0 pt=96 config-interval=-1 )"
)


@dataclass
class Reader:
    """One play media fed by one publisher session."""

    appsrc: Any
    offset: int | None = None  # publisher dts of the first relayed keyframe


@dataclass
class Relay:
    """State of one NAME: the current publisher session and its readers."""

    name: str
    generation: int = 0
    caps: Any = None
    publishing: bool = False
    readers: list[Reader] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Hub:
    """All relays plus the server, so publisher loss can disconnect readers."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.relays: dict[str, Relay] = {}
        self.lock = threading.Lock()

    def relay(self, name: str) -> Relay:
        with self.lock:
            return self.relays.setdefault(name, Relay(name))

    # publisher side -------------------------------------------------------------------------
    def publisher_configured(self, name: str, media: Any) -> None:
        relay = self.relay(name)
        with relay.lock:
            relay.generation += 1
            generation = relay.generation
            stale, relay.readers = relay.readers, []
            relay.caps = None
            relay.publishing = True
        self._end_readers(name, stale)
        sink = media.get_element().get_by_name("sink")
        sink.connect("new-sample", self._on_sample, relay, generation)
        media.connect("unprepared", self._on_publisher_gone, relay, generation)

    def _on_sample(self, sink: Any, relay: Relay, generation: int) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        buf = sample.get_buffer()
        keyframe = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        with relay.lock:
            if relay.generation != generation:
                return Gst.FlowReturn.EOS
            relay.caps = sample.get_caps()
            readers = list(relay.readers)
        for reader in readers:
            dts = buf.dts if buf.dts != Gst.CLOCK_TIME_NONE else buf.pts
            if reader.offset is None:
                if not keyframe or dts == Gst.CLOCK_TIME_NONE:
                    continue
                reader.offset = dts
            out = buf.copy()
            if buf.pts != Gst.CLOCK_TIME_NONE:
                out.pts = max(0, buf.pts - reader.offset)
            out.dts = max(0, dts - reader.offset)
            reader.appsrc.emit("push-buffer", out)
        return Gst.FlowReturn.OK

    def _on_publisher_gone(self, _media: Any, relay: Relay, generation: int) -> None:
        with relay.lock:
            if relay.generation != generation:
                return
            relay.publishing = False
            stale, relay.readers = relay.readers, []
        self._end_readers(relay.name, stale)

    def _end_readers(self, name: str, readers: list[Reader]) -> None:
        for reader in readers:
            reader.appsrc.emit("end-of-stream")
        if readers:
            GLib.idle_add(self._disconnect_readers, f"/{name}")

    def _disconnect_readers(self, path: str) -> bool:
        def session_medias(_session: Any, media: Any, _data: Any = None) -> Any:
            matched = media.matches(path)
            if matched[0] if isinstance(matched, tuple) else matched:
                found.append(True)
            return GstRtspServer.RTSPFilterResult.KEEP

        def sessions(_client: Any, session: Any, _data: Any = None) -> Any:
            session.filter(session_medias, None)
            return GstRtspServer.RTSPFilterResult.KEEP

        def clients(_server: Any, client: Any, _data: Any = None) -> Any:
            found.clear()
            client.session_filter(sessions, None)
            if found:
                return GstRtspServer.RTSPFilterResult.REMOVE
            return GstRtspServer.RTSPFilterResult.KEEP

        found: list[bool] = []
        self.server.client_filter(clients, None)
        return False

    # reader side ----------------------------------------------------------------------------
    def has_publisher(self, name: str) -> bool:
        relay = self.relay(name)
        with relay.lock:
            return relay.publishing and relay.caps is not None

    def reader_configured(self, name: str, media: Any) -> None:
        relay = self.relay(name)
        appsrc = media.get_element().get_by_name("src")
        with relay.lock:
            appsrc.set_property("caps", relay.caps or Gst.Caps.from_string(H264_CAPS))
            reader = Reader(appsrc)
            relay.readers.append(reader)
        media.connect("unprepared", self._on_reader_gone, relay, reader)

    def _on_reader_gone(self, _media: Any, relay: Relay, reader: Reader) -> None:
        with relay.lock:
            if reader in relay.readers:
                relay.readers.remove(reader)


class Mounts(GstRtspServer.RTSPMountPoints):  # type: ignore[misc]
    """Mount points that create ``/pub/NAME`` (record) and ``/NAME`` (play) on demand."""

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.mounted: set[str] = set()
        self.lock = threading.Lock()

    def do_make_path(self, url: Any) -> str:
        path: str = url.abspath
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 2 and parts[0] == "pub" and NAME_RE.match(parts[1]):
            self._ensure(f"/pub/{parts[1]}", parts[1], record=True)
        elif parts and NAME_RE.match(parts[0]) and parts[0] != "pub":
            if self.hub.has_publisher(parts[0]):
                self._ensure(f"/{parts[0]}", parts[0], record=False)
            else:
                self._unmount(f"/{parts[0]}")
        return path

    def _unmount(self, mount: str) -> None:
        with self.lock:
            if mount in self.mounted:
                self.mounted.discard(mount)
                self.remove_factory(mount)

    def _ensure(self, mount: str, name: str, *, record: bool) -> None:
        with self.lock:
            if mount in self.mounted:
                return
            factory = GstRtspServer.RTSPMediaFactory()
            factory.set_shared(False)
            factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
            if record:
                factory.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
                factory.set_launch(RECORD_LAUNCH)
                factory.set_latency(100)
                factory.connect("media-configure", self._configure, name, True)
            else:
                factory.set_launch(PLAY_LAUNCH)
                factory.connect("media-configure", self._configure, name, False)
            self.add_factory(mount, factory)
            self.mounted.add(mount)

    def _configure(self, _factory: Any, media: Any, name: str, record: bool) -> None:
        if record:
            self.hub.publisher_configured(name, media)
        else:
            self.hub.reader_configured(name, media)


def mount_file_once(mounts: Any, path: Path) -> None:
    """Play ``path`` at ``/<stem>`` from its first frame to the first reader only."""
    mount = f"/{path.stem}"
    if not NAME_RE.match(path.stem) or path.stem == "pub":
        msg = f"a file's name must be a NAME other than 'pub' ([A-Za-z0-9_.-]), got {path.name!r}"
        raise SystemExit(msg)

    def once(_factory: Any, media: Any) -> None:
        # unmounted once it plays (SETUP still looks the mount up after DESCRIBE)
        def playing(_media: Any, state: int) -> None:
            if state == Gst.State.PLAYING:
                GLib.idle_add(lambda: mounts.remove_factory(mount) and False)

        media.connect("new-state", playing)

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(FILE_LAUNCH.format(path=str(path.resolve())))
    factory.set_shared(False)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    factory.connect("media-configure", once)
    mounts.add_factory(mount, factory)


def main(argv: list[str] | None = None) -> int:
    """Serve until killed; print ``READY <port>`` once listening."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("files", nargs="*", type=Path, help="video files played once each")
    args = parser.parse_args(argv)
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    # Without unlimited threads a publisher and a reader of the same relay deadlock.
    server.get_thread_pool().set_max_threads(-1)
    hub = Hub(server)
    mounts = Mounts(hub)
    for path in args.files:
        mount_file_once(mounts, path)
    server.set_mount_points(mounts)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
