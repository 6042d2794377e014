"""Q-tail check: synthetic glyphs (drawn), plate rows (drawn) and the dev photos' Q and O."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from gtvision.config import load_settings
from gtvision.events import Box
from gtvision.models.store import pull
from gtvision.operators.lpr import PlateReader, load_image
from gtvision.operators.lpr.glyphs import HEIGHT, PlateGlyphs, counter_of, segment_row
from tests.conftest import DEV_DATA

DATA = DEV_DATA


def _ring(h: int, *, tail: bool, angle: float = 0.0, shear: float = 0.0) -> np.ndarray:
    """A plate-font ``O`` (rounded rectangle ring) of height ``h``, with a ``Q`` tail if asked."""
    w, stroke = int(h * 0.62), max(2, h // 7)
    pad = h // 4
    img = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    r = w // 3
    outer = (pad, pad, pad + w, pad + h)
    _rounded(img, outer, r, 1)
    _rounded(img, (pad + stroke, pad + stroke, pad + w - stroke, pad + h - stroke), r - stroke, 0)
    if tail:  # as in the plate fonts: from inside the counter across its bottom-right corner
        p0 = (pad + int(w * 0.45), pad + int(h * 0.65))
        p1 = (pad + int(w * 0.9), pad + int(h * 1.04))
        cv2.line(img, p0, p1, 1, stroke)
    if angle or shear:
        cx, cy = img.shape[1] / 2, img.shape[0] / 2
        m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        m[0, 1] += shear
        m[0, 2] -= shear * cy
        img = np.asarray(
            cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_NEAREST),
            dtype=np.uint8,
        )
    ys, xs = np.nonzero(img)
    return np.ascontiguousarray(img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def _rounded(img: np.ndarray, rect: tuple[int, int, int, int], r: int, value: int) -> None:
    x1, y1, x2, y2 = rect
    r = max(1, min(r, (x2 - x1) // 2, (y2 - y1) // 2))
    cv2.rectangle(img, (x1 + r, y1), (x2 - r, y2), value, -1)
    cv2.rectangle(img, (x1, y1 + r), (x2, y2 - r), value, -1)
    for cx, cy in ((x1 + r, y1 + r), (x2 - r, y1 + r), (x1 + r, y2 - r), (x2 - r, y2 - r)):
        cv2.circle(img, (cx, cy), r, value, -1)


@pytest.mark.parametrize("h", [30, 45, 70])
@pytest.mark.parametrize(("angle", "shear"), [(0.0, 0.0), (4.0, 0.0), (-4.0, 0.0), (0.0, 0.12)])
def test_q_tail_on_drawn_glyphs(h: int, angle: float, shear: float) -> None:
    o = counter_of(_ring(h, tail=False, angle=angle, shear=shear))
    q = counter_of(_ring(h, tail=True, angle=angle, shear=shear))
    assert o is not None
    assert q is not None
    assert not o.q_tail, o
    assert q.q_tail, q


def test_no_counter_no_answer() -> None:
    bar = np.ones((40, 8), np.uint8)  # an I
    assert counter_of(bar) is None
    c = _ring(40, tail=False)
    c[c.shape[0] // 2 :, c.shape[1] // 2 :] = 0  # an open shape (like a C or a broken ring)
    assert counter_of(c) is None


def _plate(text_tail: list[bool]) -> tuple[np.ndarray, Box]:
    """A grey plate with one ring per character (a tail where asked), dark on light."""
    h = 60
    glyphs = [_ring(h, tail=t) for t in text_tail]
    width = sum(g.shape[1] + 14 for g in glyphs) + 40
    plate = np.full((h + 50, width), 205, np.uint8)
    x = 20
    for g in glyphs:
        region = plate[30 : 30 + g.shape[0], x : x + g.shape[1]]
        region[g > 0] = 35
        x += g.shape[1] + 14
    frame = np.full((plate.shape[0] + 80, plate.shape[1] + 80, 3), 90, np.uint8)
    frame[40:-40, 40:-40] = plate[..., None]
    box = Box(x1=40, y1=40, x2=40 + plate.shape[1], y2=40 + plate.shape[0])
    return frame, box


def test_plate_row_and_positions() -> None:
    tails = [False, False, True, False, False, False, False]
    frame, box = _plate(tails)
    glyphs = PlateGlyphs(frame, box)
    assert glyphs.row is not None
    assert len(glyphs.row.boxes) == 7
    pitch = 1 / 7
    for i, tail in enumerate(tails):
        counter = glyphs.counter(0.04 + (i + 0.5) * pitch * 0.95)
        assert counter is not None, i
        assert counter.q_tail == tail, (i, counter)


def test_segment_row_needs_characters() -> None:
    flat = np.full((HEIGHT, 400), 128, np.uint8)
    assert segment_row(flat) is None
    assert PlateGlyphs(np.zeros((10, 10, 3), np.uint8), Box(x1=0, y1=0, x2=1, y2=1)).row is None


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    path = load_settings().models_path
    pull(path)
    return PlateReader.load(path)


def _dev_photos(letter: str) -> list[str]:
    names = sorted(p.stem for p in DATA.glob("*.jpg"))
    assert len(names) >= 50, f"expected the dev photos in {DATA}"
    return [n for n in names if letter in n[:3]]


@pytest.mark.parametrize("scale", [1.0, 0.6])
def test_dev_photos_q_and_o(reader: PlateReader, scale: float) -> None:
    """Every letter Q of the dev photos is read Q (the recogniser alone reads MXQ1601's as O)
    and no letter O becomes Q, at full size and at 0.6x re-encoded as JPEG 80."""
    names = sorted(set(_dev_photos("Q") + _dev_photos("O")))
    assert len(names) >= 20
    wrong = []
    for name in names:
        image = load_image(DATA / f"{name}.jpg")
        assert image is not None
        if not math.isclose(scale, 1.0):
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
            assert ok
            image = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), dtype=np.uint8)
        readings = reader.read(image)
        text = readings[0].text if readings else ""
        if [c for c in text[:3] if c in "OQ"] != [c for c in name[:3] if c in "OQ"]:
            wrong.append(f"{name} read {text}")
    assert not wrong, wrong
