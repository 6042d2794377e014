from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow, Stream
from bytewax.testing import TestingSink, TestingSource, run_main

from gtvision.events import Box, PlateCandidate, PlatePass, PlateRead
from gtvision.operators.passes import (
    CameraTick,
    PassConfig,
    PassState,
    _PassLogic,
    plate_passes,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
LEFT = Box(x1=100, y1=400, x2=260, y2=450)
RIGHT = Box(x1=900, y1=420, x2=1060, y2=470)


class FixedClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def read(
    text: str,
    t: float,
    *,
    conf: float = 0.9,
    box: Box = LEFT,
    camera: int = 1,
    crop: bytes | None = None,
    chars: tuple[float, ...] | None = None,
) -> PlateRead:
    frame = round(t * 10)
    cands = (PlateCandidate(text=text, confidence=conf, char_confidences=chars),) if chars else ()
    return PlateRead(
        city_id=7,
        camera_id=camera,
        ts=T0 + timedelta(seconds=t),
        frame_index=frame,
        text=text,
        confidence=conf,
        box=box,
        candidates=cands,
        crop_jpeg=crop,
        models={"detector": "yolo@abc"},
    )


def tick(t: float, camera: int = 1) -> CameraTick:
    return CameraTick(city_id=7, camera_id=camera, ts=T0 + timedelta(seconds=t))


def feed(logic: _PassLogic, items: Sequence[PlateRead | CameraTick]) -> list[PlatePass]:
    out: list[PlatePass] = []
    for item in items:
        emitted, _ = logic.on_item(item)
        out.extend(emitted)
    return out


def logic(**kw: float) -> tuple[_PassLogic, FixedClock]:
    clock = FixedClock()
    return _PassLogic(PassConfig(**kw), clock, None), clock  # type: ignore[arg-type]


def test_ocr_variants_of_one_vehicle_make_one_pass_with_voted_text() -> None:
    lg, _ = logic()
    texts = ["ABC1D23", "A8C1D23", "ABC1023", "ABC1D23", "ABCID23", "ABC1D23"]
    reads = [read(t, i * 0.1, conf=0.8 + 0.02 * i) for i, t in enumerate(texts)]
    assert feed(lg, reads) == []  # nothing ends while the vehicle is in view
    out, discard = lg.on_eof()
    passes = list(out)
    assert discard
    assert len(passes) == 1
    p = passes[0]
    assert p.plate == "ABC1D23"
    assert p.reads == 6
    assert p.first_seen == T0
    assert p.last_seen == T0 + timedelta(seconds=0.5)
    assert p.ts == p.first_seen
    assert p.camera_id == 1
    assert p.city_id == 7
    assert p.models == {"detector": "yolo@abc"}
    assert p.candidates[0].text == "ABC1D23"
    assert len({c.text for c in p.candidates}) == len(p.candidates) > 1


def test_gap_in_event_time_ends_the_pass_and_starts_another() -> None:
    lg, _ = logic(gap_s=1.0)
    out = feed(lg, [read("ABC1234", 0.0), read("ABC1234", 0.5)])
    assert out == []
    out = feed(lg, [read("ABC1234", 1.4)])  # within 1 s of the last read: same pass
    assert out == []
    out = feed(lg, [read("ABC1234", 2.6)])  # 1.2 s after the last read: new pass
    assert [p.reads for p in out] == [3]
    assert out[0].last_seen == T0 + timedelta(seconds=1.4)
    rest, _ = lg.on_eof()
    assert [p.first_seen for p in rest] == [T0 + timedelta(seconds=2.6)]


def test_ticks_end_a_pass_without_further_reads() -> None:
    lg, _ = logic(gap_s=1.0, tick_lateness_s=2.0)
    assert feed(lg, [read("XYZ9876", 0.0), tick(0.5), tick(3.0)]) == []
    out = feed(lg, [tick(3.1)])
    assert [p.plate for p in out] == ["XYZ9876"]
    assert lg.notify_at() is not None  # tombstone kept to absorb late reads


def test_late_read_of_an_emitted_pass_is_absorbed() -> None:
    lg, _ = logic(gap_s=1.0, tick_lateness_s=0.0)
    out = feed(lg, [read("XYZ9876", 0.0), tick(1.5)])
    assert len(out) == 1
    assert feed(lg, [read("XYZ9B76", 0.8)]) == []  # late and confusable: no new pass
    rest, _ = lg.on_eof()
    assert list(rest) == []


def test_wall_clock_idle_flushes_open_passes() -> None:
    lg, clock = logic(gap_s=1.0, idle_s=5.0)
    feed(lg, [read("QWE4R56", 0.0)])
    assert lg.notify_at() == T0 + timedelta(seconds=5)
    no_wall, _ = logic(idle_s=None)  # type: ignore[arg-type]
    feed(no_wall, [read("QWE4R56", 0.0)])
    assert no_wall.notify_at() is None
    clock.now = T0 + timedelta(seconds=6)
    out, discard = lg.on_notify()
    assert [p.plate for p in out] == ["QWE4R56"]
    assert discard


def test_two_cars_in_view_give_two_passes() -> None:
    lg, _ = logic()
    items: list[PlateRead | CameraTick] = []
    for i in range(8):
        items.append(read("BRA2E19", i * 0.1, box=LEFT))
        items.append(read("FZB9581", i * 0.1, box=RIGHT))
    items.append(read("BRA2E1S", 0.85, box=LEFT))
    feed(lg, items)
    out, _ = lg.on_eof()
    got = sorted((p.plate, p.reads) for p in out)
    assert got == [("BRA2E19", 9), ("FZB9581", 8)]
    assert len({p.id for p in out}) == 2  # same first_seen, different vehicles


def test_ticks_overtaking_reads_of_earlier_frames_do_not_split_a_pass() -> None:
    lg, _ = logic(gap_s=1.0, tick_lateness_s=3.5)
    # a source batch of 3 s: its ticks reach the grouping step before its reads
    items: list[PlateRead | CameraTick] = [read("ABC1234", 0.0)]
    items += [tick(0.2 * i) for i in range(1, 16)]
    items += [read("ABC1234", 0.2 * i) for i in range(1, 16)]
    assert feed(lg, items) == []
    out, _ = lg.on_eof()
    assert [p.reads for p in out] == [16]


def test_tick_lateness_grows_with_a_low_frame_rate() -> None:
    lg, _ = logic(gap_s=1.0, tick_lateness_s=0.5)
    # 1 fps: ten frame intervals of lateness, so ticks 5 s ahead do not end the pass
    items: list[PlateRead | CameraTick] = [tick(0.0), read("ABC1234", 0.0)]
    items += [tick(float(i)) for i in range(1, 6)]
    items += [read("ABC1234", 1.0), read("ABC1234", 2.0)]
    assert feed(lg, items) == []
    assert feed(lg, [tick(float(i)) for i in range(6, 13)]) == []  # 12 - 10 <= 2 + 1
    assert [p.reads for p in feed(lg, [tick(13.0), tick(13.5)])] == [3]


def test_box_overlap_does_not_join_across_a_time_gap() -> None:
    lg, _ = logic(gap_s=1.5)
    feed(lg, [read("AAA1111", 0.0), read("KKK7777", 1.0)])  # same spot, next car
    out, _ = lg.on_eof()
    assert sorted(p.plate for p in out) == ["AAA1111", "KKK7777"]


def test_misread_frame_joins_by_box_overlap() -> None:
    lg, _ = logic()
    reads = [read("JOG9221", i * 0.1) for i in range(5)]
    reads.insert(2, read("KLM4455", 0.15, conf=0.4))  # garbage text, same box
    feed(lg, reads)
    out, _ = lg.on_eof()
    assert [(p.plate, p.reads) for p in out] == [("JOG9221", 6)]


def test_dropped_character_reads_are_aligned_in_the_vote() -> None:
    lg, _ = logic()
    feed(lg, [read("HPM9362", 0.0, conf=0.6), read("HPM362", 0.1), read("HPM9362", 0.2)])
    out, _ = lg.on_eof()
    assert [p.plate for p in out] == ["HPM9362"]


def test_per_character_confidences_decide_the_vote() -> None:
    lg, _ = logic()
    sure_b = (0.9, 0.95, 0.9, 0.9, 0.9, 0.9, 0.9)
    unsure_b = (0.9, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9)
    feed(
        lg,
        [
            read("ABC1234", 0.0, chars=sure_b),
            read("A8C1234", 0.1, chars=unsure_b),
            read("A8C1234", 0.2, chars=unsure_b),
        ],
    )
    out, _ = lg.on_eof()
    assert [p.plate for p in out] == ["ABC1234"]


def test_best_crop_and_box_come_from_the_most_confident_read() -> None:
    lg, _ = logic()
    feed(
        lg,
        [
            read("ABC1234", 0.0, conf=0.5, crop=b"low"),
            read("ABC1234", 0.1, conf=0.95, crop=b"high", box=RIGHT),
            read("ABC1234", 0.2, conf=0.7, crop=b"mid"),
        ],
    )
    out, _ = lg.on_eof()
    (p,) = out
    assert p.crop_jpeg == b"high"
    assert p.box == RIGHT


def test_max_pass_duration_splits_a_parked_car() -> None:
    lg, _ = logic(max_pass_s=2.0)
    out = feed(lg, [read("PRK0001", i * 0.5) for i in range(7)])  # 0 .. 3 s
    assert [p.reads for p in out] == [5]
    rest, _ = lg.on_eof()
    assert [(p.reads, p.first_seen) for p in rest] == [(2, T0 + timedelta(seconds=2.5))]


def test_snapshot_resume_gives_the_same_passes_and_ids() -> None:
    reads = [read("ABC1234", i * 0.1) for i in range(5)]
    lg, clock = logic()
    feed(lg, reads[:3])
    snap = lg.snapshot()
    assert isinstance(snap, PassState)
    resumed = _PassLogic(PassConfig(), clock, snap)
    feed(resumed, reads[3:])
    feed(lg, reads[3:])
    a, _ = lg.on_eof()
    b, _ = resumed.on_eof()
    assert [p.to_json() for p in a] == [p.to_json() for p in b]


def test_ids_are_deterministic_across_runs() -> None:
    def run() -> list[str]:
        lg, _ = logic()
        feed(lg, [read("ABC1234", 0.0), read("ABC1234", 0.1)])
        out, _ = lg.on_eof()
        return [p.id for p in out]

    assert run() == run()


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="gap_s=0"):
        PassConfig(gap_s=0)


