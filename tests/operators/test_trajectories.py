"""Cross-camera trajectories: rules, old/Mercosul join, lateness, bounded state, recovery."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main
from pydantic import ValidationError

from gtvision.events import PlatePass, PlateTrajectory
from gtvision.operators.trajectories import (
    Rule,
    Spread,
    Then,
    TrajectoryConfig,
    _Logic,
    plate_trajectories,
)

T0 = datetime(2026, 4, 2, 7, 0, tzinfo=UTC)


def seen(camera: int, minute: float, plate: str = "BRA2E19", city: int = 4) -> PlatePass:
    t = T0 + timedelta(minutes=minute)
    return PlatePass(
        city_id=city, camera_id=camera, ts=t, plate=plate, confidence=0.9, first_seen=t,
        last_seen=t + timedelta(seconds=2), reads=3,
    )  # fmt: skip


def run(
    passes: list[PlatePass], rules: list[Rule], lateness_s: float = 60.0
) -> list[PlateTrajectory]:
    got: list[PlateTrajectory] = []
    flow = Dataflow("traj")
    up = op.input("in", flow, TestingSource(passes))
    cfg = TrajectoryConfig(lateness_s=lateness_s, idle_s=None)
    op.output("out", plate_trajectories("t", up, rules, cfg), TestingSink(got))
    run_main(flow)  # type: ignore[no-untyped-call]
    return got


def test_a_then_b_within_t_joins_old_and_mercosul_reads() -> None:
    rule = Then(cameras=(1, 2), within_s=600)
    passes = [
        seen(1, 0, "BRA2519"),  # old form of BRA2F19
        seen(2, 4, "BRA2F19"),  # Mercosul form: same vehicle
        seen(2, 30, "QQQ1A11"),
        seen(1, 40, "QQQ1A11"),  # B before A: no match for "1 then 2"
        seen(1, 50, "ZZZ9Z99"),
        seen(2, 61, "ZZZ9Z99"),  # too late (11 minutes)
        seen(2, 5, "BRA2F19", city=5),  # another city: never joins city 4's sightings
    ]
    (traj,) = run(passes, [rule])
    assert traj.plate == "BRA2F19"
    assert traj.rule == "1 then 2 within 600s"
    assert [(s.camera_id, s.plate) for s in traj.sightings] == [(1, "BRA2519"), (2, "BRA2F19")]
    assert (traj.camera_id, traj.ts, traj.city_id) == (2, T0 + timedelta(minutes=4), 4)
    assert traj.first_pass == passes[0].id


def test_n_cameras_within_t_once_per_starting_pass() -> None:
    rule = Spread(min_cameras=3, within_s=900)
    passes = [seen(1, 0), seen(2, 5), seen(2, 6), seen(3, 9), seen(4, 12), seen(9, 40)]
    (traj,) = run(passes, [rule])  # windows ending at 9 and 12 start at the same pass
    assert [s.camera_id for s in traj.sightings] == [1, 2, 3]
    # the window slides: a new first pass is a new trajectory
    passes = [seen(1, 0), seen(2, 5), seen(2, 6), seen(3, 9), seen(4, 20), seen(5, 22)]
    trajs = run(passes, [rule])
    assert [[s.camera_id for s in t.sightings] for t in trajs] == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]
    with pytest.raises(ValidationError, match=r"3 cameras asked among only \[1, 2\]"):
        Spread(min_cameras=3, within_s=60, cameras=(1, 2))


def test_out_of_order_input_within_lateness_gives_the_in_order_result() -> None:
    rules: list[Rule] = [
        Then(cameras=(1, 2, 3), within_s=1200),
        Spread(min_cameras=2, within_s=300),
    ]
    plates = ["ABC1D23", "XYZ9K87", "JKL4M56"]
    ordered = sorted(
        (seen(cam, minute + 7 * i, plate) for i, plate in enumerate(plates)
         for cam, minute in ((1, 0), (2, 3), (3, 9), (2, 14))),
        key=lambda p: p.first_seen,
    )  # fmt: skip
    want = sorted(t.id for t in run(ordered, rules))
    assert len(want) >= 6
    rng = random.Random(7)
    for _ in range(5):
        # shuffle within a lateness of 4 minutes (event time)
        shuffled = sorted(
            ordered, key=lambda p: p.first_seen + timedelta(minutes=rng.uniform(0, 4))
        )
        assert sorted(t.id for t in run(shuffled, rules, lateness_s=240)) == want


def test_state_is_bounded_and_snapshots_resume() -> None:
    rule = Then(cameras=(1, 2), within_s=60)
    cfg = TrajectoryConfig(lateness_s=30, idle_s=None, max_sightings=8)
    logic = _Logic((rule,), cfg, lambda: T0, None)
    for k in range(200):  # a parked car read every 5 minutes at camera 1
        logic.on_item(seen(1, 5 * k))
    assert len(logic.state.sightings) <= 8
    assert logic.state.sightings[-1].ts == T0 + timedelta(minutes=995)
    resumed = _Logic((rule,), cfg, lambda: T0, pickle.loads(pickle.dumps(logic.snapshot())))
    out, _ = resumed.on_item(seen(2, 995.5))
    out = [*out, *resumed.on_eof()[0]]
    assert [[s.camera_id for s in t.sightings] for t in out] == [[1, 2]]


def test_trajectories_of_hotlisted_plates_raise_alerts() -> None:
    from gtvision.operators.hotlist import HotlistEntry, StaticHotlists, alert_for
    from gtvision.operators.trajectories import trajectory_alert

    passes = [seen(1, 0, "BRA2519"), seen(2, 4, "BRA2F19")]
    (traj,) = run(passes, [Then(cameras=(1, 2), within_s=600)])
    listed = StaticHotlists(
        [HotlistEntry(id=9, city_id=4, pattern="BRA2519", kind="exact", reason="roubo")]
    )
    alert = trajectory_alert(traj, listed.matcher(4), T0)
    assert alert is not None
    assert (alert.pass_id, alert.match.entry_id, alert.match.reason) == (traj.id, 9, "roubo")
    assert (alert.camera_id, alert.ts) == (2, traj.ts)
    pass_alert = alert_for(passes[0], listed.matcher(4), T0)
    assert pass_alert is not None
    assert pass_alert.id != alert.id  # the pass's own alert stays a separate event
    assert trajectory_alert(traj, StaticHotlists(()).matcher(4), T0) is None
