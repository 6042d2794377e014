"""The Ultralytics plate detector, configured never to reach the network.

Ultralytics checks connectivity, sends usage events, downloads fonts and weights on demand.
:func:`offline` pins it down before the first import: ``YOLO_OFFLINE=1`` (its online check
answers "offline", so no events, hub or asset downloads), a private ``YOLO_CONFIG_DIR`` in the
gtvision cache, and ``sync`` off in its settings. Prediction only calls the model and NMS; no
plotting (the only place fonts are fetched) and no AMP check (training only).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gtvision import metrics
from gtvision.events import Box
from gtvision.models.store import (
    DETECTOR_SHA256,
    ModelMissingError,
    detector_name,
    onnx_path,
    require_detector,
    verify,
)


def offline(config_dir: Path | None = None) -> None:
    """Configure Ultralytics for offline use; call before importing ``ultralytics``."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    if config_dir is not None:
        config_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update({"sync": False})  # type: ignore[no-untyped-call]


def load_yolo(weights: Path, config_dir: Path | None = None) -> Any:
    """An Ultralytics ``YOLO`` for local weights (``.pt`` or ``.onnx``), offline."""
    offline(config_dir if config_dir is not None else weights.parent / "ultralytics")
    from ultralytics import YOLO  # type: ignore[attr-defined]

    return YOLO(str(weights), task="detect", verbose=False)


@dataclass(frozen=True, slots=True)
class PlateBox:
    """One detector hit: box in frame pixels and confidence."""

    box: Box
    confidence: float


class PlateDetector:
    """YOLO licence-plate detector over the cached weights (PyTorch ``.pt`` or ONNX)."""

    def __init__(
        self,
        models_dir: Path,
        *,
        backend: str = "pt",
        device: str = "cpu",
        conf: float = 0.25,
        imgsz: int = 640,
    ) -> None:
        if backend not in {"pt", "onnx"}:
            msg = f"detector backend {backend!r} is not supported: expected 'pt' or 'onnx'"
            raise ValueError(msg)
        weights = require_detector(models_dir)
        verify(weights)  # refuses (and deletes) weights that are not the pinned file
        sha = DETECTOR_SHA256
        path = weights
        self.name = detector_name(sha)
        if backend == "onnx":
            path = onnx_path(models_dir)
            if not path.is_file():
                msg = (
                    f"ONNX detector not found at {path}: run `gtvision models export --format onnx`"
                )
                raise ModelMissingError(msg)
            self.name += "/onnx"
        self.sha256 = sha
        self.device = device
        self.conf = conf
        self.imgsz = imgsz
        self._model = load_yolo(path, models_dir / "ultralytics")

    def detect(
        self, bgr: NDArray[np.uint8], conf: float | None = None, imgsz: int | None = None
    ) -> list[PlateBox]:
        """Plates in one BGR frame, most confident first."""
        t0 = time.perf_counter()
        result = self._model.predict(
            bgr,
            conf=self.conf if conf is None else conf,
            imgsz=self.imgsz if imgsz is None else imgsz,
            device=self.device,
            verbose=False,
        )[0]
        metrics.DETECTOR_SECONDS.observe(time.perf_counter() - t0)
        boxes = result.boxes
        xyxy = boxes.xyxy.cpu().numpy() if hasattr(boxes.xyxy, "cpu") else boxes.xyxy
        confs = boxes.conf.cpu().numpy() if hasattr(boxes.conf, "cpu") else boxes.conf
        out = [
            PlateBox(Box(x1=float(b[0]), y1=float(b[1]), x2=float(b[2]), y2=float(b[3])), float(c))
            for b, c in zip(np.asarray(xyxy), np.asarray(confs), strict=True)
        ]
        out.sort(key=lambda p: -p.confidence)
        return out
