"""Motorcycle (two-row) plates: rendered old and Mercosul plates at several sizes and angles."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from gtvision.config import load_settings
from gtvision.events import Box
from gtvision.models.store import export_onnx, onnx_path, pull
from gtvision.operators.lpr import PlateReader
from gtvision.operators.lpr.tworow import split_rows, two_rows
from tests.operators.lpr.rendered import Style, render_plate, scene


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    models_dir: Path = load_settings().models_path
    pull(models_dir)
    if not onnx_path(models_dir).is_file():
        export_onnx(models_dir)
    return PlateReader.load(models_dir, backend="ort")


def test_row_split_and_shape() -> None:
    plate = render_plate("ABC1234", "old", "moto", 160)
    grey = plate.mean(axis=2).astype(np.uint8)[int(0.18 * plate.shape[0]) :]
    cut = split_rows(grey)
    assert 0.4 * grey.shape[0] < cut < 0.6 * grey.shape[0]
    assert two_rows(Box(x1=0, y1=0, x2=120, y2=100))
    assert not two_rows(Box(x1=0, y1=0, x2=250, y2=115))  # a car plate's detector box


CASES = list(itertools.product(("old", "mercosul"), (80, 120, 180), (-10.0, 0.0, 10.0)))


def test_rendered_motorcycle_plates_read_exactly(reader: PlateReader) -> None:
    wrong = []
    for seed, (style, width, angle) in enumerate(CASES):
        s = scene(
            100 + seed,
            style,  # type: ignore[arg-type]
            "moto",
            plate_width=width,
            angle=angle,
            tilt=0.1 * (seed % 3),
            noise=2.0,
            size=(640, 400),
        )
        got = reader.read(s.image)
        text = got[0].text if got else ""
        if text != s.text:
            wrong.append((style, width, angle, s.text, text))
    assert len(wrong) <= 0.05 * len(CASES), wrong


@pytest.mark.parametrize("style", ["old", "mercosul"])
def test_car_plates_still_read_as_one_row(reader: PlateReader, style: Style) -> None:
    s = scene(7, style, "car", plate_width=220, size=(640, 400))
    got = reader.read(s.image)
    assert got
    assert got[0].text == s.text
