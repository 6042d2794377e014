"""Synthetic luma frames for the motion detector's tests and ``bench/motion_sweep.py``.

A static street-like scene in limited-range Y (16..235): a flat road (level 100) under a
textured surround (grid lines, boxes, a gradient, fixed grain), then per frame:

* sensor noise: Gaussian, ``sigma`` levels on every raw pixel, new every frame;
* ``kind``: what else happens (:data:`KINDS`):

  - ``static``: nothing;
  - ``object``: a flat ``contrast`` levels brighter (or darker, ``contrast < 0``) box crossing the
    road (the red car on grey asphalt of issue 19);
  - ``step``: the exposure jumps (gain 1.25 and +6 levels) halfway;
  - ``ramp``: auto-exposure ramps the gain 1 → 1.45 over the clip and back;
  - ``flicker``: every frame a random global gain (±6 %) and offset (±4 levels) (mains beating
    with the frame rate, a lamp warming up);
  - ``rain``: 150 thin bright streaks (1-2 px × 6-16 px, +10..+40 levels: translucent and
    motion-blurred) at new places every frame (at the analysis rate drops do not persist);
  - ``snow``: 120 flakes (discs of 1-2 px radius, +30..+70 levels) at new places every frame.

Frames are NumPy arrays (``H×W`` uint8), cheap enough for minutes of video: the noise is drawn
from a bank of pre-drawn fields shifted at random.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

Kind = Literal["static", "object", "step", "ramp", "flicker", "rain", "snow"]
KINDS: tuple[Kind, ...] = ("static", "object", "step", "ramp", "flicker", "rain", "snow")
ROAD_LEVEL = 100


def background(width: int, height: int, seed: int = 0) -> NDArray[np.float32]:
    """The static scene: textured surround, flat road in the middle third."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = 90 + 50 * x / width + 20 * y / height
    grain = rng.normal(0, 12, (height // 4 + 1, width // 4 + 1)).astype(np.float32)
    bg += cv2.resize(grain, (width, height), interpolation=cv2.INTER_LINEAR)
    bg[:, :: max(8, width // 16)] += 60
    bg[:: max(8, height // 9), :] += 60
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height // 3))
        bg[y0 : y0 + height // 8, x0 : x0 + width // 10] = rng.uniform(30, 200)
    bg[height // 3 : 2 * height // 3, :] = ROAD_LEVEL
    out: NDArray[np.float32] = np.clip(bg, 16, 235).astype(np.float32)
    return out


@dataclass
class SceneSpec:
    """What one clip shows (see the module docstring)."""

    kind: Kind = "static"
    sigma: float = 2.0
    contrast: float = 12.0
    seconds: float = 20.0
    fps: float = 5.0
    width: int = 640
    height: int = 360
    seed: int = 0
    object_size: tuple[int, int] = (64, 40)
    """Object width and height in pixels (at 1280×720 that is a car some 40 m away)."""
    speed: float = 0.25
    """Object speed in picture widths per second."""


@dataclass(frozen=True, slots=True)
class SceneFrame:
    """One frame and, for ``object`` clips, where the object is (x1, y1, x2, y2) if inside."""

    t: float
    gray: NDArray[np.uint8]
    truth: tuple[int, int, int, int] | None


def _noise_bank(spec: SceneSpec, rng: np.random.Generator) -> NDArray[np.float32]:
    shape = (8, spec.height + 16, spec.width + 16)
    return rng.normal(0, 1, shape).astype(np.float32)


def _rain(
    frame: NDArray[np.float32], rng: np.random.Generator, *, snow: bool, scale: float
) -> None:
    h, w = frame.shape
    layer = np.zeros_like(frame)
    if snow:
        for _ in range(int(120 * scale)):
            center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            radius = int(rng.integers(1, 3))
            cv2.circle(layer, center, radius, float(rng.uniform(30, 70)), -1)
    else:
        for _ in range(int(150 * scale)):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            length, slant = int(rng.integers(6, 17)), int(rng.integers(-3, 4))
            thick = int(rng.integers(1, 3))
            cv2.line(layer, (x, y), (x + slant, y + length), float(rng.uniform(10, 40)), thick)
    frame += layer


def _exposure(spec: SceneSpec, t: float, rng: np.random.Generator) -> tuple[float, float]:
    """Gain and offset of the exposure at ``t``."""
    half = spec.seconds / 2
    if spec.kind == "step":
        return (1.25, 6.0) if t >= half else (1.0, 0.0)
    if spec.kind == "ramp":
        return 1.0 + 0.45 * (1 - abs(t - half) / half), 0.0
    if spec.kind == "flicker":
        return 1.0 + float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-4, 4))
    return 1.0, 0.0


def frames(spec: SceneSpec) -> Iterator[SceneFrame]:
    """The clip's frames at ``spec.fps``."""
    rng = np.random.default_rng(spec.seed + 1000)
    bg = background(spec.width, spec.height, spec.seed)
    bank = _noise_bank(spec, rng)
    ow, oh = spec.object_size
    count = round(spec.seconds * spec.fps)
    scale = spec.width * spec.height / (640 * 360)
    for i in range(count):
        t = i / spec.fps
        frame = bg.copy()
        truth = None
        if spec.kind == "object":
            x1 = round(-ow + (t - 1.0) * spec.speed * spec.width)
            y1 = spec.height // 2 - oh // 2
            if x1 >= 0 and x1 + ow <= spec.width:
                truth = (x1, y1, x1 + ow, y1 + oh)
            lo, hi = max(0, x1), min(spec.width, x1 + ow)
            if hi > lo:
                frame[y1 : y1 + oh, lo:hi] = ROAD_LEVEL + spec.contrast
        gain, offset = _exposure(spec, t, rng)
        if (gain, offset) != (1.0, 0.0):
            frame = 16 + (frame - 16) * gain + offset
        if spec.kind in ("rain", "snow"):
            _rain(frame, rng, snow=spec.kind == "snow", scale=scale)
        if spec.sigma > 0:
            dy, dx = int(rng.integers(0, 16)), int(rng.integers(0, 16))
            noise = bank[i % len(bank), dy : dy + spec.height, dx : dx + spec.width]
            frame += noise * spec.sigma
        yield SceneFrame(t, np.clip(frame + 0.5, 16, 235).astype(np.uint8), truth)
