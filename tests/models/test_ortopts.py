"""Both ONNX Runtime sessions of the plate reader: pool size from GTV_THREADS, no spinning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gtvision.models.ocr import PlateOCR
from gtvision.models.ortdet import OrtPlateDetector
from gtvision.models.ortopts import NO_SPIN, session_options
from gtvision.models.store import onnx_path


def _options(session: Any) -> Any:
    return session.get_session_options()


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_the_options_set_the_pool_and_never_spin(threads: int) -> None:
    options = session_options(threads)
    assert options.get_session_config_entry(NO_SPIN) == "0"
    assert options.intra_op_num_threads == threads  # 0: ONNX Runtime's default
    assert options.inter_op_num_threads == (1 if threads else 0)


def test_negative_threads_are_refused() -> None:
    with pytest.raises(ValueError, match=r"threads must be >= 0.*got -1"):
        session_options(-1)


@pytest.mark.parametrize("threads", [0, 2])
def test_detector_and_recogniser_sessions_get_the_options(models_dir: Path, threads: int) -> None:
    if not onnx_path(models_dir).is_file():
        pytest.fail("the ONNX detector is not exported: run `gtvision models export`")
    det = OrtPlateDetector(models_dir, threads=threads)
    ocr = PlateOCR(threads=threads)
    rec = ocr._rec.session.session
    for opts in (_options(det._session), _options(rec)):
        assert opts.get_session_config_entry(NO_SPIN) == "0"
        assert opts.intra_op_num_threads == threads
    assert not _options(rec).enable_cpu_mem_arena  # RapidOCR's own options are kept
    crop = np.full((48, 160, 3), 255, np.uint8)
    (probs,) = ocr.probs([crop])
    assert probs.ndim == 2
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)  # a softmax per step: the model runs


def test_the_reader_runs_the_recogniser_on_one_thread_unless_told(models_dir: Path) -> None:
    from gtvision.operators.lpr import PlateReader, ReaderConfig

    default = PlateReader.load(models_dir, backend="ort", config=ReaderConfig())
    two = PlateReader.load(models_dir, backend="ort", config=ReaderConfig(threads=2))
    assert isinstance(default.detector, OrtPlateDetector)
    assert isinstance(two.detector, OrtPlateDetector)
    assert _options(default.ocr._rec.session.session).intra_op_num_threads == 1
    assert _options(default.detector._session).intra_op_num_threads == 0  # the runtime's pool
    assert _options(two.ocr._rec.session.session).intra_op_num_threads == 2
    assert _options(two.detector._session).intra_op_num_threads == 2
