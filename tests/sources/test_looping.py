"""LoopingSource: real-time loops re-anchored at each start, stop flag, late frames dropped."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from gtvision.events import Frame
from gtvision.sources.looping import LoopingSource
from gtvision.sources.synthetic import write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("loop") / "clip.mp4", duration_s=1.0)


def _run(source: LoopingSource, slow_s: float = 0.0) -> list[tuple[int, datetime]]:
    out: list[tuple[int, datetime]] = []
    flow = Dataflow("loop_test")
    frames = op.input("in", flow, source)

    def seen(item: object) -> tuple[int, datetime]:
        assert isinstance(item, Frame)
        if slow_s:
            time.sleep(slow_s)
        return item.index, item.ts

    op.output("out", op.map("seen", frames, seen), TestingSink(out))
    run_main(flow)
    return out


def test_loops_are_real_time_and_re_anchored(clip: Path) -> None:
    began = datetime.now(UTC)
    source = LoopingSource(clip, city_id=1, camera_id=2, analysis_fps=5, loops=2)
    t0 = time.monotonic()
    out = _run(source)
    assert time.monotonic() - t0 >= 1.6, "two loops of a 1 s clip are paced in real time"
    indices = [i for i, _ in out]
    assert indices.count(0) == 2, indices
    times = [ts for _, ts in out]
    assert times == sorted(times), "the second loop is anchored after the first"
    assert len(set(times)) == len(times), "every loop yields new frame times (new event ids)"
    assert times[0] >= began - timedelta(seconds=1)
    assert source.dropped == 0


def test_stop_flag_ends_an_endless_loop(clip: Path) -> None:
    stop = threading.Event()
    source = LoopingSource(clip, city_id=1, camera_id=2, loops=0, stop=stop)
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    t0 = time.monotonic()
    out = _run(source)
    assert time.monotonic() - t0 < 4.0
    assert out, "frames flowed until the stop"


def test_frames_behind_the_wall_clock_are_dropped(clip: Path) -> None:
    source = LoopingSource(clip, city_id=1, camera_id=2, analysis_fps=15, loops=2, max_lag_s=0.3)
    out = _run(source, slow_s=0.15)  # a flow at ~7 fps behind a 15 fps video
    assert source.dropped > 0
    assert len(out) + source.dropped == 2 * 15
