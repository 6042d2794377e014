"""Int8 plate detector: static quantisation of the exported ONNX model (ONNX Runtime).

``gtvision models export`` writes ``fastanpr-best.onnx`` and then, from it,
``fastanpr-best.int8.onnx``: weights int8 per output channel, activations uint8, in the QDQ
form that ONNX Runtime runs as integer convolutions. On the 2-core development machine (AVX,
no AVX2/VNNI), one thread: 640 px 61–72 ms of CPU instead of 98 ms, 416 px 28–30 instead of 44;
OpenVINO on the same model was not faster than ONNX Runtime there (docs/lpr.md, "Speed").

What stays in float:

* the detection head's last convolution of each branch (box distribution and class logits:
  quantising the class logits lowered every plate score by ~0.12, enough to lose plates at the
  0.25 threshold) and everything after it (distribution focal loss, box decoding, sigmoid,
  the concatenation of box coordinates in pixels with scores in 0..1, which one uint8 scale
  cannot hold).

Calibration (the activation ranges) uses **generated** frames, never the photos the reader is
evaluated on: the synthetic street of :mod:`gtvision.sources.synthetic` (cars with old and
Mercosul plates) at evenly spaced instants, each degraded by one of the evaluation protocol's
augmentations (scale, blur, JPEG, low light, rotation, perspective) so the ranges cover dark,
blurred and oblique frames too. Calibration is deterministic: the same frames every time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from gtvision.models.store import ModelMissingError, onnx_path

#: calibration frames (12 take ~15 s to render and calibrate; 24 gave the same ranges)
CALIBRATION_FRAMES = 12
#: calibrated at the reader's detector input (``ReaderConfig.imgsz``) only: adding the 960-px
#: retry size widened the activation ranges and read worse (at 416 px: augmented 94.2 % vs 95.3 %)
CALIBRATION_SIZES: tuple[int, ...] = (640,)
#: the head's layers kept in float (see the module docstring)
HEAD = "/model.22/"


def int8_path(models_dir: Path) -> Path:
    """Where the quantised detector lives in the cache (beside the float ONNX model)."""
    return onnx_path(models_dir).with_suffix(".int8.onnx")


def calibration_frames(count: int = CALIBRATION_FRAMES) -> list[NDArray[np.uint8]]:
    """``count`` BGR frames of the synthetic street, each degraded by one augmentation."""
    from gtvision.events import Box
    from gtvision.operators.lpr.augment import AUGMENTATIONS, augment
    from gtvision.sources.synthetic import SAMPLE_DURATION_S, render_frame

    if count < 1:
        msg = f"calibration needs at least one frame, got count={count}"
        raise ValueError(msg)
    kinds = ("original", *AUGMENTATIONS)
    anywhere = Box(x1=10, y1=10, x2=60, y2=30)  # augment moves a box; none is needed here
    frames = []
    for i, t in enumerate(np.linspace(0.5, SAMPLE_DURATION_S - 0.5, count)):
        bgr = np.asarray(cv2.cvtColor(render_frame(float(t)), cv2.COLOR_RGB2BGR), dtype=np.uint8)
        kind = kinds[i % len(kinds)]
        if kind != "original":
            bgr = augment(bgr, anywhere, kind, f"calibration-{i}").image
        frames.append(bgr)
    return frames


def float_nodes(node_names: list[str]) -> list[str]:
    """The nodes left in float: the head, except its inner convolutions (``.../conv/Conv``)."""
    return [
        n
        for n in node_names
        if n.startswith(HEAD) and not (("/cv2." in n or "/cv3." in n) and "/conv/" in n)
    ]


def quantize_detector(
    models_dir: Path,
    *,
    sizes: tuple[int, ...] = CALIBRATION_SIZES,
    frames: list[NDArray[np.uint8]] | None = None,
) -> Path:
    """Write the int8 detector from the exported float ONNX model; return its path."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from gtvision.models.ortdet import letterbox

    source = onnx_path(models_dir)
    if not source.is_file():
        msg = f"ONNX detector not found at {source}: run `gtvision models export --format onnx`"
        raise ModelMissingError(msg)
    calib = calibration_frames() if frames is None else frames
    if not calib:
        msg = "calibration needs at least one frame, got an empty list"
        raise ValueError(msg)
    blobs = [letterbox(f, size)[0] for f in calib for size in sizes]
    name = onnx.load(str(source), load_external_data=False).graph.input[0].name

    class Frames(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it: Iterator[NDArray[np.float32]] = iter(blobs)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            blob = next(self._it, None)
            return None if blob is None else {name: blob}

    target = int8_path(models_dir)
    with tempfile.TemporaryDirectory(prefix="gtv-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        nodes = [n.name for n in onnx.load(str(prepared)).graph.node]
        partial = Path(tmp) / target.name
        quantize_static(
            str(prepared),
            str(partial),
            Frames(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=float_nodes(nodes),
        )
        partial.replace(target)
    return target
