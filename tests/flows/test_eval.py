"""``gtvision eval``: the built-in and example flows scored on generated, labelled videos.

Bars (issue 18): precision and recall ≥ 0.95 for every labelled event type. The videos are
rendered here: moving boxes (motion, zones), the synthetic street with cars crossing a counting
line, and cars with rendered Mercosul/old plates seen by two cameras four minutes apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gtvision.flows.scoring import Label, score
from gtvision.sources.synthetic import SampleCar
from gtvision.sources.testvideo import make_video, moving_box, street_video

from .test_cli_flows import _env

REPO = Path(__file__).resolve().parents[2]
GTV = [sys.executable, "-m", "gtvision.cli"]
BARS = ["--min-precision", "0.95", "--min-recall", "0.95"]
NIGHT = "2026-05-02T00:59:55Z"  # 21:59:55 in São Paulo: the first box is before 22:00
YARD = '{"name": "yard", "points": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}'


def _eval(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [*GTV, "eval", *args, *BARS, "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env or _env(PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    for kind, s in report["types"].items():
        assert s["precision"] >= 0.95, (kind, report)
        assert s["recall"] >= 0.95, (kind, report)
        assert s["labels"] > 0, kind
    return report


@pytest.fixture(scope="module")
def boxes_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval_boxes")
    return make_video(
        root / "yard.mp4", duration=11, size=(320, 240), fps=10, bframes=0,
        filters=[moving_box(0.5, 3.5, speed=80, size=40), moving_box(7.0, 10.0, speed=80, size=40)],
    )  # fmt: skip


def test_motion_and_night_zone_flows_meet_the_bars(boxes_video: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "type,camera,time,zone,tolerance_s\n"
        "motion.incident,1,0.5,,1\n"
        "motion.incident,1,7.0,,1\n"
        "zone.entered,1,8.3,yard,1.5\n"  # the box at 21:59:56 is not at night: no label
    )
    common = [str(boxes_video), "--camera-id", "1", "--start", NIGHT, "--labels", str(labels)]
    motion = _eval(*common, "--flow", "motion", "--types", "motion.incident")
    assert motion["types"]["motion.incident"]["matched"] == 2
    night = _eval(
        *common, "--flow", "examples.flows.night_zone_motion:build", "--param", f"zone={YARD}",
        "--types", "zone.entered",
    )  # fmt: skip
    assert night["types"]["zone.entered"]["matched"] == 1
    assert night["false_events"] == []


def test_vehicles_per_window_counts_line_crossings_from_the_camera_table(
    pg_dsn: str, tmp_path: Path
) -> None:
    cars = [
        SampleCar("AAA1A11", "mercosul", 0.5, 3.0, (176, 32, 40), -0.18),
        SampleCar("BBB2B22", "mercosul", 5.0, 3.0, (40, 70, 150), 0.18),
        SampleCar("CCC3C33", "mercosul", 8.5, 3.0, (60, 60, 64), -0.18),
    ]
    video = street_video(tmp_path / "street.mp4", cars, duration=12)
    name = f"counter-{time.time_ns()}"
    line = '[{"kind": "line", "name": "stop", "points": [[0.0, 0.75], [1.0, 0.75]]}]'
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        city = conn.execute(
            "INSERT INTO cities (name) VALUES (%s) RETURNING id", (name,)
        ).fetchone()
        assert city is not None
        cam = conn.execute(
            "INSERT INTO cameras (city_id, name, stream_url, zones) "
            "VALUES (%s, %s, 'rtsp://127.0.0.1:1/x', %s::jsonb) RETURNING id",
            (city[0], name, line),
        ).fetchone()
        assert cam is not None
    labels = tmp_path / "labels.csv"
    labels.write_text(  # start 12:04:57: the first car crosses before 12:05, the others after
        "type,camera,time,count\n"
        f"vehicles.counted,{cam[0]},2026-05-01T12:00:00Z,1\n"
        f"vehicles.counted,{cam[0]},2026-05-01T12:05:00Z,2\n"
    )
    report = _eval(
        str(video), "--camera", name, "--start", "2026-05-01T12:04:57Z",
        "--flow", "examples.flows.vehicles_per_window:build", "--labels", str(labels),
        env=_env(PYTHONPATH=str(REPO), GTV_DATABASE_URL=pg_dsn),
    )  # fmt: skip
    assert report["types"]["vehicles.counted"]["matched"] == 2


def test_lpr_and_same_plate_flows_meet_the_bars(tmp_path: Path) -> None:
    red, blue = (176, 32, 40), (40, 70, 150)
    cam1 = street_video(
        tmp_path / "cam1.mp4", [SampleCar("BRA2E19", "mercosul", 0.3, 3.0, red, -0.18)], duration=4
    )
    cam2 = street_video(
        tmp_path / "cam2.mp4",
        [  # the same car with its old plate (BRA2419 ↔ BRA2E19), then another car
            SampleCar("BRA2419", "old", 0.3, 3.0, red, -0.18),
            SampleCar("GTV5K42", "mercosul", 3.8, 3.0, blue, 0.18),
        ],
        duration=7.5,
    )
    manifest = tmp_path / "two.csv"
    manifest.write_text(
        f"camera,file,start\n1,{cam1},2026-05-01T08:00:00Z\n2,{cam2},2026-05-01T08:04:00Z\n"
    )
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "type,camera,time,plate,tolerance_s\n"
        "lpr.detected,1,1.3,BRA2E19,1.5\n"
        "lpr.detected,2,1.3,BRA2419,1.5\n"
        "lpr.detected,2,4.8,GTV5K42,1.5\n"
        "plate.trajectory,2,1.3,BRA2E19,1.5\n"
    )
    report = _eval(
        "--manifest", str(manifest), "--labels", str(labels), "--fps", "5",
        "--flow", "examples.flows.same_plate_two_cameras:build",
    )  # fmt: skip
    assert report["types"]["plate.trajectory"]["matched"] == 1
    assert report["types"]["lpr.detected"]["matched"] == 3
    # the built-in lpr flow on the first camera
    first = tmp_path / "cam1.csv"
    first.write_text("".join(labels.read_text().splitlines(keepends=True)[:2]))
    builtin = _eval(
        str(cam1), "--camera-id", "1", "--start", "2026-05-01T08:00:00Z", "--fps", "5",
        "--labels", str(first), "--flow", "lpr",
    )  # fmt: skip
    assert builtin["types"]["lpr.detected"]["matched"] == 1


def test_scoring_matches_closest_first_and_lists_misses_and_false_events() -> None:
    from datetime import UTC, datetime

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        {"type": "lpr.detected", "camera_id": 1, "ts": "2026-01-01T00:00:10Z", "plate": "ABC1234"},
        {"type": "lpr.detected", "camera_id": 1, "ts": "2026-01-01T00:00:11Z", "plate": "XYZ9999"},
        {"type": "camera.online", "camera_id": 1, "ts": "2026-01-01T00:00:00Z"},
    ]
    labels = [
        Label(type="lpr.detected", camera=1, time=10.5, attrs={"plate": "ABC1C34"}),  # same car
        Label(type="lpr.detected", camera=1, time=30.0),
    ]
    report = score(events, labels, {1: t0}, tolerance_s=2.0)
    s = report.scores["lpr.detected"]
    assert (s.labels, s.events, s.matched) == (2, 2, 1)
    assert (s.precision, s.recall) == (0.5, 0.5)
    assert [m["time"] for m in report.misses] == [30.0]
    assert [f["plate"] for f in report.false_events] == ["XYZ9999"]
    assert "camera.online" not in report.scores


def test_plates_in_zone_flow_names_the_plate_that_entered(tmp_path: Path) -> None:
    """Plate boxes feed zones (issue 18 §5): two rendered cars, only the right-lane one's
    plate enters the zone (lower right of the picture); its ``zone.entered`` carries the
    plate, and the left-lane car's plate, read all the way, gives no zone event."""
    video = street_video(
        tmp_path / "two.mp4",
        [
            SampleCar("BRA2E19", "mercosul", 0.2, 3.0, (176, 32, 40), -0.18),
            SampleCar("GTV5K42", "mercosul", 0.8, 3.0, (40, 70, 150), 0.18),
        ],
        duration=4.0,
    )
    zone = '{"name": "near", "points": [[0.5, 0.6], [1.0, 0.6], [1.0, 1.0], [0.5, 1.0]]}'
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "type,camera,time,plate,zone,tolerance_s\n"
        "zone.entered,1,2.0,GTV5K42,near,1\n"
        "lpr.detected,1,0.9,BRA2E19,,1\n"
        "lpr.detected,1,1.5,GTV5K42,,1\n"
    )
    report = _eval(
        str(video), "--camera-id", "1", "--start", "2026-05-01T08:00:00Z", "--fps", "5",
        "--labels", str(labels), "--flow", "examples.flows.plates_in_zone:build",
        "--param", f"zone={zone}",
    )  # fmt: skip
    assert report["types"]["zone.entered"]["matched"] == 1
    assert report["types"]["lpr.detected"]["matched"] == 2
    assert report["false_events"] == []
