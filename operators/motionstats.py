"""What the motion steps measure besides motion: cadence, tone change, noise, gate counts.

:class:`Cadence` measures the interval between consecutive analysed frames of one camera (the
median of the last few, so a reconnect or a dropped frame does not move it). The detector puts
it in every :class:`~gtvision.operators.motion.MotionResult` (``interval``), so keyed steps that
only see moving frames still know how far apart the camera's frames are: the incident step
widens its session gap for keyframe-only cameras (frames ~2 s apart).

:func:`remove_tone` takes a global exposure, gain or brightness change out of the difference
between frame and background, and :class:`NoiseLevel` tracks the noise σ of what remains, which
sets the adaptive threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

CADENCE_SAMPLES = 9
"""How many recent intervals the median is taken over."""


@dataclass(slots=True)
class Cadence:
    """Interval between a camera's analysed frames (part of the detector's recovery state)."""

    last_ts: datetime | None = None
    deltas: tuple[float, ...] = ()
    """The latest intervals in seconds, oldest first (at most :data:`CADENCE_SAMPLES`)."""

    def update(self, ts: datetime) -> float:
        """Count a frame taken at ``ts``, return :attr:`interval` (older frames are skipped)."""
        last = self.last_ts
        if last is None or ts > last:
            if last is not None:
                dt = (ts - last).total_seconds()
                self.deltas = (*self.deltas[1 - CADENCE_SAMPLES :], dt)
            self.last_ts = ts
        return self.interval

    @property
    def interval(self) -> float:
        """Median interval in seconds (0 until two frames were seen)."""
        return float(median(self.deltas)) if self.deltas else 0.0

    def copy(self) -> Cadence:
        """An independent copy (for snapshots)."""
        return Cadence(self.last_ts, self.deltas)


BINS = 16
"""Tone curve resolution: one bin per 16 levels of the background."""
_LEVELS = np.arange(256, dtype=np.float32)
TONE_RESET = 3.0
"""Non-uniform tone change (levels, see :func:`tone_curve`) beyond which the bg is reset."""
MARGIN = 1.0
"""Threshold margin per level of a pixel's tone correction away from the median correction."""


def tone_curve(
    delta: NDArray[np.float32], bg: NDArray[np.float32]
) -> tuple[NDArray[np.float32], float]:
    """The global tone change between background and frame: 256 levels → expected difference.

    A change of exposure, gain, gamma or white level moves every pixel by an amount that depends
    only on its level (and clips bright ones): estimated from a sparse sample (``delta`` and
    ``bg`` at the same points) as the mean difference per 16-level bin of the background,
    averaged again without the samples beyond 3 MADs (what moved), and interpolated between the
    bins that hold 8 samples or more.

    Also returns how non-uniform the change is where the picture is: the median over the
    samples of ``|bin mean − its median|`` (each sample counts for its bin). A moving object can
    take over a bin that few pixels share (its own trail in the background, the only dark patch
    of the picture) but not half the picture, so this stays near 0 when something moves and
    grows with a gain or gamma change.
    """
    d = delta.ravel()
    idx = np.minimum(bg.ravel().astype(np.intp) >> 4, BINS - 1)
    counts = np.bincount(idx, minlength=BINS).astype(np.float64)
    means = np.bincount(idx, d, BINS) / np.maximum(counts, 1)
    res = np.abs(d - means[idx])
    keep = res <= 3 * _median(res) + 1.0
    idx, d = idx[keep], d[keep]
    counts = np.bincount(idx, minlength=BINS).astype(np.float64)
    means = np.bincount(idx, d, BINS) / np.maximum(counts, 1)
    good = counts >= 8
    if not good.any():
        return np.zeros(256, np.float32), 0.0
    centres = np.arange(BINS, dtype=np.float32)[good] * 16 + 7.5
    curve = np.interp(_LEVELS, centres, means[good]).astype(np.float32)
    middle = _weighted_median(means, counts)
    return curve, _weighted_median(np.abs(means - middle), counts)


def _median(values: NDArray[np.floating[Any]]) -> float:
    """The (upper) median: ``np.partition``, without ``np.median``'s 60 µs of overhead."""
    mid = values.size // 2
    return float(np.partition(values, mid)[mid])


def _weighted_median(values: NDArray[np.float64], weights: NDArray[np.float64]) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def remove_tone(
    delta: NDArray[np.float32], bg: NDArray[np.float32]
) -> NDArray[np.float32] | float | None:
    """Take the :func:`tone_curve` (fitted on every 6th row and column) out of ``delta`` in place.

    Returns the margin to add to the threshold (the model is not exact where it corrects much:
    :data:`MARGIN` × the correction's distance from its median, per pixel; 0 when uniform), or
    ``None`` when the change is non-uniform beyond :data:`TONE_RESET`: ``delta`` is left as it is
    and the caller resets its background.
    """
    curve, spread = tone_curve(delta[::6, ::6], bg[::6, ::6])
    if spread > TONE_RESET:
        return None
    if float(curve.max() - curve.min()) < 1.0:  # a uniform change (or none): one offset
        delta -= float(curve.mean())
        return 0.0
    levels = bg.astype(np.uint8)
    delta -= cv2.LUT(levels, curve)
    margin = MARGIN * np.abs(curve - float(np.median(curve[levels[::6, ::6]])))
    return np.asarray(cv2.LUT(levels, margin.astype(np.float32)), np.float32)


@dataclass(slots=True)
class NoiseLevel:
    """Robust noise σ of a camera's frame differences (MAD × 1.4826), exponentially averaged.

    Rises fast (rate 0.5: a noisier night picture must not turn into motion) and falls slowly
    (0.05: about 4 s at 5 fps), so a moving object in part of the picture barely moves it.
    """

    sigma: float = -1.0
    """Current estimate in levels of the analysis picture (negative: none yet)."""

    def update(self, residual: NDArray[np.float32]) -> float:
        """Fold one frame's residual differences (a sparse sample) in; return σ."""
        r = residual.ravel()
        sample = 1.4826 * _median(np.abs(r - _median(r)))
        if self.sigma < 0:
            self.sigma = sample
        else:
            rate = 0.5 if sample > self.sigma else 0.05
            self.sigma += rate * (sample - self.sigma)
        return self.sigma


@dataclass
class GateStats:
    """Frames passed and skipped by a motion gate, per camera."""

    passed: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, int] = field(default_factory=dict)

    @property
    def total_skipped(self) -> int:
        """Skipped frames over all cameras."""
        return sum(self.skipped.values())

    @property
    def total(self) -> int:
        """Frames seen over all cameras."""
        return self.total_skipped + sum(self.passed.values())

    def skip_rate(self) -> float:
        """Fraction of frames skipped (0 when none seen)."""
        return self.total_skipped / self.total if self.total else 0.0
