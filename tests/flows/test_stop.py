"""Ctrl-C stops ``gtvision run`` cleanly: exit 0, no Rust panic, the open incident is emitted.

A camera in constant motion (ffmpeg's ``testsrc``) keeps a motion incident open forever; the
stop must still emit it (its end close to the stop), like the end of a replayed file does.
(The 2-process SIGTERM stop is in ``test_cluster.py``.)
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gtvision.events import MotionIncident, parse_event

from .cluster_util import GTV, clean_env


def test_ctrl_c_ends_the_run_and_emits_the_open_incident(
    rtsp_publisher: Callable[..., Any], tmp_path: Path
) -> None:
    pub = rtsp_publisher("stop-moving", size="320x240")
    out = tmp_path / "events.jsonl"
    log = tmp_path / "run.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [*GTV, "run", "motion", "--jsonl", str(out)],
            env=clean_env(GTV_RTSP_URLS=pub.url),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "camera.online" not in (
            out.read_text() if out.exists() else ""
        ):
            time.sleep(0.2)
        time.sleep(4)  # moving all along: one incident open, nothing emitted yet
        assert "motion.incident" not in out.read_text()
        stopped = datetime.now(UTC)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text(errors="replace")
    assert code == 0, text
    assert took < 10, f"stopped in {took:.1f} s"
    assert "panicked" not in text
    assert "Traceback" not in text
    events = [parse_event(line) for line in out.read_text().splitlines()]
    incidents = [e for e in events if isinstance(e, MotionIncident)]
    assert len(incidents) == 1, incidents
    assert abs((incidents[0].end - stopped).total_seconds()) < 2.0, (incidents[0], stopped)
