"""Every Prometheus metric gtvision exports, defined once; and how each command exposes them.

Code instruments through the objects below (``metrics.FRAMES_READ.labels(cam).inc()``); nothing
else defines a metric, so ``docs/operations.md`` lists exactly this module (a test compares
them). Labels are bounded on purpose: ``camera`` (camera id), ``city`` (city id), ``route`` (the
route *template*, never the raw path), ``type`` (event type), ``method``, ``status`` and small
fixed enums. Never a plate, a user, a raw path or an error text.

Exposition:

* ``gtvision serve`` answers ``GET /metrics`` (:func:`render`). With several uvicorn workers
  it runs prometheus-client's multiprocess mode: ``gtvision serve`` gives the workers an empty
  ``PROMETHEUS_MULTIPROC_DIR`` before they start, and :func:`render` sums the workers' files
  (live gauges of dead workers are dropped, counters of dead workers are kept so rates never
  go backwards).
* ``gtvision run``, ``relay`` and ``retention`` serve the same text on a small HTTP port
  (:func:`serve_http`; ``GTV_METRICS_PORT`` or ``--metrics-port``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

# prometheus-client opens its multiprocess files when the metrics below are defined: the
# directory must exist by then (``gtvision serve`` empties it again before its workers start)
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as _mp
from prometheus_client.metrics import MetricWrapperBase

from gtvision import __version__
from gtvision.config import ConfigError

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MODEL = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4)
_ACK = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)

# ---- build ----------------------------------------------------------------------------------
BUILD = Gauge(
    "gtvision_build_info",
    "Always 1: the gtvision version and command of this process",
    ["version", "command"],
    multiprocess_mode="max",
)

# ---- cameras and ingest (gtvision run) --------------------------------------------------------
FRAMES_READ = Counter(
    "gtvision_camera_frames_read_total",
    "Frames decoded from the camera and queued for the flow (after the analysis fps cap)",
    ["camera"],
)
FRAMES_DROPPED = Counter(
    "gtvision_camera_frames_dropped_total",
    "Queued frames dropped because the flow fell behind (oldest first)",
    ["camera"],
)
FRAMES_ANALYSED = Counter(
    "gtvision_camera_frames_analysed_total",
    "Frames that went through motion analysis",
    ["camera"],
)
GATE = Counter(
    "gtvision_motion_gate_frames_total",
    "Frames seen by the motion gate by outcome (passed on to plate reading/incidents, skipped)",
    ["camera", "outcome"],
)
ONLINE = Gauge(
    "gtvision_camera_online",
    "1 while the camera delivers frames, 0 while it is offline",
    ["camera"],
)
OFFLINE = Counter(
    "gtvision_camera_offline_total",
    "Camera outages by reason (timeout, refused, auth, bad_url, not_found, server_gone, error)",
    ["camera", "reason"],
)
RECONNECTS = Counter(
    "gtvision_camera_reconnects_total",
    "Connection attempts after a lost or failed connection",
    ["camera"],
)

# ---- plate reading -----------------------------------------------------------------------------
DETECTOR_SECONDS = Histogram(
    "gtvision_lpr_detector_seconds", "Plate detector (YOLO) time per call", buckets=_MODEL
)
OCR_SECONDS = Histogram(
    "gtvision_lpr_ocr_seconds",
    "Plate OCR time per call (the crop variants of one plate)",
    buckets=_MODEL,
)

# ---- events and sinks -------------------------------------------------------------------------
EVENTS = Counter(
    "gtvision_events_total",
    "Events stored for the first time (re-emissions after a restart are not counted)",
    ["type", "city"],
)
SINK_WRITE_SECONDS = Histogram(
    "gtvision_sink_write_seconds",
    "Time to store one batch of events (crops, rows + outbox, feed), retries included",
    buckets=_LATENCY,
)
SINK_ERRORS = Counter(
    "gtvision_sink_errors_total",
    "Failed sink steps (transient ones are retried, permanent ones fail the batch)",
    ["step", "kind"],
)
OUTBOX_BACKLOG = Gauge(
    "gtvision_outbox_backlog",
    "Outbox rows not yet confirmed by RabbitMQ (measured by the relay)",
    multiprocess_mode="max",
)
OUTBOX_OLDEST_AGE = Gauge(
    "gtvision_outbox_oldest_unsent_age_seconds",
    "Age of the oldest outbox row not yet confirmed by RabbitMQ (0 when none)",
    multiprocess_mode="max",
)
RELAY_PUBLISHED = Counter(
    "gtvision_relay_published_total", "Outbox messages published and confirmed by RabbitMQ"
)
RELAY_UNCONFIRMED = Counter(
    "gtvision_relay_unconfirmed_total", "Publish attempts RabbitMQ did not confirm (retried)"
)
UPLOAD_FAILURES = Counter(
    "gtvision_upload_failures_total",
    "Failed clip and recording uploads (recording uploads are retried)",
    ["kind"],
)
CLIPS = Counter("gtvision_clips_uploaded_total", "Event clips cut and uploaded")
RECORDINGS = Counter(
    "gtvision_recordings_uploaded_total", "Recording segments uploaded", ["camera"]
)
SPOOL_BYTES = Gauge(
    "gtvision_recording_spool_bytes",
    "Bytes of recording segments on local disk waiting for upload (or being written)",
    multiprocess_mode="livesum",
)

# ---- web (gtvision serve) ---------------------------------------------------------------------
HTTP_SECONDS = Histogram(
    "gtvision_http_request_duration_seconds",
    "HTTP request latency by method, route template and status",
    ["method", "route", "status"],
    buckets=_LATENCY,
)
SSE_SUBSCRIBERS = Gauge(
    "gtvision_sse_subscribers",
    "Connected SSE subscribers by city",
    ["city"],
    multiprocess_mode="livesum",
)
ACK_SECONDS = Histogram(
    "gtvision_alert_ack_seconds",
    "Time from an alert to its first acknowledgement, by city",
    ["city"],
    buckets=_ACK,
)
LIVE_VIEWERS = Gauge(
    "gtvision_live_viewers",
    "Viewers of the built-in WebRTC relay by kind (passthrough: H.264 forwarded; decode)",
    ["kind"],
    multiprocess_mode="livesum",
)
LIVE_FANOUT = Counter(
    "gtvision_live_fanout_viewers_total",
    "Passthrough viewers of the WebRTC relay by sender kind (fanout: packets cut once, batched"
    " sends; aiortc: aiortc's own loop, where the fan-out cannot run)",
    ["kind"],
)
LIVE_FANOUT_PACKETS = Counter(
    "gtvision_live_fanout_packets_total",
    "RTP packets the relay's fan-out sent to viewers, by outcome (sent; dropped: the socket"
    " buffer was full or the viewer's port closed)",
    ["outcome"],
)
LIVE_CAMERAS = Gauge(
    "gtvision_live_cameras",
    "Cameras the built-in WebRTC relay reads (watched or lingering)",
    multiprocess_mode="livesum",
)
REVOKED_SESSIONS = Counter(
    "gtvision_revoked_sessions_total",
    "Open sessions ended because their token was revoked, by kind (sse, live)",
    ["kind"],
)
MEDIAMTX_SYNC = Counter(
    "gtvision_mediamtx_sync_total",
    "MediaMTX path reconciliations by outcome (ok, failed)",
    ["outcome"],
)
MEDIAMTX_PATH_CHANGES = Counter(
    "gtvision_mediamtx_path_changes_total",
    "MediaMTX paths changed by the sync, by kind (add, patch, delete)",
    ["kind"],
)
EXPORTS = Counter(
    "gtvision_exports_total",
    "Recording exports by outcome (ok, empty, too_large)",
    ["outcome"],
)

# ---- retention (gtvision retention run) -------------------------------------------------------
RETENTION_REMOVED = Counter(
    "gtvision_retention_removed_total",
    "Rows and objects removed by LGPD retention runs, by kind",
    ["kind"],
)
RETENTION_LAST_RUN = Gauge(
    "gtvision_retention_last_success_timestamp_seconds",
    "Unix time of the last retention run that finished",
    multiprocess_mode="max",
)


#: metric name prefix -> the command whose process exports it
_COMMANDS = (
    ("gtvision_build_", "every command"),
    ("gtvision_outbox_", "relay"),
    ("gtvision_relay_", "relay"),
    ("gtvision_http_", "serve"),
    ("gtvision_sse_", "serve"),
    ("gtvision_alert_ack_", "serve"),
    ("gtvision_live_", "serve"),
    ("gtvision_revoked_", "serve"),
    ("gtvision_mediamtx_", "serve"),
    ("gtvision_exports_", "serve"),
    ("gtvision_retention_", "retention"),
    ("gtvision_", "run"),
)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One metric of this module as an operator queries it."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str
    command: str

    @property
    def series(self) -> tuple[str, ...]:
        """Sample names in the exposition (what a PromQL query may name)."""
        if self.kind == "histogram":
            return tuple(f"{self.name}_{s}" for s in ("bucket", "sum", "count"))
        return (self.name,)


def catalogue() -> list[MetricInfo]:
    """Every metric defined above, in definition order."""
    out: list[MetricInfo] = []
    for value in list(globals().values()):
        if not isinstance(value, MetricWrapperBase):
            continue
        kind = str(value._type)
        name = value._name + ("_total" if kind == "counter" else "")
        command = next(c for prefix, c in _COMMANDS if name.startswith(prefix))
        out.append(MetricInfo(name, kind, tuple(value._labelnames), value._documentation, command))
    return out


def markdown_table() -> str:
    """The metrics table of ``docs/operations.md`` (``python -m gtvision.metrics`` prints it)."""
    rows = ["| metric | type | labels | exported by | meaning |", "| --- | --- | --- | --- | --- |"]
    for m in catalogue():
        labels = ", ".join(f"`{label}`" for label in m.labels) or "—"
        rows.append(f"| `{m.name}` | {m.kind} | {labels} | `{m.command}` | {m.help} |")
    return "\n".join(rows) + "\n"


def forget_camera(camera_id: int) -> None:
    """Drop a removed camera's online series (a stale 0 would look like an outage)."""
    with contextlib.suppress(KeyError):
        ONLINE.remove(str(camera_id))


