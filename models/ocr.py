"""Plate-crop text recognition with RapidOCR's PP-OCRv4 recogniser (no text detector).

RapidOCR's own call returns only the greedy text and a mean score; :class:`PlateOCR` runs the
same ONNX session and pre-processing but returns the per-step softmax matrix, which the
format-constrained decoder in :mod:`gtvision.operators.lpr.ctc` turns into plate candidates with
per-character confidences.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gtvision import metrics
from gtvision.models.ortopts import session_options

OCR_PACKAGE = "rapidocr-onnxruntime"
OCR_VERSION = "1.4.4"
OCR_NAME = f"{OCR_PACKAGE}-{OCR_VERSION}/PP-OCRv4-rec"


class PlateOCR:
    """Recognition-only RapidOCR engine returning CTC probabilities per crop."""

    def __init__(self, *, threads: int = 0, device: str = "cpu") -> None:
        from rapidocr_onnxruntime import RapidOCR

        kwargs: dict[str, Any] = {"use_det": False, "use_cls": False, "use_rec": True}
        if threads > 0:
            kwargs["intra_op_num_threads"] = threads
        if device == "cuda":
            kwargs["rec_use_cuda"] = True
        self._engine = RapidOCR(**kwargs)
        rec = self._engine.text_rec
        if device != "cuda":  # the same model and options, with gtvision's thread settings
            rec.session.session = _cpu_session(rec.session.session, threads)
        self._rec = rec
        self.charset: list[str] = list(rec.postprocess_op.character)
        self.height: int = int(rec.rec_image_shape[1])

    def text(self, crop: NDArray[np.uint8]) -> tuple[str, float]:
        """RapidOCR's own greedy reading of one crop (text, mean score); for baselines."""
        result, _ = self._engine(crop, use_det=False, use_cls=False, use_rec=True)
        if not result:
            return "", 0.0
        text, score = result[0]
        return str(text), float(score)

    def probs(self, crops: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.float32]]:
        """Per-step softmax (T×C) of each BGR crop, T proportional to the crop's width."""
        out: list[NDArray[np.float32]] = []
        t0 = time.perf_counter()
        for crop in crops:
            h, w = crop.shape[:2]
            ratio = max(w / max(h, 1), 1.0)
            norm = self._rec.resize_norm_img(crop, ratio)
            preds = self._rec.session(norm[np.newaxis].astype(np.float32))[0]
            out.append(np.asarray(preds[0], dtype=np.float32))
        metrics.OCR_SECONDS.observe(time.perf_counter() - t0)
        return out


def _cpu_session(session: Any, threads: int) -> Any:
    """``session`` rebuilt with :func:`~gtvision.models.ortopts.session_options`.

    RapidOCR builds its session with no way to pass options: the recogniser is reopened from
    the same model file, RapidOCR's own options kept (no memory arena, full graph
    optimisation), pool threads set and not spinning.
    """
    import onnxruntime as ort

    model = getattr(session, "_model_path", None)
    if not isinstance(model, str):
        msg = f"cannot reopen RapidOCR's recogniser: no model path on {type(session).__name__}"
        raise RuntimeError(msg)
    options = session_options(threads, base=session.get_session_options())
    return ort.InferenceSession(model, sess_options=options, providers=session.get_providers())
