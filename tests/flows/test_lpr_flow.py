from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import psycopg
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from gtvision.config import load_settings
from gtvision.events import Alert, CameraEvent, EventBase, Frame, PlatePass
from gtvision.flows.context import FlowContext, load_flow
from gtvision.flows.lpr import build
from gtvision.operators.hotlist import HotlistEntry, StaticHotlists
from gtvision.operators.motion import MotionResult
from gtvision.sources.file import FileSource
from gtvision.sources.synthetic import FPS
from gtvision.sources.synthetic import frames as synthetic_frames
from gtvision.sources.testvideo import make_video, moving_box
from tests.conftest import DEV_DATA

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
PLATE_A, PLATE_B = "AYO9034", "HPM9362"


def photo_frames(
    plate: str | None, camera: int, first: int, t0: float, n: int, *, pan: bool = True
) -> list[Frame]:
    """``n`` frames 0.2 s apart of a dev photo (or black), slowly panned, 1000 px square."""
    if plate is None:
        big = np.zeros((1064, 1064, 3), np.uint8)
    else:
        img = cv2.imread(str(DEV_DATA / f"{plate}.jpg"))
        assert img is not None
        scale = 1064 / max(img.shape[:2])
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        big = np.zeros((1064, 1064, 3), np.uint8)
        big[: img.shape[0], : img.shape[1]] = img
    out = []
    for k in range(n):
        dx = 12 * k if pan else 0
        bgr = np.ascontiguousarray(big[dx // 2 : dx // 2 + 1000, dx : dx + 1000])
        out.append(
            Frame(
                city_id=5,
                camera_id=camera,
                index=first + k,
                ts=T0 + timedelta(seconds=t0 + 0.2 * k),
                gray=cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint8),
                width=1000,
                height=1000,
                source=bgr,
            )
        )
    return out


def run_flow(
    items: list[Frame | CameraEvent],
    hotlists: StaticHotlists | None,
    dsn: str = "",
    workers: int = 1,
    **overrides: object,
) -> list[EventBase]:
    got: list[EventBase] = []
    settings = load_settings(database_url=dsn, **overrides)
    ctx = FlowContext(
        source=TestingSource(items), sink=TestingSink(got), settings=settings, replay=True
    )
    flow = build(ctx, hotlists=hotlists)
    if workers == 1:
        run_main(flow)  # type: ignore[no-untyped-call]
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)  # type: ignore[no-untyped-call]
    return got


def test_lpr_flow_is_registered() -> None:
    assert load_flow("lpr") is build


def test_gated_camera_gives_one_pass_per_vehicle_and_hotlist_alerts() -> None:
    confused = PLATE_A.replace("O", "0")  # entry typed with a zero: fuzzy must still match
    hot = StaticHotlists(
        [
            HotlistEntry(id=1, city_id=5, pattern=confused, kind="fuzzy", reason="stolen"),
            HotlistEntry(
                id=2,
                city_id=5,
                pattern=PLATE_B,
                kind="exact",
                expires_at=datetime.now(UTC) - timedelta(hours=1),
            ),
        ]
    )
    items: list[Frame | CameraEvent] = []
    items += photo_frames(PLATE_A, 9, 0, 0.0, 6)
    items += photo_frames(None, 9, 6, 1.2, 8)
    items += photo_frames(PLATE_B, 9, 14, 2.8, 6)
    health = CameraEvent(type="camera.online", city_id=5, camera_id=9, ts=T0)
    events = run_flow([health, *items], hot)

    passes = [e for e in events if isinstance(e, PlatePass)]
    alerts = [e for e in events if isinstance(e, Alert)]
    assert [p.plate for p in sorted(passes, key=lambda p: p.first_seen)] == [PLATE_A, PLATE_B]
    assert all(p.reads >= 2 for p in passes)
    assert all(p.crop_jpeg and p.crop_jpeg[:2] == b"\xff\xd8" for p in passes)
    assert all(p.models.get("detector") for p in passes)
    assert [(a.plate, a.match.entry_id, a.match.kind) for a in alerts] == [(PLATE_A, 1, "fuzzy")]
    assert alerts[0].pass_id == next(p.id for p in passes if p.plate == PLATE_A)
    assert [e.type for e in events if isinstance(e, CameraEvent)] == ["camera.online"]


