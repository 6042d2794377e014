"""``lpr.detected`` direction: line crossing of the pass's path, else toward/away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from gtvision.config import Settings
from gtvision.events import Box, PlatePass, PlateRead
from gtvision.flows.api import FlowContext, Line
from gtvision.flows.fronts import _Direction
from gtvision.operators.geometry import crossing
from gtvision.operators.passes import PassConfig, plate_passes

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
STOP = Line(name="stop", points=((0.0, 0.5), (1.0, 0.5)))  # pointing right: right-hand = down


def test_crossing_sides_and_segment_ends() -> None:
    assert crossing(STOP, (0.5, 0.2), (0.5, 0.8)) == "out"  # downwards: left → right-hand side
    assert crossing(STOP, (0.5, 0.8), (0.5, 0.2)) == "in"
    assert crossing(STOP, (0.5, 0.2), (0.5, 0.4)) is None  # stays on one side
    short = Line(name="short", points=((0.0, 0.5), (0.3, 0.5)))
    assert crossing(short, (0.5, 0.2), (0.5, 0.8)) is None  # crosses the extension only


def plate_pass(first: Box, last: Box) -> PlatePass:
    return PlatePass(
        city_id=1, camera_id=7, ts=T0, plate="BRA2E19", confidence=0.9, first_seen=T0,
        last_seen=T0 + timedelta(seconds=2), reads=5, first_box=first, last_box=last,
        frame_size=(1000, 1000),
    )  # fmt: skip


def ctx_with(shapes: tuple[Line, ...]) -> FlowContext:
    return FlowContext(source=None, sink=None, settings=Settings(), _shapes=lambda _cam: shapes)  # type: ignore[arg-type]


def test_passes_get_in_out_toward_away_only_on_cameras_with_a_line() -> None:
    far, near = Box(x1=480, y1=300, x2=520, y2=320), Box(x1=440, y1=700, x2=560, y2=760)
    with_line = _Direction(ctx_with((STOP,)))
    assert with_line(plate_pass(far, near)).direction == "out"
    assert with_line(plate_pass(near, far)).direction == "in"
    low = Box(x1=480, y1=600, x2=520, y2=620)  # below the line all along, growing
    assert with_line(plate_pass(low, near)).direction == "toward"
    assert with_line(plate_pass(near, low)).direction == "away"
    same = plate_pass(low, low)
    assert with_line(same).direction is None
    assert with_line(same).id == same.id  # the direction is not part of the identity
    assert _Direction(ctx_with(()))(plate_pass(far, near)).direction is None


def test_a_pass_carries_its_first_and_last_boxes_in_time_order() -> None:
    def read(t: float, y: float) -> PlateRead:
        return PlateRead(
            city_id=1, camera_id=7, ts=T0 + timedelta(seconds=t), frame_index=round(t * 5),
            text="BRA2E19", confidence=0.9, box=Box(x1=400, y1=y, x2=500, y2=y + 30),
            frame_size=(1280, 720),
        )  # fmt: skip

    reads = [read(0.2, 200), read(0.0, 100), read(0.6, 400), read(0.4, 300)]  # out of order
    got: list[PlatePass] = []
    flow = Dataflow("boxes")
    up = op.input("in", flow, TestingSource(reads))
    op.output("out", plate_passes("p", up, None, PassConfig(idle_s=None)), TestingSink(got))
    run_main(flow)  # type: ignore[no-untyped-call]
    (p,) = got
    assert p.first_box is not None
    assert p.last_box is not None
    assert (p.first_box.y1, p.last_box.y1, p.frame_size) == (100, 400, (1280, 720))
