"""The plate's style, measured from the crop's pixels, as evidence for its format.

Brazilian Mercosul plates (``LLL9L99``) are white with a saturated blue band across the top;
old plates (``LLL9999``) are grey (red, white or black for some vehicle classes) with the city
line on top and no blue. A camera that sees colour therefore tells the two apart before any
character is read, and that is stronger evidence than the recogniser's doubt between ``4`` and
``A`` in the fifth position. :func:`plate_style` measures:

* ``blue``: the fraction of the box's top band (its upper 28 %) whose pixels are clearly blue
  once the picture is white-balanced on the plate's own background (the brighter half of the
  box's lower middle): blue exceeds green and red by 35 % of its value and by 12 levels. The
  balance removes colour casts (a bluish evening photo, a blue car body above an old plate);
* ``colour``: how colourful the picture around the plate is (the mean distance of the a/b
  chroma channels from grey, in the box widened 1.5× each side): 0 for a monochrome (infrared)
  camera, where the absence of blue says nothing.

It concludes ``mercosul`` when ``blue ≥`` :data:`BAND_BLUE`, ``old`` when the band is not blue
but the picture has colour (``colour ≥`` :data:`MIN_COLOUR`) and the band is lit and at least a
few pixels high, and ``unknown`` otherwise. :func:`format_weight` turns the style into weights
on the formats' candidates (docs/lpr.md gives the cross-validated evidence for the values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from gtvision.events import Box

Image = NDArray[np.uint8]
StyleKind = Literal["mercosul", "old", "unknown"]

#: how far (grey levels) blue must exceed the mean of green and red, after the white balance
BLUE_LEAD = 25.0
#: blue of the band relative to the plate's white (a dark bluish car body above is not a band)
BAND_LIGHT = 0.4
#: above this share of blue around the box (a blue car) a missing band says nothing
BLUE_AROUND = 0.1
#: share of blue pixels in the top band that makes the plate a Mercosul plate
BAND_BLUE = 0.22
#: at most this share of blue (top minus foot) for the plate to count as old
OLD_BLUE = 0.05
#: colourfulness (mean |a|+|b| of Lab, 0–255 scale) under which the picture counts as monochrome
MIN_COLOUR = 2.5
#: mean brightness (V, 0–255) the band needs for the absence of blue to count
MIN_BAND_LIGHT = 30.0
#: the band needs this many pixel rows for its colour to count
MIN_BAND_ROWS = 3
#: share of the box height taken as the top band
BAND = 0.28
#: weight of Mercosul candidates on a plate whose style is old (cross-validated, docs/lpr.md)
MERCOSUL_IF_OLD = 0.5
#: weight of old candidates on a plate with a blue band: 1, the band is not used against the old
#: format, because on the dev photos a chrome bar reflecting the sky above an old plate looked
#: like a band and 0.3-0.7 turned JIT7463 into JIT7A63 (docs/lpr.md)
OLD_IF_MERCOSUL = 1.0


@dataclass(frozen=True, slots=True)
class PlateStyle:
    """What the pixels say about the plate's format."""

    kind: StyleKind
    blue: float
    colour: float


def _clip(frame: Image, x1: float, y1: float, x2: float, y2: float) -> Image:
    h, w = frame.shape[:2]
    a, b = max(0, int(x1)), min(w, int(np.ceil(x2)))
    c, d = max(0, int(y1)), min(h, int(np.ceil(y2)))
    return frame[c:d, a:b]


def _blue(region: Image, ref: NDArray[np.float32]) -> float:
    """Share of clearly blue pixels of ``region`` white-balanced on ``ref`` (BGR)."""
    if region.size == 0:
        return 0.0
    balanced = region.astype(np.float32) * (ref.mean() / ref)
    b, g, r = balanced[..., 0], balanced[..., 1], balanced[..., 2]
    lit = b >= BAND_LIGHT * float(ref.mean())  # the band is painted, not a shadowed car body
    return float(((b - (g + r) / 2 > BLUE_LEAD) & (b > np.maximum(g, r) + 10) & lit).mean())


def plate_style(frame: Image, box: Box) -> PlateStyle:
    """Measure the band's blue and the picture's colour around ``box`` (see the module)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        return PlateStyle("unknown", 0.0, 0.0)
    bw, bh = box.x2 - box.x1, box.y2 - box.y1
    band = _clip(frame, box.x1, box.y1, box.x2, box.y1 + BAND * bh)
    foot = _clip(frame, box.x1, box.y2 - BAND * bh, box.x2, box.y2)
    above = _clip(frame, box.x1, box.y1 - BAND * bh, box.x2, box.y1)
    around = _clip(
        frame, box.x1 - 1.5 * bw, box.y1 - 1.5 * bh, box.x2 + 1.5 * bw, box.y2 + 1.5 * bh
    )
    if band.size == 0 or around.size == 0:
        return PlateStyle("unknown", 0.0, 0.0)
    body = _clip(frame, box.x1 + 0.1 * bw, box.y1 + 0.45 * bh, box.x2 - 0.1 * bw, box.y2 - 0.1 * bh)
    if body.size == 0:
        return PlateStyle("unknown", 0.0, 0.0)
    pixels = body.reshape(-1, 3).astype(np.float32)
    light = pixels.sum(axis=1)
    ref = pixels[light >= np.median(light)].mean(axis=0) + 1.0
    # a blue background (car body) is as blue above the box and at its foot as in the band
    around_blue = max(_blue(foot, ref), _blue(above, ref))
    blue = _blue(band, ref) - around_blue
    val = band.max(axis=2)
    step = max(1, min(around.shape[:2]) // 64)
    lab = cv2.cvtColor(np.ascontiguousarray(around[::step, ::step]), cv2.COLOR_BGR2LAB)
    chroma = np.abs(lab[..., 1:].astype(np.float32) - 128.0).sum(axis=2)
    colour = float(chroma.mean())
    if blue >= BAND_BLUE:
        return PlateStyle("mercosul", blue, colour)
    plain = around_blue <= BLUE_AROUND and blue <= OLD_BLUE  # no band, nothing hiding one
    seen = colour >= MIN_COLOUR and float(val.mean()) >= MIN_BAND_LIGHT
    if plain and seen and band.shape[0] >= MIN_BAND_ROWS:
        return PlateStyle("old", blue, colour)
    return PlateStyle("unknown", blue, colour)


def format_weight(
    fmt_name: str,
    style: StyleKind,
    *,
    mercosul_if_old: float = MERCOSUL_IF_OLD,
    old_if_mercosul: float = OLD_IF_MERCOSUL,
) -> float:
    """Weight of a Brazilian format's candidates given the style (1 for other countries)."""
    if fmt_name == "br-mercosul" and style == "old":
        return mercosul_if_old
    if fmt_name == "br-old" and style == "mercosul":
        return old_if_mercosul
    return 1.0
