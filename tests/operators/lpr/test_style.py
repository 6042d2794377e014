"""Plate style (Mercosul band vs old plate) on rendered plates across contrast/noise/angles."""

from __future__ import annotations

import itertools
from collections import Counter

import cv2
import numpy as np
import pytest

from gtvision.operators.lpr.style import format_weight, plate_style
from tests.operators.lpr.rendered import Style, scene

#: every contrast × noise × rotation × tilt class, each at one of two plate widths (alternating)
CLASSES = [
    (*c, (90, 160)[i % 2])
    for i, c in enumerate(
        itertools.product(
            (1.0, 0.5, 0.3),  # contrast
            (0.0, 4.0, 8.0),  # noise sigma
            (-10.0, 0.0, 10.0),  # rotation
            (0.0, 0.25),  # perspective tilt
        )
    )
]


@pytest.mark.parametrize("style", ["mercosul", "old"])
def test_style_never_contradicts_the_plate(style: Style) -> None:
    kinds: Counter[str] = Counter()
    for seed, (contrast, noise, angle, tilt, width) in enumerate(CLASSES):
        s = scene(
            seed,
            style,
            plate_width=width,
            angle=angle,
            tilt=tilt,
            contrast=contrast,
            noise=noise,
            size=(400, 260),
        )
        got = plate_style(s.image, s.box)
        kinds[got.kind] += 1
        other = "old" if style == "mercosul" else "mercosul"
        assert got.kind != other, (style, contrast, noise, angle, tilt, width, got)
    # many plates are recognised; the rest are "unknown" (a blue car hides a band or its
    # absence, a low-contrast band is not clearly blue): unknown costs nothing, a wrong style would
    assert kinds[style] >= 0.4 * len(CLASSES), kinds


def test_monochrome_and_dark_pictures_say_nothing() -> None:
    s = scene(3, "old")
    grey = np.asarray(
        cv2.cvtColor(cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR), dtype=np.uint8
    )
    assert plate_style(grey, s.box).kind == "unknown"  # infrared camera: no colour evidence
    dark = (s.image // 10).astype(np.uint8)
    assert plate_style(dark, s.box).kind == "unknown"
    assert plate_style(s.image[:, :, 0], s.box).kind == "unknown"


def test_weights() -> None:
    assert format_weight("br-mercosul", "old") == 0.5
    assert format_weight("br-old", "old") == 1.0
    assert format_weight("br-old", "mercosul") == 1.0  # the band is not used against old
    assert format_weight("br-mercosul", "unknown") == 1.0
    assert format_weight("eu", "old") == 1.0
