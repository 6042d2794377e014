"""Prometheus metrics of ingest: frames, drops, camera health, motion gate.

They live in the default registry: ``gtvision run --metrics-port N`` serves them, and the web
app's ``/metrics`` shows them when it runs in the same process (demo).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FRAMES = Counter(
    "gtvision_frames_total",
    "Frames decoded and passed into the flow (after the rate cap)",
    ["camera"],
)
DROPPED = Counter(
    "gtvision_frames_dropped_total", "Frames dropped because the flow fell behind", ["camera"]
)
ONLINE = Gauge("gtvision_camera_online", "1 while the camera delivers frames", ["camera"])
OFFLINE = Counter("gtvision_camera_offline_total", "Camera outages by reason", ["camera", "reason"])
GATE = Counter(
    "gtvision_motion_gate_frames_total",
    "Frames seen by the motion gate by outcome (passed or skipped)",
    ["camera", "outcome"],
)