def test_flow_groups_per_camera_and_flushes_at_eof() -> None:
    items: list[PlateRead | CameraTick] = []
    for i in range(6):
        items.append(read("ABC1D23" if i != 3 else "A8C1D23", i * 0.1, camera=1))
        items.append(read("ABC1D23", i * 0.1, camera=2))
    items.append(read("XYZ9876", 5.0, camera=1))
    items.append(tick(9.0, camera=2))  # after the reads of its camera, as read_frames gives it
    got = _run_passes(items, PassConfig())
    summary = sorted((p.camera_id, p.plate, p.reads) for p in got)
    assert summary == [(1, "ABC1D23", 6), (1, "XYZ9876", 1), (2, "ABC1D23", 6)]
    assert len({p.id for p in got}) == 3


def test_reads_with_one_unsure_character_count_less_than_clear_reads() -> None:
    # the plate drifts out of the picture: later reads lose the first letter and the format
    # alignment invents a character (confidence ~0), the other characters look sure
    lg, _ = logic()
    clear = (0.93, 1.0, 0.99, 1.0, 1.0, 1.0, 1.0)
    shifted = (1.0, 0.99, 0.0, 1.0, 1.0, 1.0, 1.0)
    reads = [read("ABC1234", 0.1 * i, conf=0.95, chars=clear) for i in range(2)]
    reads += [read("BCZ1234", 0.2 + 0.1 * i, conf=0.35, chars=shifted) for i in range(4)]
    feed(lg, reads)
    out, _ = lg.on_eof()
    assert [(p.plate, p.reads) for p in out] == [("ABC1234", 6)]


