"""Frigate-class motion detection and the motion gate.

Per camera, on the luma plane:

1. downscale to ``height`` px (nearest sampling), open 5×5 (bright specks: rain, snow) and
   box-blur 5×5, averaging sensor noise away;
2. compare with a running-average background (``alpha``); the global tone change is removed
   first (the mean difference per 16-level bin of the background,
   :func:`~gtvision.operators.motionstats.remove_tone`), so an exposure, gain or brightness
   change does not count as motion; when it is too uneven over the picture the background is
   reset instead (auto-exposure stepped);
3. threshold at ``max(threshold_floor, noise_k × σ)``, σ the camera's noise measured on the
   differences (:class:`~gtvision.operators.motionstats.NoiseLevel`), or at a fixed
   ``threshold``; ignore masked polygons, dilate, connected components whose changed pixels
   number ``min_area`` or more (the dilation only groups them) and of which a third also
   changed since the previous frame (a bright object's trail in the average only fades);
4. when more than ``recalibrate_fraction`` of the picture changes at once (lights switched,
   IR cut filter, camera moved) the background is reset to the current picture and no motion is
   reported for that frame.

The floor and ``k`` come from ``bench/motion_sweep.py`` (``docs/dataflow.md``, "Motion
threshold").

Where it runs: a source that supports analyzers (``FileSource``, ``RtspSource``) runs a
:class:`MotionAnalyzer` inside its partition as it emits each frame (:func:`analyze_at_source`),
so the detector state (background, calibration, last motion for the gate's tail) is part of the
partition's Bytewax recovery snapshot, consistent with the frame position it resumes from. The
``motion`` step then only wraps the attached result; for other sources it detects itself
(state not recovered). ``motion`` and ``motion_gate`` are non-exchanging steps, so
full-resolution frames never cross workers (see ``docs/dataflow.md``). Only
:class:`MotionResult` (a few hundred bytes) goes to keyed, exchanging steps such as
:func:`gtvision.operators.incidents.motion_incidents`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import bytewax.operators as op
import cv2
import numpy as np
from bytewax.dataflow import Stream, operator
from numpy.typing import NDArray

from gtvision import metrics
from gtvision.events import Box, Frame

# re-exported: the settings were defined here before (imported from here across the project)
from gtvision.operators.motionsettings import MotionSettings as MotionSettings
from gtvision.operators.motionsettings import mask_of
from gtvision.operators.motionstats import Cadence, NoiseLevel, remove_tone
from gtvision.operators.motionstats import GateStats as GateStats

OPEN_KERNEL = np.ones((5, 5), np.uint8)
"""Bright details narrower than this (analysis samples) are opened away: rain, snow."""


@dataclass(frozen=True, slots=True)
class MotionResult:
    """Motion found in one frame: boxes in full-resolution pixels, changed fraction, score."""

    city_id: int
    camera_id: int
    index: int
    ts: datetime
    boxes: tuple[Box, ...] = ()
    area: float = 0.0
    score: float = 0.0
    recalibrated: bool = False
    last_motion: datetime | None = None
    """Time of the camera's latest frame with motion up to this one (the gate's tail)."""
    width: int = 0
    height: int = 0
    """Size of the analysed frame in pixels (what the boxes are relative to)."""
    interval: float = 0.0
    """Typical seconds between the camera's analysed frames (0: not known yet), see
    :class:`~gtvision.operators.motionstats.Cadence`."""

    @property
    def motion(self) -> bool:
        """Whether any moving region passed the minimum area."""
        return bool(self.boxes)

    def union(self) -> Box | None:
        """Smallest box holding every motion box."""
        if not self.boxes:
            return None
        out = self.boxes[0]
        for box in self.boxes[1:]:
            out = out.union(box)
        return out


@dataclass(frozen=True, slots=True, eq=False)
class MotionFrame:
    """A frame with its motion result (holds the frame: never leaves the decoding worker)."""

    frame: Frame
    result: MotionResult


@dataclass(frozen=True, slots=True)
class DetectorState:
    """Recovery snapshot of one camera's detector (about 6 bytes per analysis pixel)."""

    settings: MotionSettings
    size: tuple[int, int]
    background: NDArray[np.float32] | None
    last_motion: datetime | None
    cadence: Cadence = field(default_factory=Cadence)
    noise: NoiseLevel = field(default_factory=NoiseLevel)
    last_delta: NDArray[np.int16] | None = None


