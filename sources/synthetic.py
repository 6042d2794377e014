"""A synthetic street video with Brazilian plates, for the demo and end-to-end tests.

The scene is drawn with PIL: a static street (sky, buildings, sidewalks, a road with lane marks)
where cars seen from the front drive down the road towards the camera, grow, pass and leave,
with quiet gaps between them. Each car carries a rendered plate: Mercosul ``LLL9L99`` (white
plate, blue "BRASIL" band, black characters) or the old ``LLL9999`` format (grey plate with a
city line). The video is 1280×720 H.264 with one keyframe per second, written once and cached
(``sample_video(cache_dir)``); its content is fixed by :data:`SCENE_VERSION` and the schedule.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

SCENE_VERSION = 3
WIDTH, HEIGHT, FPS = 1280, 720, 15
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
)
PlateStyle = Literal["mercosul", "old"]
_HORIZON_Y = 250
_ROAD_TOP_HALF = 70
_ROAD_BOTTOM_HALF = 760


@dataclass(frozen=True, slots=True)
class SampleCar:
    """One car of the sample video: its plate, when it enters and how long its pass lasts."""

    plate: str
    style: PlateStyle
    enter_s: float
    duration_s: float
    color: tuple[int, int, int]
    lane: float  # -1 (left) .. 1 (right), offset from the road centre

    @property
    def leave_s(self) -> float:
        """Second at which the car has left the picture."""
        return self.enter_s + self.duration_s


SAMPLE_CARS: tuple[SampleCar, ...] = (
    SampleCar("BRA2E19", "mercosul", 2.0, 4.5, (176, 32, 40), -0.18),
    SampleCar("KLM3907", "old", 10.0, 4.5, (40, 70, 150), 0.18),
    SampleCar("GTV5K42", "mercosul", 18.0, 4.5, (225, 225, 228), -0.18),
    SampleCar("PXT8164", "old", 26.0, 4.5, (60, 60, 64), 0.18),
)
SAMPLE_DURATION_S = 34.0
HOTLIST_PLATE = "GTV5K42"


class FontMissingError(RuntimeError):
    """No TrueType font to draw plate characters with."""


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    msg = (
        f"no plate font found (looked for {', '.join(FONT_CANDIDATES)}): "
        "install the Debian package fonts-dejavu-core"
    )
    raise FontMissingError(msg)


def _text_block(text: str, height: int, width: int, color: tuple[int, int, int]) -> Image.Image:
    """``text`` drawn in bold, its cap height scaled to ``height`` and squeezed to ``width``."""
    font = _font(200)
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (int(right - left) + 8, int(bottom - top) + 8), 0)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), text, font=font, fill=255)
    mask = canvas.resize((max(1, width), max(1, height)), Image.Resampling.LANCZOS)
    block = Image.new("RGBA", mask.size, (*color, 0))
    block.putalpha(mask)
    return block


def render_plate(text: str, style: PlateStyle, width: int) -> Image.Image:
    """A plate picture ``width`` pixels wide (400×130 mm proportions)."""
    height = round(width * 130 / 400)
    radius = max(2, width // 40)
    plate = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(plate)
    if style == "mercosul":
        draw.rounded_rectangle(
            (0, 0, width - 1, height - 1), radius, fill=(246, 246, 244), outline=(30, 30, 30)
        )
        band = round(height * 0.24)
        draw.rounded_rectangle((2, 2, width - 3, band), radius, fill=(0, 51, 160))
        draw.rectangle((2, band // 2, width - 3, band), fill=(0, 51, 160))
        label = _text_block("BRASIL", round(band * 0.55), round(width * 0.22), (255, 255, 255))
        plate.alpha_composite(label, ((width - label.width) // 2, round(band * 0.22)))
        flag_w, flag_h = round(width * 0.06), round(band * 0.55)
        flag_x, flag_y = width - flag_w - round(width * 0.03), round(band * 0.22)
        draw.rectangle((flag_x, flag_y, flag_x + flag_w, flag_y + flag_h), fill=(0, 150, 60))
        chars = text
        top, glyph_h = band + round(height * 0.14), round(height * 0.52)
    else:
        draw.rounded_rectangle(
            (0, 0, width - 1, height - 1), radius, fill=(196, 198, 200), outline=(20, 20, 20)
        )
        line = _text_block("SP - SAO PAULO", round(height * 0.12), round(width * 0.40), (30,) * 3)
        plate.alpha_composite(line, ((width - line.width) // 2, round(height * 0.07)))
        chars = f"{text[:3]}-{text[3:]}"
        top, glyph_h = round(height * 0.30), round(height * 0.55)
    glyphs = _text_block(chars, glyph_h, round(width * 0.86), (12, 12, 12))
    plate.alpha_composite(glyphs, ((width - glyphs.width) // 2, top))
    return plate


def render_car(car: SampleCar, scale: float) -> Image.Image:
    """The front of ``car`` at ``scale`` (1.0 is 600 px wide), plate included."""
    w = max(8, round(600 * scale))
    h = round(w * 0.62)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    body = car.color
    dark = tuple(max(0, c - 60) for c in body)
    roof_top = round(h * 0.02)
    d.polygon(
        [(w * 0.2, roof_top), (w * 0.8, roof_top), (w * 0.9, h * 0.42), (w * 0.1, h * 0.42)],
        fill=dark,
    )
    d.polygon(
        [(w * 0.24, h * 0.07), (w * 0.76, h * 0.07), (w * 0.84, h * 0.39), (w * 0.16, h * 0.39)],
        fill=(70, 90, 110),
    )
    d.rounded_rectangle((0, round(h * 0.38), w - 1, round(h * 0.9)), max(2, w // 25), fill=body)
    for x0 in (0.04, 0.79):
        d.rounded_rectangle(
            (round(w * x0), round(h * 0.46), round(w * (x0 + 0.17)), round(h * 0.56)),
            max(1, w // 60),
            fill=(250, 245, 210),
        )
    d.rectangle((round(w * 0.3), round(h * 0.47), round(w * 0.7), round(h * 0.56)), fill=(25,) * 3)
    for x0 in (0.06, 0.8):
        d.rectangle((round(w * x0), round(h * 0.88), round(w * (x0 + 0.14)), h - 1), fill=(15,) * 3)
    plate = render_plate(car.plate, car.style, round(w * 0.33))
    img.alpha_composite(plate, ((w - plate.width) // 2, round(h * 0.62)))
    return img


@lru_cache(maxsize=1)
def background() -> Image.Image:
    """The static street: sky, buildings, sidewalks, road and lane marks."""
    img = Image.new("RGB", (WIDTH, HEIGHT), (150, 185, 215))
    d = ImageDraw.Draw(img)
    rng = np.random.default_rng(7)
    x = 0
    while x < WIDTH:
        bw, bh = int(rng.integers(80, 180)), int(rng.integers(90, 220))
        shade = int(rng.integers(120, 200))
        d.rectangle((x, _HORIZON_Y - bh, x + bw, _HORIZON_Y), fill=(shade, shade - 10, shade - 25))
        for wy in range(_HORIZON_Y - bh + 12, _HORIZON_Y - 10, 24):
            for wx in range(x + 10, x + bw - 16, 26):
                d.rectangle((wx, wy, wx + 12, wy + 12), fill=(90, 110, 130))
        x += bw + int(rng.integers(0, 12))
    d.rectangle((0, _HORIZON_Y, WIDTH, HEIGHT), fill=(120, 120, 115))
    cx = WIDTH / 2
    road = [
        (cx - _ROAD_TOP_HALF, _HORIZON_Y),
        (cx + _ROAD_TOP_HALF, _HORIZON_Y),
        (cx + _ROAD_BOTTOM_HALF, HEIGHT),
        (cx - _ROAD_BOTTOM_HALF, HEIGHT),
    ]
    d.polygon(road, fill=(68, 68, 72))
    for side in (-1, 1):
        d.line(
            [(cx + side * _ROAD_TOP_HALF, _HORIZON_Y), (cx + side * _ROAD_BOTTOM_HALF, HEIGHT)],
            fill=(235, 235, 235),
            width=6,
        )
    for i in range(12):
        t0, t1 = (i / 12) ** 1.6, ((i + 0.5) / 12) ** 1.6
        y0, y1 = _HORIZON_Y + t0 * (HEIGHT - _HORIZON_Y), _HORIZON_Y + t1 * (HEIGHT - _HORIZON_Y)
        d.polygon(
            [
                (cx - 2 - 6 * t0, y0),
                (cx + 2 + 6 * t0, y0),
                (cx + 2 + 6 * t1, y1),
                (cx - 2 - 6 * t1, y1),
            ],
            fill=(230, 200, 60),
        )
    return img


def car_placement(car: SampleCar, t: float) -> tuple[float, float, float] | None:
    """``(centre x, bottom y, scale)`` of ``car`` at second ``t``, or ``None`` when not shown."""
    if not car.enter_s <= t < car.leave_s:
        return None
    p = (t - car.enter_s) / car.duration_s
    # slow approach then faster exit, like a car under a gantry camera
    depth = p**1.3
    bottom = _HORIZON_Y + 40 + depth * (HEIGHT + 200 - _HORIZON_Y)
    scale = 0.2 + 0.85 * depth
    half_road = _ROAD_TOP_HALF + (_ROAD_BOTTOM_HALF - _ROAD_TOP_HALF) * min(
        1.0, (bottom - _HORIZON_Y) / (HEIGHT - _HORIZON_Y)
    )
    return WIDTH / 2 + car.lane * half_road, bottom, scale


def render_frame(t: float, cars: tuple[SampleCar, ...] = SAMPLE_CARS) -> NDArray[np.uint8]:
    """The scene at second ``t`` as an RGB array (H×W×3)."""
    shown = [(car, pos) for car in cars if (pos := car_placement(car, t)) is not None]
    if not shown:
        return _background_array()
    frame = background().copy()
    for car, (cx, bottom, scale) in sorted(shown, key=lambda item: item[1][2]):
        sprite = render_car(car, scale)
        frame.paste(sprite, (round(cx - sprite.width / 2), round(bottom - sprite.height)), sprite)
    rgb: NDArray[np.uint8] = np.asarray(frame, dtype=np.uint8)
    return rgb


@lru_cache(maxsize=1)
def _background_array() -> NDArray[np.uint8]:
    rgb: NDArray[np.uint8] = np.asarray(background(), dtype=np.uint8)
    rgb.flags.writeable = False
    return rgb


def frames(duration_s: float = SAMPLE_DURATION_S, fps: int = FPS) -> Iterator[NDArray[np.uint8]]:
    """Every frame of the sample video, in order."""
    for index in range(math.ceil(duration_s * fps)):
        yield render_frame(index / fps)


def scene_digest() -> str:
    """Short hash naming this version of the scene (cache key of the encoded file)."""
    spec = repr((SCENE_VERSION, WIDTH, HEIGHT, FPS, SAMPLE_DURATION_S, SAMPLE_CARS))
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def write_video(path: Path, duration_s: float = SAMPLE_DURATION_S, fps: int = FPS) -> Path:
    """Encode the scene to ``path`` (H.264, yuv420p, one keyframe per second), atomically."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    try:
        with av.open(str(tmp), "w") as out:
            stream = out.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.options = {
                "preset": "superfast",
                "crf": "20",
                "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=0",
            }
            for rgb in frames(duration_s, fps):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sample_video(cache_dir: Path) -> Path:
    """Path of the cached sample video under ``cache_dir``, written on first use."""
    path = cache_dir / f"gtvision-street-{scene_digest()}.mp4"
    if not path.exists():
        write_video(path)
    return path
