"""The demo flow: the LPR flow over a video looped in real time, into Postgres and the feed.

``build_demo_flow`` only chooses the source (:class:`~gtvision.sources.looping.LoopingSource`,
which stops when ``stop`` is set) and the sink (:class:`~gtvision.sinks.postgres.EventSink`
publishing to the given feed, so the web app in the same process sees every stored event); the
steps in between are the built-in LPR flow's: motion gate, plate reading, one pass per vehicle,
hotlist alerts from the ``hotlists`` table.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bytewax.dataflow import Dataflow

from gtvision.config import Settings
from gtvision.sinks.feed import FeedPublisher

PASS_GAP_S = 2.5


def build_demo_flow(
    settings: Settings,
    video: Path,
    city_id: int,
    camera_id: int,
    feed: FeedPublisher,
    stop: threading.Event,
    *,
    loops: int = 0,
) -> Dataflow:
    """The LPR flow on ``video`` (looped) as camera ``camera_id`` of city ``city_id``."""
    from gtvision.flows.context import FlowContext
    from gtvision.flows.lpr import build
    from gtvision.operators.passes import PassConfig
    from gtvision.sinks.postgres import EventSink
    from gtvision.sources.looping import LoopingSource

    source = LoopingSource(
        video,
        city_id=city_id,
        camera_id=camera_id,
        analysis_fps=settings.analysis_fps,
        loops=loops,
        stop=stop,
    )
    sink = EventSink.from_settings(settings, feed=feed)
    ctx = FlowContext(source=source, sink=sink, settings=settings, name="gtvision-demo")
    # A busy machine drops frames (see LoopingSource): allow longer holes inside one pass. Cars
    # of the sample video are 3.5 s apart and carry different plates, so passes never merge.
    return build(ctx, passes=PassConfig(gap_s=PASS_GAP_S))
