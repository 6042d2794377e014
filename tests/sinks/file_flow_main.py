"""Driver of the crash-recovery tests: a file-driven flow into the Postgres sink.

Run as ``python file_flow_main.py FLOW INPUT DSN RECOVERY_DIR SNAPSHOT_S REDIS_URL REDIS_PREFIX``
(the tests SIGKILL it). ``FLOW`` is ``motion`` (the real ``FileSource`` and motion flow of
``gtvision.flows.motion`` over a video) or ``readings`` (the deterministic readings-file flow of
``readings_flow.py``); both end in :class:`~gtvision.sinks.postgres.EventSink` (Postgres and a
Redis feed) and run with Bytewax recovery.
"""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from gtvision.config import load_settings
from gtvision.sinks.feed import RedisFeed
from gtvision.sinks.postgres import EventSink

sys.path.insert(0, str(Path(__file__).parent))
readings_flow = importlib.import_module("readings_flow")

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _motion_flow(video: str, sink: EventSink) -> Dataflow:
    from gtvision.flows.context import FlowContext
    from gtvision.flows.motion import build
    from gtvision.sources.file import FileSource

    source = FileSource(video, city_id=5, camera_id=9, analysis_fps=0, start=START)
    ctx = FlowContext(
        source=source, sink=sink, settings=load_settings(), replay=True, name="crash_replay"
    )
    return build(ctx)


def main(
    flow: str,
    path: str,
    dsn: str,
    recovery_dir: str,
    snapshot_s: str,
    redis_url: str,
    prefix: str,
) -> None:
    """Run the flow once (resuming from ``recovery_dir``)."""
    sink = EventSink(dsn, feed_factory=lambda: RedisFeed(redis_url, prefix))
    if flow == "readings":
        dataflow = readings_flow.build(Path(path), sink)
    else:
        dataflow = _motion_flow(path, sink)
    cli_main(
        dataflow,
        epoch_interval=timedelta(seconds=float(snapshot_s)),
        recovery_config=RecoveryConfig(Path(recovery_dir)),
    )


if __name__ == "__main__":
    main(*sys.argv[1:8])
