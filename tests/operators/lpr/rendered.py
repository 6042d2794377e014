"""Rendered Brazilian plates (car and motorcycle, old and Mercosul) in generated scenes.

Used by the style and motorcycle tests and by ``bench/lpr_plates.py``. A scene is a car-body
coloured background with texture, a plate of the asked style and layout drawn with PIL, warped
by a rotation and a perspective tilt, with contrast, noise and blur classes applied to the whole
picture. Everything is drawn from a seeded generator: the same seed gives the same picture.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from gtvision.events import Box

Style = Literal["mercosul", "old"]
Layout = Literal["car", "moto"]
FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)


@lru_cache(maxsize=16)
def _font(index: int) -> ImageFont.FreeTypeFont:
    found = [p for p in FONTS if Path(p).exists()]
    if not found:
        msg = f"no plate font found (looked for {', '.join(FONTS)}): install fonts-dejavu-core"
        raise FileNotFoundError(msg)
    return ImageFont.truetype(found[index % len(found)], 200)


def _text(text: str, size: tuple[int, int], font: int) -> NDArray[np.float32]:
    """0..1 mask of ``text`` stretched to ``size`` (w, h): cap height fills the height."""
    f = _font(font)
    left, top, right, bottom = f.getbbox(text)
    canvas = Image.new("L", (int(right - left) + 8, int(bottom - top) + 8), 0)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), text, font=f, fill=255)
    mask = canvas.resize((max(1, size[0]), max(1, size[1])), Image.Resampling.LANCZOS)
    return np.asarray(mask, dtype=np.float32) / 255.0


def _paint(
    img: NDArray[np.float32], mask: NDArray[np.float32], x: int, y: int, bgr: tuple[int, ...]
) -> None:
    h, w = mask.shape
    region = img[y : y + h, x : x + w]
    m = mask[: region.shape[0], : region.shape[1], None]
    region[:] = region * (1 - m) + np.array(bgr, dtype=np.float32) * m


def render_plate(
    text: str, style: Style, layout: Layout, width: int, font: int = 0
) -> NDArray[np.uint8]:
    """A flat plate picture (BGR), ``width`` pixels wide, with its border."""
    h_mm, w_mm = (130, 400) if layout == "car" else (170, 200)
    height = round(width * h_mm / w_mm)
    body = (244, 245, 246) if style == "mercosul" else (196, 198, 200)
    img = np.zeros((height, width, 3), dtype=np.float32)
    img[:] = body
    b = max(1, width // 120)
    img[:b], img[-b:], img[:, :b], img[:, -b:] = 30, 30, 30, 30
    if style == "mercosul":
        band = round(height * (0.2 if layout == "car" else 0.17))
        img[b:band, b:-b] = (160, 51, 0)  # BGR blue
        label = _text("BRASIL", (round(width * 0.22), round(band * 0.5)), font)
        _paint(img, label, (width - label.shape[1]) // 2, round(band * 0.25), (255, 255, 255))
        top = band
    else:
        line = _text("SP - SAO PAULO", (round(width * 0.45), round(height * 0.09)), font)
        _paint(img, line, (width - line.shape[1]) // 2, round(height * 0.05), (30, 30, 30))
        top = round(height * 0.16)
    ink = (12, 12, 12)
    if layout == "car":
        chars = text if style == "mercosul" else f"{text[:3]}-{text[3:]}"
        glyphs = _text(chars, (round(width * 0.86), round((height - top) * 0.62)), font)
        _paint(img, glyphs, (width - glyphs.shape[1]) // 2, top + round((height - top) * 0.17), ink)
    else:
        rows = (text[:4], text[4:]) if style == "mercosul" else (text[:3], text[3:])
        row_h = round((height - top) * 0.38)
        for i, row in enumerate(rows):
            glyphs = _text(row, (round(width * 0.2 * len(row)), row_h), font)
            y = top + round((height - top) * (0.07 + 0.5 * i))
            _paint(img, glyphs, (width - glyphs.shape[1]) // 2, y, ink)
    return np.clip(img, 0, 255).astype(np.uint8)


def random_plate(rng: np.random.Generator, style: Style) -> str:
    """A random plate text of the style's format."""
    letters = "".join(rng.choice(list(string.ascii_uppercase), 3))
    digits = "".join(rng.choice(list(string.digits), 4))
    if style == "old":
        return letters + digits
    return letters + digits[0] + str(rng.choice(list(string.ascii_uppercase))) + digits[2:]


@dataclass(frozen=True, slots=True)
class Scene:
    """A generated picture with one plate: its text, style, layout and box."""

    image: NDArray[np.uint8]
    text: str
    style: Style
    layout: Layout
    box: Box


def scene(
    seed: int,
    style: Style,
    layout: Layout = "car",
    *,
    plate_width: int = 220,
    angle: float = 0.0,
    tilt: float = 0.0,
    contrast: float = 1.0,
    noise: float = 0.0,
    blur: float = 0.0,
    text: str | None = None,
    size: tuple[int, int] = (960, 540),
) -> Scene:
    """One plate on a textured car-coloured background (see the module)."""
    rng = np.random.default_rng(seed)
    plate_text = text or random_plate(rng, style)
    w, h = size
    car = rng.integers(20, 230, size=3).astype(np.float32)
    grad = np.linspace(0.7, 1.1, h, dtype=np.float32)[:, None, None]
    img = np.clip(car[None, None, :] * grad + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(
        np.float32
    )
    plate = render_plate(plate_text, style, layout, plate_width, font=int(rng.integers(0, 3)))
    ph, pw = plate.shape[:2]
    cx, cy = w / 2 + rng.uniform(-0.2, 0.2) * w, h / 2 + rng.uniform(-0.15, 0.15) * h
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], dtype=np.float32)
    # tilt: one side nearer the camera (taller), as seen from a pole beside the road
    k = 1.0 + tilt
    dst = np.array(
        [
            [-pw / 2, -ph / 2 / k],
            [pw / 2, -ph / 2 * k],
            [pw / 2, ph / 2 * k],
            [-pw / 2, ph / 2 / k],
        ],
        dtype=np.float32,
    )
    rot = cv2.getRotationMatrix2D((0, 0), angle, 1.0)
    dst = dst @ rot[:, :2].T + np.array([cx, cy], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(plate, matrix, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.ones((ph, pw), np.float32), matrix, (w, h))[..., None]
    img = img * (1 - mask) + warped.astype(np.float32) * mask
    img = 128 + (img - 128) * contrast
    if blur > 0:
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), blur), dtype=np.float32)
    if noise > 0:
        img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    x1, y1 = dst.min(axis=0)
    x2, y2 = dst.max(axis=0)
    box = Box(x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2))
    return Scene(np.clip(np.rint(img), 0, 255).astype(np.uint8), plate_text, style, layout, box)