def _loaded_reader(
    cars: Sequence[tuple[str, float, float]],
    *,
    burst: int,
    hole: int,
    reads_first: bool,
    fps: float = 5.0,
) -> list[PlateRead | CameraTick]:
    """What a loaded live reader delivers: ``burst`` consecutive analysed frames, then ``hole``
    frames dropped, repeatedly. Per burst the frames' ticks come before or after their reads:
    both happen (ticks do not wait for the detector, but the read step may run first).
    ``cars``: (plate, enter_s, leave_s), read on every frame in view."""
    items: list[PlateRead | CameraTick] = []
    end = max(leave for _, _, leave in cars) + 30.0
    frame, period = 0, burst + hole
    while frame / fps < end:
        kept = [frame + i for i in range(burst)]
        ticks = [tick(f / fps) for f in kept]
        reads = [read(p, f / fps) for f in kept for p, a, b in cars if a <= f / fps <= b]
        items.extend([*reads, *ticks] if reads_first else [*ticks, *reads])
        frame += period
    return items


@pytest.mark.parametrize("reads_first", [False, True])
@pytest.mark.parametrize(("burst", "hole"), [(4, 0), (4, 6), (4, 10), (3, 15), (2, 12)])
def test_dropped_frames_do_not_split_a_pass(burst: int, hole: int, reads_first: bool) -> None:
    """Holes of 1.2-3 s of dropped frames (gap 1.5 s) inside a vehicle's pass: still one pass
    per vehicle, and passes still end once frames are seen without the plate."""
    lg, _ = logic(gap_s=1.5)
    cars = [("BRA2E19", 0.0, 6.0), ("KLM3907", 14.0, 19.0)]
    out = feed(lg, _loaded_reader(cars, burst=burst, hole=hole, reads_first=reads_first))
    assert [p.plate for p in out] == ["BRA2E19", "KLM3907"]
    rest, _ = lg.on_eof()
    assert list(rest) == []  # both ended on observed frames, not at the end of the stream


