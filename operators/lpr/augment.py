"""Seeded, deterministic image degradations for the LPR evaluation protocol.

Each augmentation turns one benchmark photo and its ground-truth box into a harder copy, with
its parameters drawn from a generator seeded by the image name, the augmentation and the run's
seed (so every copy is the same on every machine and in any order):

* ``scale``: down-scaled to 0.4–1.0× (area interpolation, as a farther or lower-resolution camera);
* ``blur``: Gaussian blur (σ 0.8–1.8 px) or linear motion blur (5–9 px, any direction);
* ``jpeg``: re-encoded at JPEG quality 25–40;
* ``lowlight``: gain 0.3–0.6 and gamma 1.6–2.4 (dark, crushed shadows), plus sensor noise
  (σ 2–5 grey levels);
* ``rotate``: rotated by −10…10° about the plate's centre (edges replicated);
* ``perspective``: each image corner moved by up to 10 % of the size (an oblique view).

The ground-truth box follows the geometry (the bounding box of its moved corners).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from gtvision.events import Box

Image = NDArray[np.uint8]
Rng = np.random.Generator


@dataclass(frozen=True, slots=True)
class Augmented:
    """A degraded copy of a photo, its moved ground-truth box and the parameters drawn."""

    image: Image
    box: Box
    params: str


def _box_through(box: Box, matrix: NDArray[np.float64], shape: tuple[int, ...]) -> Box:
    """Bounding box of ``box``'s corners mapped by a 3×3 homography, clipped to the image."""
    pts = np.array(
        [[box.x1, box.y1], [box.x2, box.y1], [box.x2, box.y2], [box.x1, box.y2]], dtype=np.float64
    )
    moved = cv2.perspectiveTransform(pts[None], matrix)[0]
    h, w = shape[:2]
    x1, y1 = np.clip(moved.min(axis=0), 0, [w - 1, h - 1])
    x2, y2 = np.clip(moved.max(axis=0), 0, [w - 1, h - 1])
    return Box(x1=float(x1), y1=float(y1), x2=float(max(x2, x1 + 1)), y2=float(max(y2, y1 + 1)))


def _scale(image: Image, box: Box, rng: Rng) -> Augmented:
    s = float(rng.uniform(0.4, 1.0))
    h, w = image.shape[:2]
    size = (max(1, round(w * s)), max(1, round(h * s)))
    out = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    moved = Box(x1=box.x1 * s, y1=box.y1 * s, x2=box.x2 * s, y2=box.y2 * s)
    return Augmented(out, moved, f"scale={s:.2f}")


def _blur(image: Image, box: Box, rng: Rng) -> Augmented:
    if rng.random() < 0.5:
        sigma = float(rng.uniform(0.8, 1.8))
        out = cv2.GaussianBlur(image, (0, 0), sigma)
        return Augmented(np.asarray(out, dtype=np.uint8), box, f"gauss={sigma:.2f}")
    length = int(rng.integers(5, 10))
    angle = float(rng.uniform(0, 180))
    line = np.zeros((length, length), dtype=np.float32)
    line[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = np.asarray(cv2.warpAffine(line, rot, (length, length)), dtype=np.float32)
    out = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))
    return Augmented(np.asarray(out, dtype=np.uint8), box, f"motion={length}px@{angle:.0f}")


def _jpeg(image: Image, box: Box, rng: Rng) -> Augmented:
    quality = int(rng.integers(25, 41))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        msg = f"JPEG encoding at quality {quality} failed for an image of shape {image.shape}"
        raise ValueError(msg)
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return Augmented(np.asarray(out, dtype=np.uint8), box, f"quality={quality}")


def _lowlight(image: Image, box: Box, rng: Rng) -> Augmented:
    gain = float(rng.uniform(0.3, 0.6))
    gamma = float(rng.uniform(1.6, 2.4))
    noise = float(rng.uniform(2.0, 5.0))
    lut = 255.0 * gain * (np.arange(256) / 255.0) ** gamma
    dark = lut[image]
    dark += rng.normal(0.0, noise, size=image.shape)
    out = np.clip(np.rint(dark), 0, 255).astype(np.uint8)
    return Augmented(out, box, f"gain={gain:.2f} gamma={gamma:.2f} noise={noise:.1f}")


def _rotate(image: Image, box: Box, rng: Rng) -> Augmented:
    angle = float(rng.uniform(-10.0, 10.0))
    centre = ((box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2)
    affine = cv2.getRotationMatrix2D(centre, angle, 1.0)
    h, w = image.shape[:2]
    out = cv2.warpAffine(
        image, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    matrix = np.vstack([affine, [0.0, 0.0, 1.0]])
    return Augmented(
        np.asarray(out, dtype=np.uint8),
        _box_through(box, matrix, image.shape),
        f"angle={angle:.1f}",
    )


def _perspective(image: Image, box: Box, rng: Rng) -> Augmented:
    h, w = image.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    jitter = rng.uniform(-0.1, 0.1, size=(4, 2)) * np.array([w, h])
    dst = (src + jitter).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    worst = float(np.abs(jitter / np.array([w, h])).max())
    return Augmented(
        np.asarray(out, dtype=np.uint8),
        _box_through(box, matrix.astype(np.float64), image.shape),
        f"corner<={worst:.2f}",
    )


AUGMENTATIONS: dict[str, Callable[[Image, Box, Rng], Augmented]] = {
    "scale": _scale,
    "blur": _blur,
    "jpeg": _jpeg,
    "lowlight": _lowlight,
    "rotate": _rotate,
    "perspective": _perspective,
}


def parse_augmentations(spec: str) -> tuple[str, ...]:
    """``"all"`` or a comma list of :data:`AUGMENTATIONS` names, in the order given."""
    if spec.strip() in {"", "all"}:
        return tuple(AUGMENTATIONS)
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown or not names:
        msg = f"unknown augmentation(s) {unknown or spec!r}: expected 'all' or some of " + (
            ", ".join(AUGMENTATIONS)
        )
        raise ValueError(msg)
    return names


def augment(image: Image, box: Box, kind: str, key: str, seed: int = 0) -> Augmented:
    """The ``kind`` copy of ``image`` (parameters seeded by ``key``, ``kind`` and ``seed``)."""
    fn = AUGMENTATIONS.get(kind)
    if fn is None:
        msg = f"unknown augmentation {kind!r}: expected one of {', '.join(AUGMENTATIONS)}"
        raise ValueError(msg)
    rng = np.random.default_rng([zlib.crc32(f"{key}\0{kind}".encode()), seed])
    return fn(image, box, rng)
