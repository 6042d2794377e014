"""Plate reading: detector + OCR + plate rules for one frame (:class:`PlateReader`).

:class:`PlateReader` is built once per worker (lazily, on the first frame) and reads one BGR
frame into :class:`PlateReading` values:

1. the YOLO detector finds plate boxes on the full-resolution frame (a second, larger input size
   is tried when the first finds nothing);
2. each box is cut into a few crop variants (the character band without the city line on top,
   stretched horizontally so the recogniser gives every character enough CTC steps, one with
   local contrast equalised) and each variant is recognised;
3. the per-step probabilities are aligned to every plate format (:mod:`gtvision.operators.lpr.ctc`),
   weighted by the plate's style measured from its pixels (:mod:`.style`: a blue band on top
   means Mercosul, a grey plate in a colour picture means old), and the variants
   vote (:func:`gtvision.operators.lpr.plates.vote`);
4. an ``O`` at a letter position becomes ``Q`` when the glyph's counter shows a tail
   (:mod:`gtvision.operators.lpr.glyphs`): the recogniser misses some plate ``Q`` tails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from gtvision.config import ConfigError, Settings
from gtvision.events import Box, PlateCandidate
from gtvision.models.ocr import OCR_NAME, PlateOCR
from gtvision.models.ortdet import OrtPlateDetector
from gtvision.models.store import onnx_path
from gtvision.models.yolo import PlateBox, PlateDetector
from gtvision.operators.lpr.ctc import Decoded, Projection, decode
from gtvision.operators.lpr.glyphs import PlateGlyphs
from gtvision.operators.lpr.plates import BRAZIL, PlateFormat, parse_formats, vote
from gtvision.operators.lpr.style import (
    MERCOSUL_IF_OLD,
    OLD_IF_MERCOSUL,
    StyleKind,
    format_weight,
    plate_style,
)
from gtvision.operators.lpr.tworow import best_rows, decode_rows, row_crops, two_rows

Image = NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class CropVariant:
    """How one OCR input is cut from a plate box (fractions of the box size)."""

    top: float = 0.25
    pad_x: float = 0.0
    stretch: float = 1.3
    equalise: bool = False


#: chosen by 2-fold cross-checking on the dev photos: a horizontal stretch of 1.15–1.3 and a
#: top cut of 0.2–0.3 form a plateau (every combination reads 55/57); the variants sit inside it
DEFAULT_VARIANTS: tuple[CropVariant, ...] = (
    CropVariant(top=0.2, stretch=1.3),
    CropVariant(top=0.3, stretch=1.15),
    CropVariant(top=0.3, stretch=1.3, equalise=True),
)


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    """Tunables of :class:`PlateReader`."""

    detector_conf: float = 0.25
    #: detector input (longer side), Ultralytics' 640. 416 px reads the photos as well under the
    #: protocol at 0.6x the detector's CPU, but reads a plate cut by the frame's edge with
    #: confident wrong letters (the replay bar lost PJT2905; docs/lpr.md, "Speed")
    imgsz: int = 640
    #: input sizes tried in turn while nothing is found (far plates: 960). With a 416-px input
    #: add 640: 416 and 960 both missed two rendered motorcycle plates that 640 finds
    retry_sizes: tuple[int, ...] = (960,)
    min_confidence: float = 0.3
    variants: tuple[CropVariant, ...] = DEFAULT_VARIANTS
    formats: tuple[PlateFormat, ...] = BRAZIL
    crop_quality: int = 85
    max_plates: int = 8
    #: grey-level standard deviation under which a frame is blank (black, covered lens): no
    #: plate can be read there, so the detector is not run
    min_contrast: float = 2.0
    #: weight of Mercosul candidates when the plate's style is old, and of old candidates when
    #: it has a blue band (docs/lpr.md, cross-validated)
    mercosul_if_old: float = MERCOSUL_IF_OLD
    old_if_mercosul: float = OLD_IF_MERCOSUL
    #: read ``O`` as ``Q`` where the glyph's counter shows a tail (docs/lpr.md: kept, it won
    #: under the evaluation protocol)
    q_tail: bool = True
    #: stop after the first crop variant when its best read is at least this confident
    #: (above 1: always read every variant)
    confident: float = 0.9
    #: a squarish box is not also read as two rows when its one-row read (before the style
    #: weights) is at least this confident (above 1: always read both ways)
    one_row_sure: float = 0.9
    #: intra-op threads of the detector and recogniser sessions (0: the runtime's default for
    #: the detector, one thread for the recogniser: its crops are too small to share, a second
    #: thread cost 9 % more CPU per crop, docs/lpr.md "Speed")
    threads: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ReaderConfig:
        """Defaults plus the plate formats (``GTV_PLATE_FORMATS``) and threads (``GTV_THREADS``).

        The threads go to both ONNX Runtime sessions, which (unlike Torch) do not read
        ``OMP_NUM_THREADS``: without this a flow process with ``GTV_THREADS=1`` still ran the
        detector and the recogniser on every core.
        """
        try:
            formats = parse_formats(settings.plate_formats)
        except ValueError as err:
            msg = f"invalid configuration: GTV_PLATE_FORMATS={settings.plate_formats!r}: {err}"
            raise ConfigError(msg) from None
        return cls(formats=formats, threads=settings.threads)


@dataclass(frozen=True, slots=True)
class PlateReading:
    """One plate read in one frame."""

    box: Box
    text: str
    confidence: float
    detector_confidence: float
    candidates: tuple[PlateCandidate, ...]
    crop_jpeg: bytes = field(repr=False, default=b"")

    @property
    def rank(self) -> tuple[float, float]:
        """Ordering key: text confidence, then detector confidence."""
        return (self.confidence, self.detector_confidence)


def load_image(path: str | Path) -> Image | None:
    """A BGR picture from a file, ``None`` when it cannot be decoded."""
    image = cv2.imread(str(path))
    return None if image is None else np.asarray(image, dtype=np.uint8)


def cut(frame: Image, box: Box, variant: CropVariant) -> Image:
    """The OCR input of ``variant`` for ``box`` (never empty for a non-degenerate box)."""
    h, w = frame.shape[:2]
    bw, bh = box.x2 - box.x1, box.y2 - box.y1
    x1 = max(0, int(box.x1 - variant.pad_x * bw))
    x2 = min(w, math.ceil(box.x2 + variant.pad_x * bw))
    y1 = max(0, int(box.y1 + variant.top * bh))
    y2 = min(h, math.ceil(box.y2))
    crop = frame[y1:y2, x1:x2]
    if crop.size == 0:
        return np.zeros((8, 24, 3), dtype=np.uint8)
    if variant.stretch != 1.0:
        size = (max(1, int(crop.shape[1] * variant.stretch)), crop.shape[0])
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    if variant.equalise:
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        gray = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(gray)
        crop = np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    return np.ascontiguousarray(crop)


def blank(frame: Image, min_contrast: float) -> bool:
    """``True`` when every channel's levels vary (standard deviation) less than ``min_contrast``.

    One pass of OpenCV over the frame (0.4 ms on a 1280×1280 photo; numpy's ``std`` of every
    other pixel took 3–5 ms). Per channel, so a uniformly coloured frame is blank too.
    """
    if frame.size == 0:
        return True
    _, std = cv2.meanStdDev(frame)
    return float(np.max(std)) < min_contrast


class PlateReader:
    """Detector + OCR + plate rules. Expensive to build: one per worker."""

    def __init__(
        self,
        detector: PlateDetector | OrtPlateDetector,
        ocr: PlateOCR,
        config: ReaderConfig | None = None,
    ) -> None:
        self.detector = detector
        self.ocr = ocr
        self.config = config or ReaderConfig()
        self._projection = Projection(ocr.charset)
        self.models = {"detector": detector.name, "ocr": OCR_NAME}

    @classmethod
    def load(
        cls,
        models_dir: Path,
        *,
        device: str = "cpu",
        backend: str = "auto",
        config: ReaderConfig | None = None,
    ) -> PlateReader:
        """Build from the model cache (raises ``ModelMissingError`` if not pulled).

        ``backend``: ``ort`` (ONNX Runtime, no PyTorch), ``pt`` or ``onnx`` (through
        Ultralytics), or ``auto``: ``ort`` when the exported ONNX model is in the cache on CPU.
        """
        cfg = config or ReaderConfig()
        if backend == "auto":
            backend = "ort" if device == "cpu" and onnx_path(models_dir).is_file() else "pt"
        det: PlateDetector | OrtPlateDetector
        if backend == "ort":
            det = OrtPlateDetector(
                models_dir, conf=cfg.detector_conf, imgsz=cfg.imgsz, threads=cfg.threads
            )
        else:
            det = PlateDetector(
                models_dir, backend=backend, device=device, conf=cfg.detector_conf, imgsz=cfg.imgsz
            )
        return cls(det, PlateOCR(device=device, threads=cfg.threads or 1), cfg)

    def detect(self, frame: Image, *, retry: bool = True) -> list[PlateBox]:
        """Plate boxes, retrying at other input sizes (if ``retry``) while none is found."""
        boxes: list[PlateBox] = self.detector.detect(frame)
        for size in self.config.retry_sizes if retry else ():
            if boxes:
                break
            if size != self.config.imgsz:
                boxes = self.detector.detect(frame, imgsz=size)
        return boxes[: self.config.max_plates]

    def recognise(self, frame: Image, box: Box) -> list[PlateCandidate]:
        """Voted top-3 candidates for one plate box (empty when nothing fits a format)."""
        style = plate_style(frame, box).kind
        voted, one_row_raw = self._one_row(frame, box, style)
        if not two_rows(box) or one_row_raw >= self.config.one_row_sure:
            return voted  # a one-row read this sure is never beaten by the rows (docs/lpr.md)
        stacked, stacked_raw = self._two_rows(frame, box, style)
        # one row or two: decided on the reads before the style weights, which are evidence
        # for the format (old or Mercosul), not for the layout -- a Mercosul car plate whose
        # band was not seen must not lose to a two-row misreading of its single row
        if stacked and (not voted or stacked_raw > one_row_raw):
            return stacked  # a two-row (motorcycle) plate read better by rows
        return voted

    def _one_row(
        self, frame: Image, box: Box, style: StyleKind
    ) -> tuple[list[PlateCandidate], float]:
        """Voted candidates of the box read as one row, and the best read before style weights."""
        per_crop: list[list[PlateCandidate]] = []
        aligned: dict[str, Decoded] = {}  # first alignment per format: where each character is
        raw = 0.0
        for variant in self.config.variants:
            if per_crop and per_crop[0] and per_crop[0][0].confidence >= self.config.confident:
                break  # the first crop's read is confident: the other variants add nothing
            (probs,) = self.ocr.probs([cut(frame, box, variant)])
            pooled: list[PlateCandidate] = []
            for fmt in self.config.formats:
                got = decode(probs, self._projection, fmt)
                if got is None:
                    continue
                aligned.setdefault(fmt.name, got)
                raw = max([raw, *(c.confidence for c in got.candidates)])
                w = self._weight(fmt.name, style)
                pooled += [
                    c.model_copy(update={"confidence": c.confidence * w}) for c in got.candidates
                ]
            pooled.sort(key=lambda c: -c.confidence)
            per_crop.append(pooled[:3])
        voted: list[PlateCandidate] = vote(per_crop)
        if self.config.q_tail:
            voted = self._q_tails(frame, box, voted, aligned)
        return voted, raw

    def _weight(self, fmt_name: str, style: StyleKind) -> float:
        return format_weight(
            fmt_name,
            style,
            mercosul_if_old=self.config.mercosul_if_old,
            old_if_mercosul=self.config.old_if_mercosul,
        )

    def _two_rows(
        self, frame: Image, box: Box, style: StyleKind
    ) -> tuple[list[PlateCandidate], float]:
        """Style-weighted candidates of a two-row (motorcycle) plate (:mod:`.tworow`).

        Also the confidence of the best one before the style weights.
        """
        rows = row_crops(frame, box)
        if rows is None:
            return [], 0.0
        top, bottom = self.ocr.probs(list(rows))
        decoded = decode_rows(top, bottom, self._projection, self.config.formats)
        raw = best_rows(decoded, {})
        weights = {f.name: self._weight(f.name, style) for f in self.config.formats}
        return best_rows(decoded, weights), (raw[0].confidence if raw else 0.0)

    def _q_tails(
        self,
        frame: Image,
        box: Box,
        cands: list[PlateCandidate],
        aligned: dict[str, Decoded],
    ) -> list[PlateCandidate]:
        """Read ``O`` as ``Q`` at letter positions where the glyph's counter shows a tail."""
        if not cands:
            return cands
        text = cands[0].text
        fmt = next(
            (f for f in self.config.formats if f.fits(text) and f.name in aligned),
            None,
        )
        if fmt is None:
            return cands
        slots = fmt.slots
        positions = [i for i, ch in enumerate(text) if ch == "O" and "Q" in slots[i]]
        if not positions:
            return cands
        glyphs = PlateGlyphs(frame, box, chars=len(fmt))
        spans = aligned[fmt.name]
        tails = set()
        for i in positions:
            t0, t1 = spans.segments[i]
            counter = glyphs.counter((t0 + t1 + 1) / 2 / spans.steps)
            if counter is not None and counter.q_tail:
                tails.add(i)
        if not tails:
            return cands
        out: list[PlateCandidate] = []
        for cand in cands:
            fixed = "".join(
                "Q" if i in tails and ch == "O" else ch for i, ch in enumerate(cand.text)
            )
            if all(c.text != fixed for c in out):
                out.append(cand.model_copy(update={"text": fixed}))
        return out

    def read(self, frame: Image, *, retry: bool = True) -> list[PlateReading]:
        """Every plate read in one BGR frame, best first (pure: no state kept)."""
        if blank(frame, self.config.min_contrast):
            return []
        return self.read_boxes(frame, self.detect(frame, retry=retry))

    def read_boxes(self, frame: Image, boxes: Sequence[PlateBox]) -> list[PlateReading]:
        """Readings of already detected boxes, best first."""
        out: list[PlateReading] = []
        for hit in boxes:
            cands = self.recognise(frame, hit.box)
            if not cands or cands[0].confidence < self.config.min_confidence:
                continue
            out.append(
                PlateReading(
                    box=hit.box,
                    text=cands[0].text,
                    confidence=cands[0].confidence,
                    detector_confidence=min(1.0, hit.confidence),
                    candidates=tuple(cands),
                    crop_jpeg=encode_crop(frame, hit.box, self.config.crop_quality),
                )
            )
        out.sort(key=lambda r: r.rank, reverse=True)
        return out


def encode_crop(frame: Image, box: Box, quality: int = 85, pad: float = 0.1) -> bytes:
    """JPEG of the plate box with a small margin."""
    bw, bh = box.x2 - box.x1, box.y2 - box.y1
    x1, y1 = max(0, int(box.x1 - pad * bw)), max(0, int(box.y1 - pad * bh))
    x2 = min(frame.shape[1], int(box.x2 + pad * bw) + 1)
    y2 = min(frame.shape[0], int(box.y2 + pad * bh) + 1)
    crop = frame[y1:y2, x1:x2]
    if crop.size == 0:
        return b""
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return bytes(buf.tobytes()) if ok else b""
