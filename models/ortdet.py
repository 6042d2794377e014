"""The plate detector on ONNX Runtime alone: no PyTorch, no Ultralytics at run time.

The same ``best.pt``, exported once to ONNX (``gtvision models export --format onnx``, dynamic
input size), runs in an ONNX Runtime session with pre- and post-processing done here in numpy
and OpenCV:

* letterbox: the frame is scaled so its longer side is ``imgsz`` and padded only to the next
  multiple of 32 (a 16:9 frame is read as 640×384, not 640×640: 40 % fewer pixels);
* the output ``1×5×N`` (centre x, centre y, width, height, plate score) is thresholded at
  ``conf`` and reduced by non-maximum suppression (IoU 0.7, Ultralytics' default).

A process that only reads plates then holds ONNX Runtime and the 12 MB model instead of PyTorch
(~950 MB before the first camera with Ultralytics). ``int8`` (default ``None``: when the file is in
the cache) runs the statically quantised model of :mod:`gtvision.models.quantize` instead; its
events name the detector ``…/onnx-int8``. ``threads`` sets the session's intra-op
threads (0: ONNX Runtime's default, one per core); a worker process per core runs best with 1.
The pool does not spin (:mod:`gtvision.models.ortopts`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gtvision.events import Box
from gtvision.models.ortopts import session_options
from gtvision.models.store import DETECTOR_SHA256, ModelMissingError, detector_name, onnx_path
from gtvision.models.yolo import PlateBox

#: non-maximum suppression IoU (Ultralytics' predict default)
NMS_IOU = 0.7
STRIDE = 32


def letterbox(bgr: NDArray[np.uint8], imgsz: int) -> tuple[NDArray[np.float32], float, int, int]:
    """The network input (1×3×H×W, RGB, 0..1), the scale and the left/top padding."""
    h, w = bgr.shape[:2]
    scale = imgsz / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR) if scale != 1 else bgr
    pw, ph = -nw % STRIDE, -nh % STRIDE
    left, top = pw // 2, ph // 2
    padded = cv2.copyMakeBorder(
        resized, top, ph - top, left, pw - left, cv2.BORDER_CONSTANT, value=(114, 114, 114)
    )
    blob = cv2.dnn.blobFromImage(padded, 1 / 255.0, swapRB=True)
    return np.asarray(blob, dtype=np.float32), scale, left, top


class OrtPlateDetector:
    """Same interface as :class:`~gtvision.models.yolo.PlateDetector`, on ONNX Runtime."""

    def __init__(
        self,
        models_dir: Path,
        *,
        conf: float = 0.25,
        imgsz: int = 640,
        threads: int = 0,
        int8: bool | None = None,
    ) -> None:
        import onnxruntime as ort

        from gtvision.models.quantize import int8_path

        quantised = int8_path(models_dir)
        if int8 is None:
            int8 = quantised.is_file()
        path = quantised if int8 else onnx_path(models_dir)
        if not path.is_file():
            msg = f"ONNX detector not found at {path}: run `gtvision models export --format onnx`"
            raise ModelMissingError(msg)
        self._session: Any = ort.InferenceSession(
            str(path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self.int8 = int8
        self.name = detector_name(DETECTOR_SHA256) + ("/onnx-int8" if int8 else "/onnx")
        self.sha256 = DETECTOR_SHA256
        self.device = "cpu"
        self.conf = conf
        self.imgsz = imgsz

    def detect(
        self, bgr: NDArray[np.uint8], conf: float | None = None, imgsz: int | None = None
    ) -> list[PlateBox]:
        """Plates in one BGR frame, most confident first."""
        threshold = self.conf if conf is None else conf
        blob, scale, left, top = letterbox(bgr, self.imgsz if imgsz is None else imgsz)
        out = np.asarray(self._session.run(None, {self._input: blob})[0][0], dtype=np.float32)
        scores = out[4]
        keep = np.flatnonzero(scores >= threshold)
        if keep.size == 0:
            return []
        cx, cy, bw, bh = out[0, keep], out[1, keep], out[2, keep], out[3, keep]
        x1 = (cx - bw / 2 - left) / scale
        y1 = (cy - bh / 2 - top) / scale
        rects = [
            [float(a), float(b), float(c), float(d)]
            for a, b, c, d in zip(x1, y1, bw / scale, bh / scale, strict=True)
        ]
        confs = [float(s) for s in scores[keep]]
        chosen = cv2.dnn.NMSBoxes(rects, confs, threshold, NMS_IOU)
        h, w = bgr.shape[:2]
        found = []
        for i in np.asarray(chosen, dtype=np.int64).reshape(-1):
            x, y, rw, rh = rects[int(i)]
            box = Box(
                x1=max(0.0, x), y1=max(0.0, y), x2=min(float(w), x + rw), y2=min(float(h), y + rh)
            )
            found.append(PlateBox(box, confs[int(i)]))
        found.sort(key=lambda p: -p.confidence)
        return found