@dataclass
class MotionDetector:
    """Running-average background motion detector of one camera."""

    settings: MotionSettings = field(default_factory=MotionSettings)
    last_motion: datetime | None = None
    cadence: Cadence = field(default_factory=Cadence)
    noise: NoiseLevel = field(default_factory=NoiseLevel)
    _bg: NDArray[np.float32] | None = None
    _mask: NDArray[np.bool_] | None = None
    _size: tuple[int, int] = (0, 0)
    _kernel: NDArray[np.uint8] = field(default_factory=lambda: np.ones((3, 3), np.uint8))
    _last: NDArray[np.int16] | None = None
    """The previous frame's difference, rounded (so that a snapshot holds it exactly)."""

    def _small(self, gray: NDArray[np.uint8]) -> NDArray[np.uint8]:
        h, w = gray.shape
        sh = min(self.settings.height, h)
        sw = max(1, round(w * sh / h))
        if (sw, sh) != self._size:
            self._size, self._bg = (sw, sh), None
            self._mask = mask_of(self.settings, sw, sh)
        if (sw, sh) != (w, h):
            # nearest sampling, a 5×5 opening (bright specks and streaks under 5 samples wide
            # go: rain, snow; static thin lines go from the background too) and a 5×5 box blur:
            # each pixel averages 25 samples spread over ~20×20 source pixels (sensor noise
            # averaged away) at a third of bilinear's cost
            gray = np.asarray(cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_NEAREST), np.uint8)
            gray = np.asarray(cv2.morphologyEx(gray, cv2.MORPH_OPEN, OPEN_KERNEL), np.uint8)
            return np.asarray(cv2.blur(gray, (5, 5)), np.uint8)
        return np.asarray(cv2.blur(gray, (3, 3)), np.uint8)

    def threshold(self, sigma: float) -> float:
        """Threshold on the analysis picture's difference for noise ``sigma``."""
        s = self.settings
        return (
            float(s.threshold)
            if s.threshold is not None
            else max(s.threshold_floor, s.noise_k * sigma)
        )

    def state(self) -> DetectorState:
        """A copy of the state (the background is updated in place by later frames)."""
        bg = None if self._bg is None else self._bg.copy()
        noise, last = NoiseLevel(self.noise.sigma), self._last
        return DetectorState(
            self.settings,
            self._size,
            bg,
            self.last_motion,
            self.cadence.copy(),
            noise,
            None if last is None else last.copy(),
        )

    @classmethod
    def from_state(cls, state: DetectorState) -> MotionDetector:
        """The detector that ``state`` was taken from."""
        # snapshots taken before a field existed lack it (dataclass __setstate__ zips fields)
        det = cls(state.settings, state.last_motion, getattr(state, "cadence", Cadence()).copy())
        det.noise = NoiseLevel(getattr(state, "noise", NoiseLevel()).sigma)
        last = getattr(state, "last_delta", None)
        det._last = None if last is None else last.copy()
        det._size = state.size
        det._bg = None if state.background is None else state.background.copy()
        if state.size != (0, 0):
            det._mask = mask_of(state.settings, *state.size)
        return det

    def _result(
        self,
        frame: Frame,
        *,
        boxes: tuple[Box, ...] = (),
        area: float = 0.0,
        score: float = 0.0,
        recalibrated: bool = False,
    ) -> MotionResult:
        return MotionResult(
            frame.city_id,
            frame.camera_id,
            frame.index,
            frame.ts,
            boxes,
            area,
            score,
            recalibrated,
            self.last_motion,
            frame.width,
            frame.height,
            self.cadence.interval,
        )

    def detect(self, frame: Frame) -> MotionResult:
        """Update the background with ``frame`` and report its motion."""
        s = self.settings
        self.cadence.update(frame.ts)
        if not s.enabled:
            return self._result(frame)
        small = self._small(frame.gray)
        if self._bg is None:
            self._bg = small.astype(np.float32)
            return self._result(frame, recalibrated=True)
        delta = small.astype(np.float32)
        delta -= self._bg
        margin = remove_tone(delta, self._bg)
        if margin is None:  # exposure/gain changed: the old background is not comparable
            self._bg = small.astype(np.float32)
            return self._result(frame, recalibrated=True)
        sample = delta[::6, ::6]
        sigma = self.noise.sigma if self.noise.sigma >= 0 else self.noise.update(sample)
        changed = np.abs(delta) > margin + self.threshold(sigma)
        if self._mask is not None:
            changed &= ~self._mask
        n_changed = np.count_nonzero(changed)
        fraction = n_changed / changed.size
        if fraction > s.recalibrate_fraction:
            self._bg = small.astype(np.float32)
            return self._result(frame, recalibrated=True)
        self.noise.update(sample)
        last, self._last = self._last, np.rint(delta).astype(np.int16)
        cv2.accumulateWeighted(small, self._bg, s.alpha)
        # a region must also have changed since the previous frame: the trail a bright object
        # left in the running average (a ghost) only fades, 5 % a frame
        moved = (
            changed if last is None else changed & (np.abs(delta - last) > self.threshold(sigma))
        )
        if n_changed < s.min_area or np.count_nonzero(moved) < s.min_area // 3:
            return self._result(frame)  # no region can pass (most frames: skip the labelling)
        binary: NDArray[np.uint8] = changed.view(np.uint8)
        if s.dilate:
            binary = np.asarray(cv2.dilate(binary, self._kernel, iterations=s.dilate), np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        # the area of a region is its changed pixels: dilation only groups them (a speck of
        # rain or snow dilated would pass min_area)
        changed_of = np.bincount(labels[changed], minlength=count).tolist()
        moved_of = np.bincount(labels[moved], minlength=count).tolist()
        fx, fy = frame.width / small.shape[1], frame.height / small.shape[0]
        boxes: list[Box] = []
        area = 0
        for label, (x, y, w, h, a) in enumerate(stats[1:count].tolist(), 1):
            if changed_of[label] < s.min_area or moved_of[label] < s.min_area // 3:
                continue
            area += a
            boxes.append(Box(x1=x * fx, y1=y * fy, x2=(x + w) * fx, y2=(y + h) * fy))
        if not boxes:
            return self._result(frame)
        self.last_motion = frame.ts
        score = min(1.0, fraction * 10.0)
        return self._result(frame, boxes=tuple(boxes), area=area / binary.size, score=score)


SettingsFor = Callable[[int], MotionSettings]


def _default_settings(camera_id: int) -> MotionSettings:
    return MotionSettings()


class MotionAnalyzer:
    """Detectors of the cameras of one source partition, keyed by camera id.

    A source's frame analyzer (:class:`gtvision.sources.decode.FrameAnalyzer`): the partition
    calls it on each frame it emits and puts :meth:`snapshot` in its recovery snapshot. A
    settings change starts a new detector (background re-learnt, last motion kept).
    """

    def __init__(self, settings_for: SettingsFor) -> None:
        self._settings_for = settings_for
        self._by_camera: dict[int, MotionDetector] = {}

    def detect(self, frame: Frame) -> MotionResult:
        """Motion of ``frame`` (updating its camera's detector)."""
        wanted = self._settings_for(frame.camera_id)
        det = self._by_camera.get(frame.camera_id)
        if det is None or det.settings != wanted:
            last = det.last_motion if det is not None else None
            cadence = det.cadence if det is not None else Cadence()
            noise = det.noise if det is not None else NoiseLevel()
            det = self._by_camera[frame.camera_id] = MotionDetector(wanted, last, cadence, noise)
        metrics.FRAMES_ANALYSED.labels(str(frame.camera_id)).inc()
        return det.detect(frame)

    def __call__(self, frame: Frame) -> Frame:
        """``frame`` with its :class:`MotionResult` attached as ``analysis``."""
        return dataclasses.replace(frame, analysis=self.detect(frame))

    def snapshot(self) -> dict[int, DetectorState]:
        """State of every camera's detector."""
        return {cam: det.state() for cam, det in self._by_camera.items()}

    def restore(self, state: object) -> None:
        """Resume from a :meth:`snapshot` (anything else is ignored: cold start)."""
        if not isinstance(state, dict):
            return
        for cam, det in state.items():
            if isinstance(cam, int) and isinstance(det, DetectorState):
                self._by_camera[cam] = MotionDetector.from_state(det)

    def forget(self, camera_id: int) -> None:
        """Drop a removed camera's detector."""
        self._by_camera.pop(camera_id, None)


def analyze_at_source(source: object, settings_for: SettingsFor) -> bool:
    """Run motion detection inside ``source``'s partitions, if it takes analyzers.

    Then the detector state is part of the source's recovery snapshots. Returns whether it did.
    """
    attach = getattr(source, "attach_analyzer", None)
    if attach is None:
        return False
    attach(partial(MotionAnalyzer, settings_for))
    return True


class _Detectors:
    """The ``motion`` step: the result the source attached, else a detector of this process.

    Each camera is read by exactly one worker (its source partition), and the steps using this
    registry do not exchange, so one detector is only ever touched by one worker thread. This
    fallback state is not part of recovery snapshots (see :func:`analyze_at_source`).
    """

    def __init__(self, settings_for: SettingsFor) -> None:
        self._fallback = MotionAnalyzer(settings_for)

    def __call__(self, frame: Frame) -> MotionFrame:
        found = frame.analysis
        if isinstance(found, MotionResult):
            return MotionFrame(frame, found)
        return MotionFrame(frame, self._fallback.detect(frame))


@operator
def motion(
    step_id: str, up: Stream[Frame], settings_for: SettingsFor = _default_settings
) -> Stream[MotionFrame]:
    """Run the motion detector on every frame (non-exchanging: stays on the source worker)."""
    return op.map("detect", up, _Detectors(settings_for))


class _Gate:
    def __init__(self, settings_for: SettingsFor, stats: GateStats) -> None:
        self._settings_for = settings_for
        self.stats = stats

    def __call__(self, item: MotionFrame) -> bool:
        cam, ts, last = item.result.camera_id, item.result.ts, item.result.last_motion
        settings = self._settings_for(cam)
        tail = timedelta(seconds=settings.tail_s)
        keep = not settings.enabled or (last is not None and last <= ts <= last + tail)
        counter = self.stats.passed if keep else self.stats.skipped
        counter[cam] = counter.get(cam, 0) + 1
        metrics.GATE.labels(str(cam), "passed" if keep else "skipped").inc()
        return keep


@operator
def motion_gate(
    step_id: str,
    up: Stream[MotionFrame],
    settings_for: SettingsFor = _default_settings,
    stats: GateStats | None = None,
) -> Stream[MotionFrame]:
    """Pass frames with motion and the ``tail_s`` seconds after it; count the skipped ones.

    Cameras whose motion detection is disabled (``enabled=False``) pass every frame.
    """
    gate = _Gate(settings_for, stats if stats is not None else GateStats())
    return op.filter("gate", up, gate)
