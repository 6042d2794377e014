"""Licence-plate recognition: the ``read_plates`` Bytewax operator and its helper library.

The operator runs a :class:`~gtvision.operators.lpr.reader.PlateReader` in a ``flat_map`` on
the worker that decoded the frame (frames never cross workers) and emits
:class:`~gtvision.events.PlateRead` events. ``read_frames`` is the same reader one item per
frame read (:class:`FrameReads`, also for frames without a plate): what tracking plate boxes
into zones and lines needs. The helpers live beside it in this package:

* :mod:`.reader`: detector + OCR + plate rules for one frame;
* :mod:`.plates`: plate formats and look-alike corrections;
* :mod:`.equivalence`: old ↔ Mercosul identity of a plate (one canonical key, the form read);
* :mod:`.ctc`: format-constrained decoding of the recogniser's per-step probabilities;
* :mod:`.glyphs`: glyph shapes on the crop (the ``Q`` tail);
* :mod:`.ocrdist`: OCR-confusion-aware distance; :mod:`.vote`: per-character vote of a pass;
* :mod:`.evaluation`: accuracy on an OpenALPR-format benchmark (``gtvision lpr eval``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bytewax import operators as op
from bytewax.dataflow import Stream, operator

from gtvision.events import Frame, PlateRead
from gtvision.operators.lpr.reader import (
    DEFAULT_VARIANTS,
    CropVariant,
    PlateReader,
    PlateReading,
    ReaderConfig,
    blank,
    cut,
    encode_crop,
    load_image,
)

__all__ = [
    "DEFAULT_VARIANTS",
    "CropVariant",
    "FrameReads",
    "PlateReader",
    "PlateReading",
    "ReadRequest",
    "ReaderConfig",
    "blank",
    "cut",
    "encode_crop",
    "load_image",
    "read_frames",
    "read_plates",
    "to_events",
]


def to_events(
    frame: Frame, readings: Sequence[PlateReading], models: dict[str, str]
) -> list[PlateRead]:
    """Wrap readings of one frame as ``PlateRead`` events."""
    return [
        PlateRead(
            city_id=frame.city_id,
            camera_id=frame.camera_id,
            ts=frame.ts,
            frame_index=frame.index,
            text=r.text,
            confidence=min(1.0, r.confidence),
            detector_confidence=r.detector_confidence,
            box=r.box,
            candidates=r.candidates,
            crop_jpeg=r.crop_jpeg or None,
            models=dict(models),
            frame_size=(frame.width, frame.height),
        )
        for r in readings
    ]


@dataclass(frozen=True, slots=True, eq=False)
class ReadRequest:
    """A frame to read, and whether a detection miss may be retried at the larger input size.

    The motion-gated LPR flow sets ``retry`` only on frames that show motion themselves: the
    gate's tail frames after the motion stopped (an empty scene, a black picture) are read at
    the base size only, which halves their cost.
    """

    frame: Frame
    retry: bool = True


class _LazyReader:
    """Builds the reader on first use, on the worker that runs the step."""

    def __init__(
        self,
        models_dir: Path,
        device: str,
        backend: str,
        config: ReaderConfig | None,
        reader: PlateReader | None,
    ) -> None:
        self._args = (models_dir, device, backend, config)
        self._reader = reader

    def __call__(self, item: Frame | ReadRequest) -> list[PlateRead]:
        req = item if isinstance(item, ReadRequest) else ReadRequest(item)
        frame = req.frame
        if self._reader is None:
            models_dir, device, backend, config = self._args
            self._reader = PlateReader.load(
                models_dir, device=device, backend=backend, config=config
            )
        reader = self._reader
        events: list[PlateRead] = to_events(
            frame, reader.read(frame.picture(), retry=req.retry), reader.models
        )
        return events


@operator
def read_plates(
    step_id: str,
    up: Stream[Frame] | Stream[ReadRequest] | Stream[Frame | ReadRequest],
    models_dir: Path,
    *,
    device: str = "cpu",
    backend: str = "auto",
    config: ReaderConfig | None = None,
    reader: PlateReader | None = None,
) -> Stream[PlateRead]:
    """Read plates on each frame, on the worker that holds the frame (no exchange).

    Items are frames or :class:`ReadRequest` values (a frame and whether to retry a miss).

    The reader is built lazily on the worker from ``models_dir``; an already built ``reader``
    may be passed instead for single-process runs (tests, benchmarks, the demo).
    """
    frames = read_frames(
        "frames", up, models_dir, device=device, backend=backend, config=config, reader=reader
    )
    return op.flat_map("reads", frames, FrameReads.items)


@dataclass(frozen=True, slots=True)
class FrameReads:
    """The plates read in one frame (none is an answer too: the frame was read)."""

    city_id: int
    camera_id: int
    ts: datetime
    width: int
    height: int
    reads: tuple[PlateRead, ...] = ()

    def items(self) -> tuple[PlateRead, ...]:
        """The reads (``flat_map`` them to get :func:`read_plates`' stream)."""
        return self.reads


class _FrameReader:
    def __init__(self, reader: _LazyReader) -> None:
        self.reader = reader

    def __call__(self, item: Frame | ReadRequest) -> FrameReads:
        frame = item.frame if isinstance(item, ReadRequest) else item
        found = tuple(self.reader(item))
        return FrameReads(
            frame.city_id, frame.camera_id, frame.ts, frame.width, frame.height, found
        )


@operator
def read_frames(
    step_id: str,
    up: Stream[Frame] | Stream[ReadRequest] | Stream[Frame | ReadRequest],
    models_dir: Path,
    *,
    device: str = "cpu",
    backend: str = "auto",
    config: ReaderConfig | None = None,
    reader: PlateReader | None = None,
) -> Stream[FrameReads]:
    """:func:`read_plates`, one :class:`FrameReads` per frame read (also frames without plates).

    Frame order per camera is kept (a ``map`` on the frame's worker), so a tracker downstream
    sees every read frame, and tracks of plates that left age out in time.
    """
    lazy = _LazyReader(models_dir, device, backend, config, reader)
    return op.map("read", up, _FrameReader(lazy))
