"""The motion threshold follows the camera's noise (issue 19): low-contrast objects are seen,
noise, exposure changes, flicker, rain and snow are not.

Frames come from :mod:`gtvision.sources.motionscenes` (640×360: the detector samples it down to
its 180 px analysis height as it does a camera's picture) fed to :class:`MotionDetector`, and
one clip goes end to end as an H.264 file through the motion flow.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from bytewax.testing import TestingSink, run_main

from gtvision.config import Settings
from gtvision.events import EventBase, Frame, MotionIncident
from gtvision.flows.context import FlowContext
from gtvision.flows.motion import build
from gtvision.operators.motion import MotionDetector, MotionResult, MotionSettings
from gtvision.sources.file import FileSource
from gtvision.sources.motionscenes import Kind, SceneSpec, frames
from gtvision.sources.testvideo import make_video, moving_box

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _same(settings: MotionSettings, _camera_id: int) -> MotionSettings:
    return settings


def _run(
    spec: SceneSpec, settings: MotionSettings | None = None
) -> list[tuple[MotionResult, bool]]:
    """Each frame's result and whether a box overlaps the object (False when none in view)."""
    det = MotionDetector(settings or MotionSettings())
    out = []
    for i, f in enumerate(frames(spec)):
        frame = Frame(1, 2, i, T0 + timedelta(seconds=f.t), f.gray, spec.width, spec.height)
        r = det.detect(frame)
        hit = False
        if f.truth is not None:
            x1, y1, x2, y2 = f.truth
            hit = any(b.x1 < x2 and b.x2 > x1 and b.y1 < y2 and b.y2 > y1 for b in r.boxes)
        out.append((r, hit))
    return out


@pytest.mark.parametrize("contrast", [12.0, -12.0, 20.0])
@pytest.mark.parametrize("sigma", [0.0, 3.0])
def test_low_contrast_object_is_detected(contrast: float, sigma: float) -> None:
    spec = SceneSpec("object", sigma, contrast, seconds=8, seed=3)
    results = _run(spec)
    in_view = [hit for (_, hit), f in zip(results, frames(spec), strict=True) if f.truth]
    assert len(in_view) >= 10
    assert sum(in_view) == len(in_view), f"seen in {sum(in_view)} of {len(in_view)} frames"
    # nothing but the object (also while it enters or leaves): every box is on its path
    top, bottom = 180 - 20, 180 + 20
    boxes = [b for r, _ in results for b in r.boxes]
    assert all(b.y1 < bottom and b.y2 > top for b in boxes), boxes
    # the old fixed threshold never saw it
    old = _run(spec, MotionSettings(threshold=25))
    assert not any(r.motion for r, _ in old)


def test_ten_minutes_of_static_noisy_scene_give_no_motion() -> None:
    for sigma in (3.0, 6.0):
        spec = SceneSpec("static", sigma, seconds=600, fps=2, seed=int(sigma))
        results = _run(spec)
        assert len(results) == 1200
        assert [r.index for r, _ in results if r.motion] == []


@pytest.mark.parametrize("kind", ["step", "ramp", "flicker", "rain", "snow"])
@pytest.mark.parametrize("seed", [5, 6])
def test_exposure_flicker_and_weather_give_no_motion(kind: Kind, seed: int) -> None:
    for sigma in (0.0, 3.0, 6.0):
        results = _run(SceneSpec(kind, sigma, seconds=20, seed=seed))
        assert [r.index for r, _ in results if r.motion] == [], (kind, sigma)


def test_noise_estimate_follows_the_noise_and_is_in_the_snapshot() -> None:
    det = MotionDetector(MotionSettings())
    sigmas = []
    for sigma in (1.0, 6.0):
        for i, f in enumerate(frames(SceneSpec("static", sigma, seconds=20, seed=1))):
            det.detect(Frame(1, 2, i, T0 + timedelta(seconds=f.t), f.gray, 640, 360))
        sigmas.append(det.noise.sigma)
    assert 0 < sigmas[0] < sigmas[1]
    again = MotionDetector.from_state(pickle.loads(pickle.dumps(det.state())))
    assert again.noise.sigma == det.noise.sigma


def test_explicit_threshold_still_validates_and_overrides() -> None:
    fixed = MotionSettings.model_validate({"threshold": 25, "min_area": 40})
    assert MotionDetector(fixed).threshold(sigma=50.0) == 25.0
    adaptive = MotionSettings()
    assert adaptive.threshold is None
    det = MotionDetector(adaptive)
    assert det.threshold(0.0) == adaptive.threshold_floor
    assert det.threshold(10.0) == adaptive.noise_k * 10.0
    with pytest.raises(ValueError, match="threshold_floor"):
        MotionSettings.model_validate({"threshold_floor": 0})


def test_low_contrast_box_in_an_encoded_video_gives_one_incident(tmp_path: Path) -> None:
    # grey 0x7D7D7D over the scene's 0x607080: about 14 levels of limited-range Y, with
    # temporal noise and H.264 at 1 Mb/s; the path also crosses the scene's dark box
    video = make_video(
        tmp_path / "low.mp4",
        duration=8,
        filters=[moving_box(2, 5, color="0x7D7D7D"), "noise=alls=6:allf=t"],
        bitrate="1M",
    )
    got = {}
    for settings in (MotionSettings(), MotionSettings(threshold=25)):
        out: list[EventBase] = []
        ctx = FlowContext(
            source=FileSource(video, city_id=1, camera_id=7),
            sink=TestingSink(out),
            settings=Settings(),
            replay=True,
            motion_settings=partial(_same, settings),
        )
        run_main(build(ctx))
        got[settings.threshold] = [e for e in out if isinstance(e, MotionIncident)]
    (incident,) = got[None]
    t0 = datetime(1970, 1, 1, tzinfo=UTC)
    assert abs((incident.start - t0).total_seconds() - 2.0) <= 0.5
    # it leaves the picture from 4.4 s on: a flat box sliding out shows no change inside
    assert 4.2 <= (incident.end - t0).total_seconds() <= 5.2
    assert incident.frames >= 11  # 2.4 s wholly in view at the 5 fps analysis cap
    # the old fixed threshold saw it only where it crossed the scene's dark box
    assert sum(i.frames for i in got[25]) <= 8
