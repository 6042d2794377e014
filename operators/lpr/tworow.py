"""Two-row (motorcycle) plates: split the rows, read each, join them with the format rules.

Brazilian motorcycle plates are nearly square (old 187×136 mm, Mercosul 200×170 mm) and carry
the characters on two rows: old ``LLL`` over ``9999``, Mercosul ``LLL9`` over ``L99``. A plate
box whose width is less than :data:`TWO_ROW_ASPECT` times its height is also read as two rows
(the more confident of the one-row and two-row readings wins):

1. the box is cut below its top band (the city line or the Mercosul band, the upper
   :data:`TOP_CUT` of the box);
2. the split between the rows is the line with the least ink (Otsu-dark pixels) in the middle
   band of what is left (:func:`split_rows`);
3. each row is recognised alone and aligned to its half of each format's pattern (the same
   format-constrained CTC decoder as one-row plates);
4. a format's candidates are the row candidates joined, with the per-character geometric mean
   of their confidences, weighted by the plate's style like one-row plates.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from gtvision.events import Box, PlateCandidate
from gtvision.operators.lpr.ctc import Projection, decode
from gtvision.operators.lpr.plates import PlateFormat

Image = NDArray[np.uint8]

#: a plate box narrower than this many times its height may be a two-row (motorcycle) plate:
#: the detector's boxes of rendered motorcycle plates are 1.05-1.35, of car plates mostly 1.9-3.4
#: but down to 1.56 on the dev photos at 0.6x, so the shape alone does not decide: such boxes
#: are read both as one row and as two rows, and the more confident reading wins
TWO_ROW_ASPECT = 2.0

#: share of the box height above the characters (city line, Mercosul band)
TOP_CUT = 0.18
#: the rows of each Brazilian format on a motorcycle plate
ROWS: dict[str, tuple[str, str]] = {"br-old": ("LLL", "9999"), "br-mercosul": ("LLL9", "L99")}
#: horizontal stretch of a row crop (short rows need CTC steps too)
STRETCH = 1.3


def _profile(grey: Image) -> NDArray[np.float64]:
    _, ink = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return np.convolve(ink.sum(axis=1).astype(np.float64), np.ones(3) / 3, mode="same")


def split_rows(grey: Image) -> int:
    """Row index (in ``grey``) between the two character rows: the least ink in the middle."""
    h = grey.shape[0]
    profile = _profile(grey)
    lo, hi = int(0.35 * h), max(int(0.35 * h) + 1, int(0.65 * h))
    return lo + int(np.argmin(profile[lo:hi]))


def _plate_grey(frame: Image, box: Box) -> tuple[Image, Image] | None:
    """The box below its top band (BGR) and its grey levels; ``None`` if degenerate."""
    h, w = frame.shape[:2]
    bh = box.y2 - box.y1
    x1, x2 = max(0, int(box.x1)), min(w, math.ceil(box.x2))
    y1, y2 = max(0, int(box.y1 + TOP_CUT * bh)), min(h, math.ceil(box.y2))
    plate = frame[y1:y2, x1:x2]
    if plate.shape[0] < 8 or plate.shape[1] < 8:
        return None
    grey = cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY) if plate.ndim == 3 else plate
    return plate, np.asarray(grey, dtype=np.uint8)


def two_rows(box: Box) -> bool:
    """``True`` when the box may hold a two-row plate (then both readings are tried)."""
    return (box.x2 - box.x1) < TWO_ROW_ASPECT * max(box.y2 - box.y1, 1e-6)


def row_crops(frame: Image, box: Box) -> tuple[Image, Image] | None:
    """The top and bottom row crops of a two-row plate box (BGR), ``None`` if degenerate."""
    found = _plate_grey(frame, box)
    if found is None:
        return None
    plate, grey = found
    cut = split_rows(grey)
    pad = max(1, int(0.04 * plate.shape[0]))
    top, bottom = plate[: cut + pad], plate[max(0, cut - pad) :]
    out: list[Image] = []
    for row in (top, bottom):
        size = (max(1, int(row.shape[1] * STRETCH)), row.shape[0])
        wide = cv2.resize(row, size, interpolation=cv2.INTER_CUBIC)
        out.append(np.ascontiguousarray(wide, dtype=np.uint8))
    return out[0], out[1]


def join(
    tops: tuple[PlateCandidate, ...], bottoms: tuple[PlateCandidate, ...], weight: float
) -> list[PlateCandidate]:
    """Every top × bottom candidate pair as one plate, confidence the per-character mean."""
    out = []
    for t in tops:
        for b in bottoms:
            n_t, n_b = len(t.text), len(b.text)
            log = n_t * math.log(max(t.confidence, 1e-12)) + n_b * math.log(
                max(b.confidence, 1e-12)
            )
            out.append(
                PlateCandidate(
                    text=t.text + b.text,
                    confidence=min(1.0, math.exp(log / (n_t + n_b)) * weight),
                    char_confidences=t.char_confidences + b.char_confidences,
                )
            )
    return out


def row_formats(formats: tuple[PlateFormat, ...]) -> list[tuple[str, PlateFormat, PlateFormat]]:
    """The two-row halves of the Brazilian formats among ``formats``."""
    return [
        (
            f.name,
            PlateFormat(f"{f.name}-top", ROWS[f.name][0]),
            PlateFormat(f"{f.name}-bottom", ROWS[f.name][1]),
        )
        for f in formats
        if f.name in ROWS
    ]


RowReads = list[tuple[str, tuple[PlateCandidate, ...], tuple[PlateCandidate, ...]]]


def decode_rows(
    probs_top: NDArray[np.float32],
    probs_bottom: NDArray[np.float32],
    projection: Projection,
    formats: tuple[PlateFormat, ...],
) -> RowReads:
    """Per Brazilian format among ``formats``: its name and the top and bottom row candidates."""
    out: RowReads = []
    for name, top_fmt, bottom_fmt in row_formats(formats):
        top = decode(probs_top, projection, top_fmt)
        bottom = decode(probs_bottom, projection, bottom_fmt)
        if top is not None and bottom is not None:
            out.append((name, top.candidates, bottom.candidates))
    return out


def best_rows(rows: RowReads, weights: dict[str, float]) -> list[PlateCandidate]:
    """Top-3 joined plate candidates of decoded rows, each format weighted (default 1)."""
    pooled: list[PlateCandidate] = []
    for name, tops, bottoms in rows:
        pooled += join(tops, bottoms, weights.get(name, 1.0))
    pooled.sort(key=lambda c: -c.confidence)
    return pooled[:3]
