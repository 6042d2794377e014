"""The demo flow: the LPR flow over a video looped in real time, into Postgres and the feed.

``build_demo_flow`` only chooses the source (:class:`~gtvision.sources.looping.LoopingSource`,
which stops when ``stop`` is set) and the sink (:class:`~gtvision.sinks.postgres.EventSink`
publishing to the given feed, so the web app in the same process sees every stored event); the
steps in between are the built-in LPR flow's: motion gate, plate reading, one pass per vehicle,
hotlist alerts from the ``hotlists`` table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow

from gtvision.config import Settings
from gtvision.sinks.feed import FeedPublisher

log = logging.getLogger(__name__)
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


class FlowThread:
    """Bytewax ``run_main`` in a thread; ``stop()`` sets the flag the demo source watches."""

    def __init__(
        self, build: Callable[[threading.Event], Any], warm_up: Callable[[], None] | None = None
    ) -> None:
        self.stop_flag = threading.Event()
        self.running = False  # True once the dataflow itself runs (after the warm-up)
        self._warm_up = warm_up
        self.error: BaseException | None = None
        self._flow = build(self.stop_flag)
        self._thread = threading.Thread(target=self._run, name="gtv-flow", daemon=True)

    def _run(self) -> None:
        from bytewax.testing import run_main

        try:
            if self._warm_up is not None:
                self._warm_up()
            if self.stop_flag.is_set():
                return
            self.running = True
            run_main(self._flow)
        except BaseException as err:  # reported by the main thread
            self.error = err
            log.exception("the demo flow stopped with an error")

    def start(self) -> None:
        """Start the flow."""
        self._thread.start()

    def is_alive(self) -> bool:
        """Whether the flow still runs."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the flow to stop and wait for it; return whether it ended in time.

        A flow still warming up writes nothing yet: it is not waited for.
        """
        self.stop_flag.set()
        self._thread.join(timeout_s if self.running else 0.2)
        return not self._thread.is_alive()


def warm_up(models_dir: Path) -> None:
    """Load a plate reader and read one sample frame before the video starts.

    The first read of a process pays for the imports and the first inference (seconds, more on
    a busy machine); done here, the flow's own reader is ready before the first car arrives.
    """
    import numpy as np

    from gtvision.operators.lpr import PlateReader
    from gtvision.sources.synthetic import SAMPLE_CARS, render_frame

    car = SAMPLE_CARS[0]
    bgr = np.ascontiguousarray(render_frame(car.enter_s + car.duration_s / 2)[:, :, ::-1])
    PlateReader.load(models_dir).read(bgr)
