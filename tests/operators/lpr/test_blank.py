"""Blank frames (black, covered lens, one flat colour) are not given to the detector."""

from __future__ import annotations

import numpy as np
import pytest

from gtvision.operators.lpr import blank


@pytest.mark.parametrize("colour", [(0, 0, 0), (128, 128, 128), (255, 0, 0), (20, 200, 90)])
def test_flat_frames_are_blank(colour: tuple[int, int, int]) -> None:
    frame = np.empty((720, 1280, 3), np.uint8)
    frame[:] = colour
    assert blank(frame, 2.0)


def test_sensor_noise_decides_against_the_threshold() -> None:
    rng = np.random.default_rng(0)
    base = np.full((360, 640, 3), 60.0)
    quiet = np.clip(base + rng.normal(0, 1.0, base.shape), 0, 255).astype(np.uint8)
    noisy = np.clip(base + rng.normal(0, 3.0, base.shape), 0, 255).astype(np.uint8)
    assert blank(quiet, 2.0)
    assert not blank(noisy, 2.0)


def test_one_varying_channel_is_enough_and_empty_is_blank() -> None:
    ramp = np.zeros((100, 256, 3), np.uint8)
    ramp[:, :, 2] = np.arange(256, dtype=np.uint8)  # red varies, blue and green flat
    assert not blank(ramp, 2.0)
    assert blank(np.zeros((0, 0, 3), np.uint8), 2.0)