def test_dedicated_camera_skips_the_gate_and_disabled_camera_is_not_read(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "INSERT INTO cities (name) VALUES (%s) RETURNING id", (f"lpr-{time.time_ns()}",)
        ).fetchone()
        assert row is not None
        cams = []
        for name, on, ded in (("gate-cam", True, True), ("off-cam", False, False)):
            cam = conn.execute(
                "INSERT INTO cameras (city_id, name, stream_url, lpr_enabled, lpr_dedicated)"
                " VALUES (%s, %s, 'rtsp://127.0.0.1:1/x', %s, %s) RETURNING id",
                (row[0], name, on, ded),
            ).fetchone()
            assert cam is not None
            cams.append(int(cam[0]))
    dedicated, disabled = cams
    # a still picture: no motion at all, so only a camera that skips the gate reads it
    items: list[Frame | CameraEvent] = []
    items += photo_frames(PLATE_B, dedicated, 0, 0.0, 4, pan=False)
    items += photo_frames(PLATE_A, disabled, 0, 0.0, 4, pan=False)
    events = run_flow(items, StaticHotlists(()), pg_dsn)
    assert [(e.camera_id, e.plate) for e in events if isinstance(e, PlatePass)] == [
        (dedicated, PLATE_B)
    ]


def test_still_picture_on_a_gated_camera_is_not_read() -> None:
    items: list[Frame | CameraEvent] = list(photo_frames(PLATE_A, 3, 0, 0.0, 4, pan=False))
    assert run_flow(items, None) == []


def test_two_workers_exchange_only_light_values() -> None:
    # Frame refuses pickling: any step that moved frames between workers would fail here
    items: list[Frame | CameraEvent] = []
    items += photo_frames(PLATE_A, 4, 0, 0.0, 4)
    items += photo_frames(PLATE_B, 6, 0, 0.0, 4)
    events = run_flow(items, None, workers=2)
    got = sorted((e.camera_id, e.plate) for e in events if isinstance(e, PlatePass))
    assert got == [(4, PLATE_A), (6, PLATE_B)]


def test_motion_runs_in_the_file_source_so_it_joins_its_snapshots(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", duration=2, size=(320, 180), filters=[moving_box(0, 2)])
    source = FileSource(video, city_id=5, camera_id=3, analysis_fps=0)
    got: list[EventBase] = []
    ctx = FlowContext(source=source, sink=TestingSink(got), settings=load_settings(), replay=True)
    build(ctx, hotlists=None)
    assert source.analyzer is not None  # attached: detector state is in the partition snapshot
    part = source.build_part("input", source.list_parts()[0], None)
    frames: list[Frame] = []
    deadline = time.monotonic() + 30
    while len(frames) < 10 and time.monotonic() < deadline:
        frames.extend(i for i in part.next_batch() if isinstance(i, Frame))
        time.sleep(0.005)
    snap = part.snapshot()
    part.close()
    assert all(isinstance(f.analysis, MotionResult) for f in frames)
    assert snap.analysis


def street_frames(spans: list[tuple[float, float]], fps: int = 5) -> list[Frame]:
    """Frames of the synthetic street (``sources/synthetic.py``) within ``spans`` at ``fps``."""
    out = []
    step = FPS // fps
    for i, rgb in enumerate(synthetic_frames(15.0, FPS)):
        t = i / FPS
        if i % step or not any(a <= t <= b for a, b in spans):
            continue
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint8)
        out.append(
            Frame(
                city_id=5,
                camera_id=3,
                index=i,
                ts=T0 + timedelta(seconds=t),
                gray=gray,
                width=bgr.shape[1],
                height=bgr.shape[0],
                source=bgr,
            )
        )
    return out


def test_the_flow_reads_plates_in_the_formats_of_the_settings() -> None:
    """GTV_PLATE_FORMATS reaches the flow's reader: with only the old grey format, the street's
    Mercosul car (BRA2E19) gives no BRA2E19 pass while the old-format car still does."""
    items: list[Frame | CameraEvent] = list(street_frames([(1.6, 5.0), (9.6, 13.0)]))
    both = {p.plate for p in run_flow(items, None) if isinstance(p, PlatePass)}
    assert {"BRA2E19", "KLM3907"} <= both
    old_only = run_flow(items, None, plate_formats="br-old=LLL9999")
    plates = {p.plate for p in old_only if isinstance(p, PlatePass)}
    assert "KLM3907" in plates
    assert "BRA2E19" not in plates
