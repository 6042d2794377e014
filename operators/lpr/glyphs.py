"""Glyph shapes on a plate crop: the tail that tells a ``Q`` from an ``O``.

The PP-OCRv4 recogniser reads the ``Q`` of Brazilian plates as ``O`` (or ``0``) with high
confidence on some photos: in the plates' fonts the tail is a short stroke that enters the
letter's counter (the hole) at its bottom-right corner. That corner is measurable:

1. the plate box is cut, converted to grey and scaled to :data:`HEIGHT` pixels;
2. the *character row* is segmented: adaptive thresholds (both polarities, a few block sizes)
   and connected components; the largest group of components with alike heights on one line is
   the row (:class:`CharRow`);
3. the glyph at a position (from the CTC alignment of the recogniser's steps) is the largest
   component near that x inside the row's band (:meth:`PlateGlyphs.glyph`);
4. its counter is the largest background region the glyph encloses; its shape is summarised by
   :class:`Counter`: how much farther the counter stays from its bounding box's bottom-right
   corner than from the opposite top-left one (a rounded ``O``'s counter is centrally
   symmetric, so slant and rotation leave the two alike), and how much more of its area lies in
   the top-left quadrant than in the bottom-right one.

Their sum is the tail score (:attr:`Counter.q_tail`). Measured on the 57 dev photos (24 letter
``O``, 3 ``Q``, 3 ``D``), at full size and at 0.6x with JPEG re-encoding: corner offset
0.075-0.136 for ``Q``, at most 0.036 for ``O``/``D``; area imbalance 0.058-0.112 for ``Q``, at
most 0.044 for ``O``/``D``; sum 0.133-0.20 for ``Q``, at most 0.061 for ``O``/``D``. The
threshold sits between (docs/lpr.md). A drawn ``Q`` whose tail leaves a sliver of the counter in
the corner scores low on the corner and high on the area, hence the sum. A glyph that cannot be
segmented, or an open counter, gives no answer and the recogniser's reading stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from gtvision.events import Box

Image = NDArray[np.uint8]

#: height (px) the plate crop is scaled to before shapes are measured
HEIGHT = 192
#: margin around the detector box, as a fraction of its size
PAD = 0.04
#: corner offset + area imbalance a tail needs (``Q`` 0.133-0.20, ``O``/``D`` at most 0.061)
Q_SCORE = 0.095
#: the area imbalance a tail needs in any case (a tail always takes area from the bottom-right)
Q_IMBALANCE = 0.03
#: the counter must cover this fraction of the glyph's bounding box to be a counter at all
MIN_COUNTER = 0.08
_BLOCKS = (8, 5, 3)  # adaptive threshold block = HEIGHT / n
_OFFSETS = (6, 12)  # adaptive threshold offsets (grey levels)


@dataclass(frozen=True, slots=True)
class Counter:
    """Shape of a glyph's counter (the background region it encloses)."""

    #: (distance to the bottom-right corner - distance to the top-left one) / diagonal
    corner: float
    #: (area in the top-left quadrant - area in the bottom-right one) / area
    imbalance: float

    @property
    def q_tail(self) -> bool:
        """``True`` when the bottom-right of the counter is cut away, as a ``Q``'s tail does."""
        return self.score >= Q_SCORE and self.imbalance >= Q_IMBALANCE

    @property
    def score(self) -> float:
        """Corner offset plus area imbalance: how strongly the bottom-right is cut away."""
        return self.corner + self.imbalance


@dataclass(frozen=True, slots=True)
class CharRow:
    """The segmented character row of one plate crop."""

    mask: Image  # 255 where the glyphs' ink is
    boxes: tuple[tuple[int, int, int, int], ...]  # x, y, w, h of each character, left to right

    @property
    def top(self) -> int:
        """Median top of the characters."""
        return int(np.median([b[1] for b in self.boxes]))

    @property
    def bottom(self) -> int:
        """Median bottom of the characters."""
        return int(np.median([b[1] + b[3] for b in self.boxes]))

    @property
    def pitch(self) -> float:
        """Median distance between neighbouring character centres."""
        centres = sorted(x + w / 2 for x, _, w, _ in self.boxes)
        return float(np.median(np.diff(centres)))