# ---- exposition -------------------------------------------------------------------------------
_PID_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when this process runs in multiprocess mode."""
    value = os.environ.get(MULTIPROC_ENV, "")
    return Path(value) if value else None


def _prune_dead(directory: Path) -> None:
    """Drop live gauges of processes that are gone (a worker restarted by uvicorn)."""
    for path in directory.glob("gauge_live*.db"):
        m = _PID_FILE.match(path.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():  # Linux: the process is gone
            _mp.mark_process_dead(int(m.group(1)), str(directory))  # type: ignore[no-untyped-call]


def render() -> bytes:
    """The exposition text of this process (or of every worker, in multiprocess mode)."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    _prune_dead(directory)
    registry = CollectorRegistry()
    _mp.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def announce(command: str) -> None:
    """Set ``gtvision_build_info`` for this process."""
    BUILD.labels(__version__, command).set(1)


def serve_http(port: int, host: str, command: str) -> None:
    """Serve ``/metrics`` of this process on ``host:port`` from a daemon thread."""
    announce(command)
    if port <= 0:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as err:
        msg = (
            f"invalid configuration: GTV_METRICS_PORT={port}: cannot listen on {host}:{port}: "
            f"{err.strerror or err}"
        )
        raise ConfigError(msg) from None
    log.info("metrics of %s on http://%s:%d/metrics", command, host, port)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table(), end="")
