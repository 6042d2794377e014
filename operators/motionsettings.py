"""Per-camera motion parameters (``cameras.motion_settings`` JSON), see :mod:`.motion`.

``NOISE_K`` and ``THRESHOLD_FLOOR`` are justified by ``bench/motion_sweep.py``: the table and
the reasons are in ``docs/dataflow.md`` ("Motion threshold").
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

Polygon = tuple[tuple[float, float], ...]
NOISE_K = 5.0
THRESHOLD_FLOOR = 10.0


class MotionSettings(BaseModel):
    """Per-camera motion parameters (``cameras.motion_settings`` JSON, all optional).

    ``masks`` are polygons in normalised picture coordinates (``[[x, y], ...]``, 0..1) whose
    pixels never count as motion.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="False: no detection, the gate passes all")
    height: int = Field(default=180, ge=32, le=1080)
    threshold: int | None = Field(
        default=None, ge=1, le=255, description="fixed threshold; None: adaptive to the noise"
    )
    noise_k: float = Field(default=NOISE_K, gt=0, le=50, description="adaptive: k × noise σ")
    threshold_floor: float = Field(default=THRESHOLD_FLOOR, ge=1, le=255)
    alpha: float = Field(default=0.05, gt=0, le=1)
    dilate: int = Field(default=2, ge=0, le=10)
    min_area: int = Field(
        default=30, ge=1, description="changed pixels of a region at the analysis size"
    )
    recalibrate_fraction: float = Field(default=0.5, gt=0, le=1)
    tail_s: float = Field(default=1.0, ge=0)
    masks: tuple[Polygon, ...] = ()

    @field_validator("masks")
    @classmethod
    def _polygons(cls, value: tuple[Polygon, ...]) -> tuple[Polygon, ...]:
        for poly in value:
            if len(poly) < 3 or any(not (0 <= c <= 1) for pt in poly for c in pt):
                msg = f"a mask is >= 3 points with coordinates in 0..1, got {list(poly)!r}"
                raise ValueError(msg)
        return value


def mask_of(settings: MotionSettings, width: int, height: int) -> NDArray[np.bool_] | None:
    """The masked pixels of a ``width`` × ``height`` analysis picture (``None``: no masks)."""
    if not settings.masks:
        return None
    canvas = np.zeros((height, width), np.uint8)
    polys = [
        np.array([[x * (width - 1), y * (height - 1)] for x, y in p], np.int32)
        for p in settings.masks
    ]
    cv2.fillPoly(canvas, polys, 1)
    masked: NDArray[np.bool_] = canvas.astype(bool)
    return masked