def test_reads_ahead_of_their_ticks_are_held_until_the_frames_are_seen() -> None:
    """A read whose frame's tick has not arrived yet is decided once it has: the black frames
    between two photos (ticks) come after the next photo's first reads, and must still count."""
    lg, _ = logic(gap_s=1.5, iou_window_s=0.5, tick_lateness_s=0.2, tick_lateness_frames=1)
    items: list[PlateRead | CameraTick] = []
    for i in range(10):  # photo 1: 0.0-1.8
        items += [read("NZJ6581", i * 0.2), tick(i * 0.2)]
    items.append(read("NZO6276", 3.0))  # photo 2's first read, before the gap's ticks
    items += [tick(2.0 + i * 0.2) for i in range(6)]  # 2.0-3.0: black, then photo 2
    out = feed(lg, items)
    rest, _ = lg.on_eof()
    assert sorted((p.plate, p.reads) for p in [*out, *rest]) == [("NZJ6581", 10), ("NZO6276", 1)]


def test_camera_seen_without_drops_still_ends_a_pass_on_time() -> None:
    """Every frame analysed: observed time is event time, the pass ends gap + lateness after
    its last read (as before dropped frames were accounted for)."""
    lg, _ = logic(gap_s=1.0, tick_lateness_s=0.5, tick_lateness_frames=1)
    items: list[PlateRead | CameraTick] = [read("ABC1234", 0.0)]
    items += [tick(i / 10) for i in range(1, 15)]
    assert feed(lg, items) == []  # 1.4 - 0.5 = 0.9 <= 0 + 1.0
    assert [p.plate for p in feed(lg, [tick(1.6)])] == ["ABC1234"]  # 1.1 > 1.0


def _ticked(
    ticks_s: Sequence[float], reads_s: Sequence[float], text: str = "KLM3907"
) -> list[PlateRead | CameraTick]:
    """A live camera's stream at 5 fps: each frame's reads, then its tick (the order
    ``read_frames`` gives them in); ``reads_s`` must be frames of ``ticks_s``."""
    out: list[PlateRead | CameraTick] = []
    for t in ticks_s:
        out += [read(text, t) for r in reads_s if abs(r - t) < 1e-9]
        out.append(tick(t))
    return out


def _run_passes(items: list[PlateRead | CameraTick], config: PassConfig) -> list[PlatePass]:
    """``plate_passes`` in a one-worker Bytewax flow over one stream of reads and ticks."""
    got: list[PlatePass] = []
    flow = Dataflow("passes_run")
    stream: Stream[PlateRead | CameraTick] = op.input("in", flow, TestingSource(items))
    op.output("out", plate_passes("passes", stream, None, config), TestingSink(got))
    run_main(flow)  # type: ignore[no-untyped-call]
    return got


@pytest.mark.parametrize("hole_s", [0.6, 1.6, 2.4, 4.0])
def test_a_hole_of_dropped_frames_after_an_idle_stretch_does_not_split_the_pass(
    hole_s: float,
) -> None:
    """An idle camera (ticks, no plate), then a pass whose second frame comes after a hole.

    The reader dropped the frames of the hole (no ticks): the hole is not "unseen plate". The
    camera's observed clock must already know the frame interval when the pass starts; a state
    rebuilt at the pass's first read did not, counted the hole in full and split the pass (a
    loaded 2-process cluster: one read, 1.6 s of dropped frames, then the rest of the pass).
    """
    idle = [round(0.2 * i, 1) for i in range(15)]  # 0.0 .. 2.8: no plate
    first = 3.0
    rest = [round(first + hole_s + 0.2 * i, 1) for i in range(4)]
    after = [round(rest[-1] + 0.2 * i, 1) for i in range(1, 20)]
    items = _ticked([*idle, first, *rest, *after], [first, *rest])
    got = _run_passes(items, PassConfig(gap_s=1.5, idle_s=None))
    assert [(p.plate, p.reads) for p in got] == [("KLM3907", 5)]


def test_plate_absent_for_longer_than_the_gap_still_ends_the_pass() -> None:
    """The other side: frames that were analysed (ticks) without the plate do count."""
    ticks = [round(0.2 * i, 1) for i in range(40)]  # 0.0 .. 7.8, no hole
    items = _ticked(ticks, [3.0, 3.2, 5.4, 5.6])  # 2.0 s of analysed frames without it
    got = _run_passes(items, PassConfig(gap_s=1.5, idle_s=None))
    assert [(p.plate, p.reads) for p in got] == [("KLM3907", 2), ("KLM3907", 2)]