def _row_of(mask: Image) -> tuple[tuple[int, int, int, int], ...]:
    """The largest group of character-sized components on one line."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    cands = [
        (int(x), int(y), int(w), int(h))
        for x, y, w, h, _ in stats[1:]
        if 0.18 * HEIGHT <= h <= 0.85 * HEIGHT and 0.12 * h <= w <= 1.3 * h
    ]
    best: list[tuple[int, int, int, int]] = []
    for _, y, _, h in cands:
        yc = y + h / 2
        group = [
            c for c in cands if abs(c[1] + c[3] / 2 - yc) < 0.2 * h and abs(c[3] - h) < 0.2 * h
        ]
        if len(group) > len(best):
            best = group
    return tuple(sorted(best))


def segment_row(grey: Image, chars: int = 7) -> CharRow | None:
    """The character row of a plate crop ``HEIGHT`` px high; ``None`` under 4 characters."""
    found: CharRow | None = None
    for invert in (True, False):
        kind = cv2.THRESH_BINARY_INV if invert else cv2.THRESH_BINARY
        for div in _BLOCKS:
            block = 2 * (HEIGHT // div // 2) + 1
            for offset in _OFFSETS:
                mask = np.asarray(
                    cv2.adaptiveThreshold(
                        grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, kind, block, offset
                    ),
                    dtype=np.uint8,
                )
                boxes = _row_of(mask)
                if found is None or min(len(boxes), chars) > min(len(found.boxes), chars):
                    found = CharRow(mask, boxes)
                if len(boxes) == chars:
                    return found
    return found if found is not None and len(found.boxes) >= 4 else None


def counter_of(glyph: Image) -> Counter | None:
    """Shape of the largest enclosed background region of a 0/1 glyph mask, if any."""
    h, w = glyph.shape
    background = (glyph == 0).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
    inner = [
        j
        for j in range(1, len(stats))
        if stats[j][0] > 0
        and stats[j][1] > 0
        and stats[j][0] + stats[j][2] < w
        and stats[j][1] + stats[j][3] < h
    ]
    if not inner:
        return None
    j = max(inner, key=lambda k: int(stats[k][4]))
    x, y, cw, ch, area = (int(v) for v in stats[j])
    if area < MIN_COUNTER * h * w:
        return None
    ys, xs = np.nonzero(labels[y : y + ch, x : x + cw] == j)
    cy, cx = (ch - 1) / 2, (cw - 1) / 2
    top_left = int(((ys < cy) & (xs < cx)).sum())
    bottom_right = int(((ys > cy) & (xs > cx)).sum())

    def reach(px: float, py: float) -> float:
        return float(np.sqrt(((xs - px) ** 2 + (ys - py) ** 2).min()))

    diag = math.hypot(cw, ch)
    corner = (reach(cw - 1, ch - 1) - reach(0, 0)) / diag
    return Counter(corner=corner, imbalance=(top_left - bottom_right) / area)


class PlateGlyphs:
    """One plate box, its character row segmented once and queried per position."""

    def __init__(self, frame: Image, box: Box, chars: int = 7) -> None:
        bw, bh = box.x2 - box.x1, box.y2 - box.y1
        self._x1 = max(0, int(box.x1 - PAD * bw))
        x2 = min(frame.shape[1], math.ceil(box.x2 + PAD * bw))
        y1 = max(0, int(box.y1 - PAD * bh))
        y2 = min(frame.shape[0], math.ceil(box.y2 + PAD * bh))
        self._box = box
        self._chars = chars
        crop = frame[y1:y2, self._x1 : x2]
        self._scale = HEIGHT / max(crop.shape[0], 1)
        self.grey: Image | None = None
        if crop.size and crop.shape[1] >= 2:
            grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            width = max(1, round(grey.shape[1] * self._scale))
            self.grey = np.asarray(
                cv2.resize(grey, (width, HEIGHT), interpolation=cv2.INTER_CUBIC), dtype=np.uint8
            )
        self._row: CharRow | None = None
        self._segmented = False

    @property
    def row(self) -> CharRow | None:
        """The character row (segmented on first use), ``None`` when none was found."""
        if not self._segmented:
            self._segmented = True
            if self.grey is not None:
                self._row = segment_row(self.grey, self._chars)
        return self._row

    def glyph(self, x_fraction: float) -> Image | None:
        """0/1 mask of the character centred near ``x_fraction`` of the box width."""
        row = self.row
        if row is None or self.grey is None:
            return None
        bw = self._box.x2 - self._box.x1
        xc = (self._box.x1 + x_fraction * bw - self._x1) * self._scale
        pitch = row.pitch if len(row.boxes) >= 4 else bw * self._scale / (self._chars + 0.5)
        height = row.bottom - row.top
        y0 = max(0, row.top - int(0.06 * height))
        y1 = min(HEIGHT, row.bottom + int(0.06 * height))
        a = max(0, int(xc - 0.75 * pitch))
        b = min(self.grey.shape[1], int(xc + 0.75 * pitch))
        if b - a < 2 or y1 - y0 < 2:
            return None
        window = np.ascontiguousarray(row.mask[y0:y1, a:b])
        _, labels, stats, _ = cv2.connectedComponentsWithStats(window, connectivity=8)
        best = None
        for j in range(1, len(stats)):
            x, _, w, h, area = (int(v) for v in stats[j])
            if h < 0.6 * height or abs(x + w / 2 - (xc - a)) > 0.45 * pitch:
                continue
            if best is None or area > int(stats[best][4]):
                best = j
        if best is None:
            return None
        x, y, w, h, _ = (int(v) for v in stats[best])
        glyph: Image = (labels[y : y + h, x : x + w] == best).astype(np.uint8)
        return glyph

    def counter(self, x_fraction: float) -> Counter | None:
        """Counter shape of the character near ``x_fraction``; ``None`` when not measurable."""
        glyph = self.glyph(x_fraction)
        return None if glyph is None else counter_of(glyph)
