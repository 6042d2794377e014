"""The int8 plate detector: quantised from the exported model, calibrated on generated frames."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from gtvision.models.ortdet import OrtPlateDetector
from gtvision.models.quantize import calibration_frames, float_nodes, int8_path, quantize_detector
from gtvision.models.store import ModelMissingError, detector_name, onnx_path
from gtvision.operators.lpr.reader import load_image
from tests.conftest import DEV_DATA

#: photos with plates near and far, with a second car, at 1280×1280, 1280×720 and 581×1032
PHOTOS = ["HPM9362", "JSG9648", "PJJ4955", "ODJ1599", "JRD2238", "MXQ1601"]


@pytest.fixture(scope="module")
def quantised(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with the float model and an int8 model quantised from it here."""
    if not onnx_path(models_dir).is_file():
        pytest.fail("the ONNX detector is not exported: run `gtvision models export`")
    cache = tmp_path_factory.mktemp("int8")
    shutil.copy(onnx_path(models_dir), onnx_path(cache))
    out = quantize_detector(cache)  # the shipped recipe: the same file as `models export`
    assert out == int8_path(cache)
    return cache


def test_calibration_frames_are_generated_and_deterministic() -> None:
    a, b = calibration_frames(3), calibration_frames(3)
    assert len(a) == 3
    assert a[0].shape == (720, 1280, 3)  # the street as rendered; the next ones degraded
    assert all(x.dtype == np.uint8 and x.ndim == 3 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len({x.tobytes() for x in a}) == 3  # different instants, different degradations
    with pytest.raises(ValueError, match="count=0"):
        calibration_frames(0)


def test_the_head_stays_float_and_the_body_is_integer(quantised: Path) -> None:
    graph = onnx.load(str(int8_path(quantised))).graph
    producers = {out: n for n in graph.node for out in n.output}
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}

    def quantised_weight(conv: onnx.NodeProto) -> bool:
        src = producers.get(conv.input[1])
        return src is not None and src.op_type == "DequantizeLinear"

    body = [c for name, c in convs.items() if not name.startswith("/model.22/")]
    assert body
    assert all(quantised_weight(c) for c in body)
    for branch in ("cv2.0/cv2.0.2", "cv3.0/cv3.0.2", "cv3.2/cv3.2.2"):  # box and class logits
        assert not quantised_weight(convs[f"/model.22/{branch}/Conv"])
    assert quantised_weight(convs["/model.22/cv3.0/cv3.0.0/conv/Conv"])
    assert producers["output0"].op_type == "Concat"  # pixels and scores never share a scale
    names = ["/model.22/dfl/Softmax", "/model.22/cv3.1/cv3.1.1/conv/Conv", "/model.9/cv1/Conv"]
    assert float_nodes(names) == ["/model.22/dfl/Softmax"]


@pytest.mark.parametrize("imgsz", [416, 960])
def test_int8_finds_the_plates_the_float_model_finds(quantised: Path, imgsz: int) -> None:
    """Every plate the float model is sure of (>= 0.5) is found, where it was and about as sure;
    the best plate of each photo is the same. (Marginal boxes near the 0.25 threshold, like a
    far plate at 0.30 on JSG9648, may fall either side.)"""
    fp32 = OrtPlateDetector(quantised, int8=False, imgsz=imgsz, threads=1)
    int8 = OrtPlateDetector(quantised, imgsz=imgsz, threads=1)  # picked: the file is there
    assert (fp32.name, int8.name) == (detector_name() + "/onnx", detector_name() + "/onnx-int8")
    for name in PHOTOS:
        image = load_image(DEV_DATA / f"{name}.jpg")
        assert image is not None, f"missing shared photo {name}"
        ref, got = fp32.detect(image), int8.detect(image)
        assert ref, f"float detector found nothing on {name}"
        assert got, f"int8 detector found nothing on {name}"
        assert got[0].box.iou(ref[0].box) > 0.8, f"{name}: best plate moved"
        for r in (r for r in ref if r.confidence >= 0.5):
            same = max(got, key=lambda g: g.box.iou(r.box))
            assert same.box.iou(r.box) > 0.75, f"{name}: {r} not found ({same})"
            assert abs(same.confidence - r.confidence) < 0.15, f"{name}: {same} vs {r}"


def test_missing_float_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"fastanpr-best\.onnx.*models export"):
        quantize_detector(tmp_path, frames=[np.zeros((64, 64, 3), np.uint8)])
    with pytest.raises(ModelMissingError, match=r"fastanpr-best\.int8\.onnx"):
        OrtPlateDetector(tmp_path, int8=True)
