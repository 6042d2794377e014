"""The plate reader takes GTV_PLATE_FORMATS and GTV_THREADS (``ReaderConfig.from_settings``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gtvision.config import ConfigError, load_settings
from gtvision.operators.lpr import ReaderConfig
from gtvision.operators.lpr.plates import PlateFormat

_THREADS = """
import os, sys
import numpy as np
from gtvision.cluster import limit_threads
from gtvision.config import load_settings
from gtvision.operators.lpr import PlateReader, ReaderConfig
settings = load_settings(threads=int(sys.argv[1]))
limit_threads(settings.threads)  # as `gtvision run` and `replay` do: OpenCV's pool (blank())
before = len(os.listdir("/proc/self/task"))
reader = PlateReader.load(settings.models_path, config=ReaderConfig.from_settings(settings))
reader.read(np.zeros((720, 1280, 3), np.uint8))
print(len(os.listdir("/proc/self/task")) - before)
"""


def test_formats_and_threads_come_from_the_settings() -> None:
    cfg = ReaderConfig.from_settings(load_settings(plate_formats="old=LLL9999", threads=3))
    assert cfg.formats == (PlateFormat("old", "LLL9999"),)
    assert cfg.threads == 3
    default = ReaderConfig.from_settings(load_settings())
    assert [f.pattern for f in default.formats] == ["LLL9999", "LLL9L99"]
    assert default.threads == 0


@pytest.mark.parametrize("bad", ["", " , ", "old="])
def test_a_bad_plate_format_setting_says_which_setting_and_value(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"GTV_PLATE_FORMATS=.*" + repr(bad)[1:-1]):
        ReaderConfig.from_settings(load_settings(plate_formats=bad))


def _extra_threads(threads: int) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", _THREADS, str(threads)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.strip().splitlines()[-1])


def test_one_thread_means_no_compute_thread_pools() -> None:
    """ONNX Runtime ignores OMP_NUM_THREADS: the sessions must be told (the flow did not)."""
    one, two = _extra_threads(1), _extra_threads(2)
    assert one <= 1, one  # at most a runtime helper thread, no intra-op pool
    assert two >= one + 2, (one, two)  # a pool of 2 in each of the two sessions
