"""The synthetic street video: format, and plates the bundled detector and OCR can read."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest

from gtvision.config import load_settings
from gtvision.models.store import ModelMissingError
from gtvision.sources import synthetic


def test_sample_video_format_and_cache(tmp_path: Path) -> None:
    path = synthetic.sample_video(tmp_path)
    mtime = path.stat().st_mtime_ns
    assert synthetic.sample_video(tmp_path) == path
    assert path.stat().st_mtime_ns == mtime, "second call must reuse the cached file"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        keyframes = [i for i, f in enumerate(container.decode(stream)) if f.key_frame]
    assert keyframes[:3] == [0, synthetic.FPS, 2 * synthetic.FPS]
    assert len(keyframes) == pytest.approx(synthetic.SAMPLE_DURATION_S, abs=1)
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_quiet_gaps_between_cars() -> None:
    cars = sorted(synthetic.SAMPLE_CARS, key=lambda c: c.enter_s)
    for before, after in itertools.pairwise(cars):
        assert after.enter_s - before.leave_s >= 2.0
    empty = synthetic.render_frame(0.5)
    later_empty = synthetic.render_frame(cars[0].leave_s + 1.0)
    assert np.array_equal(empty, later_empty), "the street is static between cars"
    assert synthetic.HOTLIST_PLATE in {c.plate for c in cars}
    styles = {c.style for c in cars}
    assert styles == {"mercosul", "old"}


@pytest.fixture(scope="module")
def readers() -> tuple[object, object]:
    from gtvision.models.ocr import PlateOCR
    from gtvision.models.yolo import PlateDetector

    settings = load_settings()
    try:
        detector = PlateDetector(settings.models_path)
    except ModelMissingError as err:
        pytest.fail(f"{err} (the CI install step pulls it)")
    return detector, PlateOCR()


def test_detector_and_ocr_read_rendered_plates(readers: tuple[object, object]) -> None:
    from gtvision.models.ocr import PlateOCR
    from gtvision.models.yolo import PlateDetector

    detector, ocr = readers
    assert isinstance(detector, PlateDetector)
    assert isinstance(ocr, PlateOCR)
    for car in synthetic.SAMPLE_CARS:
        read_frames = 0
        best = 0.0
        for step in range(10):  # 2.0 s .. 3.8 s into the pass, at 5 fps
            t = car.enter_s + 2.0 + step * 0.2
            bgr = np.ascontiguousarray(synthetic.render_frame(t)[:, :, ::-1])
            hits = detector.detect(bgr)
            if not hits:
                continue
            best = max(best, hits[0].confidence)
            b = hits[0].box
            crop = bgr[max(0, int(b.y1) - 3) : int(b.y2) + 3, max(0, int(b.x1) - 3) : int(b.x2) + 3]
            text, _ = ocr.text(crop)
            if "".join(ch for ch in text if ch.isalnum()) == car.plate:
                read_frames += 1
        assert best >= 0.5, f"{car.plate}: best detector confidence {best:.2f}"
        assert read_frames >= 5, f"{car.plate}: read exactly in only {read_frames}/10 frames"
