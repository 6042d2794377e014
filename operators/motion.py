"""Frigate-class motion detection and the motion gate.

Per camera, on the luma plane:

1. downscale to ``height`` px (nearest sampling) and box-blur 5×5, averaging sensor noise away;
2. compare with a running-average background (``alpha``); the median difference is removed
   first, so a uniform brightness or exposure change does not count as motion;
3. threshold, dilate, connected components with a minimum area; masked polygons are ignored;
4. when more than ``recalibrate_fraction`` of the picture changes at once (lights switched,
   IR cut filter, camera moved) the background is reset to the current picture and no motion is
   reported for that frame.

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
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gtvision import metrics
from gtvision.events import Box, Frame
from gtvision.operators.motionstats import Cadence

Polygon = tuple[tuple[float, float], ...]


class MotionSettings(BaseModel):
    """Per-camera motion parameters (``cameras.motion_settings`` JSON, all optional).

    ``masks`` are polygons in normalised picture coordinates (``[[x, y], ...]``, 0..1) whose
    pixels never count as motion.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="False: no detection, the gate passes all")
    height: int = Field(default=180, ge=32, le=1080)
    threshold: int = Field(default=25, ge=1, le=255)
    alpha: float = Field(default=0.05, gt=0, le=1)
    dilate: int = Field(default=2, ge=0, le=10)
    min_area: int = Field(default=30, ge=1, description="pixels at the analysis size")
    recalibrate_fraction: float = Field(default=0.5, gt=0, le=1)
    tail_s: float = Field(default=1.0, ge=0)
    masks: tuple[Polygon, ...] = ()

    @field_validator("masks")
    @classmethod
    def _polygons(cls, value: tuple[Polygon, ...]) -> tuple[Polygon, ...]:
        for poly in value:
            if len(poly) < 3 or any(not (0 <= c <= 1) for pt in poly for c in pt):
                msg = f"a mask is >= 3 points with coordinates in 0..1, got {list(poly)!r}"
                raise ValueError(msg)
        return value


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


def _mask(settings: MotionSettings, width: int, height: int) -> NDArray[np.bool_] | None:
    if not settings.masks:
        return None
    canvas = np.zeros((height, width), np.uint8)
    polys = [
        np.array([[x * (width - 1), y * (height - 1)] for x, y in p], np.int32)
        for p in settings.masks
    ]
    cv2.fillPoly(canvas, polys, 1)
    masked: NDArray[np.bool_] = canvas.astype(bool)
    return masked


@dataclass(frozen=True, slots=True)
class DetectorState:
    """Recovery snapshot of one camera's detector (about 4 bytes per analysis pixel)."""

    settings: MotionSettings
    size: tuple[int, int]
    background: NDArray[np.float32] | None
    last_motion: datetime | None
    cadence: Cadence = field(default_factory=Cadence)


@dataclass
class MotionDetector:
    """Running-average background motion detector of one camera."""

    settings: MotionSettings = field(default_factory=MotionSettings)
    last_motion: datetime | None = None
    cadence: Cadence = field(default_factory=Cadence)
    _bg: NDArray[np.float32] | None = None
    _mask: NDArray[np.bool_] | None = None
    _size: tuple[int, int] = (0, 0)
    _kernel: NDArray[np.uint8] = field(default_factory=lambda: np.ones((3, 3), np.uint8))

    def _small(self, gray: NDArray[np.uint8]) -> NDArray[np.uint8]:
        h, w = gray.shape
        sh = min(self.settings.height, h)
        sw = max(1, round(w * sh / h))
        if (sw, sh) != self._size:
            self._size, self._bg = (sw, sh), None
            self._mask = _mask(self.settings, sw, sh)
        if (sw, sh) != (w, h):
            # nearest sampling + a 5×5 box blur: each pixel averages 25 samples spread over
            # ~20×20 source pixels (sensor noise averaged away) at a third of bilinear's cost
            gray = np.asarray(cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_NEAREST), np.uint8)
            return np.asarray(cv2.blur(gray, (5, 5)), np.uint8)
        return np.asarray(cv2.blur(gray, (3, 3)), np.uint8)

    def state(self) -> DetectorState:
        """A copy of the state (the background is updated in place by later frames)."""
        bg = None if self._bg is None else self._bg.copy()
        return DetectorState(self.settings, self._size, bg, self.last_motion, self.cadence.copy())

    @classmethod
    def from_state(cls, state: DetectorState) -> MotionDetector:
        """The detector that ``state`` was taken from."""
        # snapshots taken before a field existed lack it (dataclass __setstate__ zips fields)
        det = cls(state.settings, state.last_motion, getattr(state, "cadence", Cadence()).copy())
        det._size = state.size
        det._bg = None if state.background is None else state.background.copy()
        if state.size != (0, 0):
            det._mask = _mask(state.settings, *state.size)
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
        delta -= float(np.median(delta[::6, ::6]))
        changed = np.abs(delta) > s.threshold
        if self._mask is not None:
            changed &= ~self._mask
        fraction = float(np.count_nonzero(changed)) / changed.size
        if fraction > s.recalibrate_fraction:
            self._bg = small.astype(np.float32)
            return self._result(frame, recalibrated=True)
        cv2.accumulateWeighted(small, self._bg, s.alpha)
        if fraction == 0:
            return self._result(frame)
        binary: NDArray[np.uint8] = changed.view(np.uint8)
        if s.dilate:
            binary = np.asarray(cv2.dilate(binary, self._kernel, iterations=s.dilate), np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        fx, fy = frame.width / small.shape[1], frame.height / small.shape[0]
        boxes: list[Box] = []
        area = 0
        for x, y, w, h, a in stats[1:count].tolist():
            if a < s.min_area:
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
            det = self._by_camera[frame.camera_id] = MotionDetector(wanted, last, cadence)
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
