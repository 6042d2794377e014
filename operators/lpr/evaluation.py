"""Accuracy of :class:`~gtvision.operators.lpr.PlateReader` on an OpenALPR-format benchmark.

A benchmark directory holds images and ``NAME.txt`` ground-truth files, one line per plate:
``file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE``. The reader's best plate per image is compared with
the ground truth (exact match), its boxes with the ground-truth box (recall at IoU ≥ 0.5), and
wrong characters are tallied as ``truth→read`` confusions. Images are split into two folds by
sorted position (even/odd) so a tuned threshold can be checked on the half it was not tuned on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from gtvision.events import Box
from gtvision.operators.lpr.reader import PlateReader, load_image


@dataclass(frozen=True, slots=True)
class Truth:
    """One ground-truth plate."""

    image: Path
    box: Box
    plate: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The reader's result on one image."""

    truth: Truth
    read: str
    detected: bool
    ms: float
    centred: bool = False

    @property
    def exact(self) -> bool:
        """Best plate equals the ground truth."""
        return self.read == self.truth.plate


@dataclass
class Report:
    """Aggregate figures, overall and per fold."""

    outcomes: list[Outcome] = field(default_factory=list)

    def _subset(self, fold: int | None) -> list[Outcome]:
        if fold is None:
            return self.outcomes
        return [o for i, o in enumerate(self.outcomes) if i % 2 == fold]

    def accuracy(self, fold: int | None = None) -> float:
        """Exact-match rate."""
        rows = self._subset(fold)
        return sum(o.exact for o in rows) / len(rows) if rows else 0.0

    def recall(self, fold: int | None = None) -> float:
        """Share of ground-truth boxes hit by a detection at IoU ≥ 0.5."""
        rows = self._subset(fold)
        return sum(o.detected for o in rows) / len(rows) if rows else 0.0

    def centre_hits(self) -> float:
        """Share of ground-truth boxes whose centre lies inside a detection (any box size)."""
        rows = self.outcomes
        return sum(o.centred for o in rows) / len(rows) if rows else 0.0

    def ms_per_image(self) -> float:
        """Mean reading time per image."""
        return sum(o.ms for o in self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    def confusions(self, top: int = 10) -> list[tuple[str, int]]:
        """Most common ``truth→read`` character errors (``∅`` for a missing character)."""
        counts: Counter[str] = Counter()
        for o in self.outcomes:
            if o.exact:
                continue
            for edit in Levenshtein.editops(o.truth.plate, o.read):
                kind, i, j = edit.tag, edit.src_pos, edit.dest_pos
                src = o.truth.plate[i] if kind != "insert" else "∅"
                dst = o.read[j] if kind != "delete" else "∅"
                counts[f"{src}→{dst}"] += 1
        return counts.most_common(top)

    def lines(self) -> list[str]:
        """Human-readable summary."""
        n = len(self.outcomes)
        out = [
            f"images: {n}",
            f"exact: {self.accuracy():.1%} ({sum(o.exact for o in self.outcomes)}/{n})"
            f"  fold0 {self.accuracy(0):.1%}  fold1 {self.accuracy(1):.1%}",
            f"detection recall @IoU>=0.5: {self.recall():.1%}"
            f"  fold0 {self.recall(0):.1%}  fold1 {self.recall(1):.1%}"
            f"  (ground-truth centre inside a detection: {self.centre_hits():.1%})",
            f"ms/image: {self.ms_per_image():.0f}",
            "confusions: " + (", ".join(f"{k} ×{v}" for k, v in self.confusions()) or "none"),
        ]
        out += [
            f"  wrong: {o.truth.image.name}: {o.truth.plate} read {o.read or '∅'}"
            for o in self.outcomes
            if not o.exact
        ]
        return out


def load_truths(directory: Path) -> list[Truth]:
    """Parse every ``*.txt`` ground-truth file of a benchmark directory, sorted by name."""
    truths: list[Truth] = []
    for txt in sorted(directory.glob("*.txt")):
        for line in txt.read_text(encoding="utf-8").splitlines():
            parts = line.strip().split("\t")
            if len(parts) < 6:
                continue
            name, x, y, w, h, plate = parts[:6]
            try:
                x0, y0, bw, bh = (float(v) for v in (x, y, w, h))
            except ValueError:
                msg = f"{txt}: expected numbers in 'file x y w h PLATE', got {line!r}"
                raise ValueError(msg) from None
            box = Box(x1=x0, y1=y0, x2=x0 + bw, y2=y0 + bh)
            truths.append(Truth(directory / name, box, plate.strip().upper()))
    return truths


def evaluate(
    reader: PlateReader,
    truths: Iterable[Truth],
    progress: Callable[[Outcome], None] | None = None,
) -> Report:
    """Read every image once and compare with its ground truth."""
    report = Report()
    for truth in truths:
        image = load_image(truth.image)
        if image is None:
            msg = f"cannot read image {truth.image}"
            raise ValueError(msg)
        start = time.perf_counter()
        boxes = reader.detect(image)
        readings = reader.read_boxes(image, boxes)
        ms = (time.perf_counter() - start) * 1000
        detected = any(b.box.iou(truth.box) >= 0.5 for b in boxes)
        cx, cy = (truth.box.x1 + truth.box.x2) / 2, (truth.box.y1 + truth.box.y2) / 2
        centred = any(b.box.x1 <= cx <= b.box.x2 and b.box.y1 <= cy <= b.box.y2 for b in boxes)
        outcome = Outcome(truth, readings[0].text if readings else "", detected, ms, centred)
        report.outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return report
