"""Accuracy of :class:`~gtvision.operators.lpr.reader.PlateReader` under the evaluation protocol.

A benchmark directory holds images and ``NAME.txt`` ground-truth files, one line per plate:
``file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE``. The reader's best plate per image is compared with
the ground truth (exact match), its boxes with the ground-truth box (recall at IoU ≥ 0.5), and
wrong characters are tallied as ``truth→read`` confusions.

The protocol (docs/lpr.md) that every LPR rule and threshold is judged by:

* **K folds**: images sorted by name go to fold ``i mod K``; accuracy is reported per fold,
  with the mean and the worst fold (a rule that only fixes one photo shows as one fold moving);
* **augmented copies** (:mod:`.augment`): every image degraded by each augmentation, seeded
  and deterministic, reported per augmentation and per fold (a copy stays in its photo's fold).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from gtvision.events import Box
from gtvision.operators.lpr.augment import augment
from gtvision.operators.lpr.reader import Image, PlateReader, load_image

#: name of the unaugmented set in reports
ORIGINAL = "original"
#: name of the union of every augmented copy in reports
AUGMENTED = "augmented"


@dataclass(frozen=True, slots=True)
class Truth:
    """One ground-truth plate."""

    image: Path
    box: Box
    plate: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The reader's result on one image (or one augmented copy of it)."""

    truth: Truth
    read: str
    detected: bool
    ms: float
    centred: bool = False
    fold: int = 0
    augmentation: str = ORIGINAL
    params: str = ""

    @property
    def exact(self) -> bool:
        """Best plate equals the ground truth."""
        return self.read == self.truth.plate


def _rate(rows: Sequence[Outcome], what: Callable[[Outcome], bool]) -> float:
    return sum(what(o) for o in rows) / len(rows) if rows else 0.0


@dataclass
class Report:
    """Aggregate figures per set (original, each augmentation, all augmented) and per fold."""

    outcomes: list[Outcome] = field(default_factory=list)
    folds: int = 2

    @property
    def sets(self) -> list[str]:
        """Set names in the order first seen, plus :data:`AUGMENTED` when there are copies."""
        names = list(dict.fromkeys(o.augmentation for o in self.outcomes))
        return names + ([AUGMENTED] if any(n != ORIGINAL for n in names) else [])

    def rows(self, augmentation: str = ORIGINAL, fold: int | None = None) -> list[Outcome]:
        """Outcomes of one set, optionally of one fold."""
        if augmentation == AUGMENTED:
            rows = [o for o in self.outcomes if o.augmentation != ORIGINAL]
        else:
            rows = [o for o in self.outcomes if o.augmentation == augmentation]
        return rows if fold is None else [o for o in rows if o.fold == fold]

    def accuracy(self, fold: int | None = None, augmentation: str = ORIGINAL) -> float:
        """Exact-match rate."""
        return _rate(self.rows(augmentation, fold), lambda o: o.exact)

    def fold_accuracies(self, augmentation: str = ORIGINAL) -> list[float]:
        """Exact-match rate of each fold."""
        return [self.accuracy(k, augmentation) for k in range(self.folds)]

    def fold_mean(self, augmentation: str = ORIGINAL) -> float:
        """Mean of the folds' exact-match rates."""
        return statistics.fmean(self.fold_accuracies(augmentation))

    def worst_fold(self, augmentation: str = ORIGINAL) -> float:
        """The lowest fold exact-match rate."""
        return min(self.fold_accuracies(augmentation))

    def recall(self, fold: int | None = None, augmentation: str = ORIGINAL) -> float:
        """Share of ground-truth boxes hit by a detection at IoU ≥ 0.5."""
        return _rate(self.rows(augmentation, fold), lambda o: o.detected)

    def centre_hits(self, augmentation: str = ORIGINAL) -> float:
        """Share of ground-truth boxes whose centre lies inside a detection (any box size)."""
        return _rate(self.rows(augmentation), lambda o: o.centred)

    def ms_per_image(self) -> float:
        """Mean reading time per image (every set)."""
        return statistics.fmean(o.ms for o in self.outcomes) if self.outcomes else 0.0

    def confusions(self, top: int = 10, augmentation: str = ORIGINAL) -> list[tuple[str, int]]:
        """Most common ``truth→read`` character errors (``∅`` for a missing character)."""
        counts: Counter[str] = Counter()
        for o in self.rows(augmentation):
            if o.exact:
                continue
            for edit in Levenshtein.editops(o.truth.plate, o.read):
                kind, i, j = edit.tag, edit.src_pos, edit.dest_pos
                src = o.truth.plate[i] if kind != "insert" else "∅"
                dst = o.read[j] if kind != "delete" else "∅"
                counts[f"{src}→{dst}"] += 1
        return counts.most_common(top)

    def table(self) -> list[str]:
        """One line per set: exact overall, per fold, fold mean and worst fold, recall."""
        head = f"{'set':<12} {'exact':>15} " + " ".join(
            f"{'fold' + str(k + 1):>6}" for k in range(self.folds)
        )
        out = [head + f" {'mean':>6} {'worst':>6} {'recall':>7}"]
        for name in self.sets:
            rows = self.rows(name)
            hits = sum(o.exact for o in rows)
            folds = " ".join(f"{a:>6.1%}" for a in self.fold_accuracies(name))
            out.append(
                f"{name:<12} {self.accuracy(augmentation=name):>6.1%} {f'({hits}/{len(rows)})':>8} "
                f"{folds} {self.fold_mean(name):>6.1%} {self.worst_fold(name):>6.1%} "
                f"{self.recall(augmentation=name):>7.1%}"
            )
        return out

    def lines(self) -> list[str]:
        """Human-readable summary: the table, then confusions and the wrong reads."""
        out = [f"images: {len(self.rows())}, folds: {self.folds}", *self.table()]
        out += [
            f"ground-truth centre inside a detection: {self.centre_hits():.1%}",
            f"ms/image: {self.ms_per_image():.0f}",
        ]
        for name in self.sets:
            conf = ", ".join(f"{k} ×{v}" for k, v in self.confusions(augmentation=name))
            out.append(f"confusions ({name}): {conf or 'none'}")
        out += [
            f"  wrong: {o.augmentation}: {o.truth.image.name}: {o.truth.plate} read "
            f"{o.read or '∅'}" + (f" [{o.params}]" if o.params else "")
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


def read_one(reader: PlateReader, image: Image, box: Box) -> tuple[str, bool, bool, float]:
    """Best text, IoU hit, centre hit and milliseconds of one read of ``image``."""
    start = time.perf_counter()
    boxes = reader.detect(image)
    readings = reader.read_boxes(image, boxes)
    ms = (time.perf_counter() - start) * 1000
    detected = any(b.box.iou(box) >= 0.5 for b in boxes)
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    centred = any(b.box.x1 <= cx <= b.box.x2 and b.box.y1 <= cy <= b.box.y2 for b in boxes)
    return (readings[0].text if readings else "", detected, centred, ms)


def evaluate(
    reader: PlateReader,
    truths: Iterable[Truth],
    progress: Callable[[Outcome], None] | None = None,
    *,
    folds: int = 2,
    augmentations: Sequence[str] = (),
    seed: int = 0,
) -> Report:
    """Read every image (and each of its augmented copies) once; compare with the truth."""
    if folds < 1:
        msg = f"--folds must be at least 1, got {folds}"
        raise ValueError(msg)
    report = Report(folds=folds)
    for i, truth in enumerate(truths):
        image = load_image(truth.image)
        if image is None:
            msg = f"cannot read image {truth.image}"
            raise ValueError(msg)
        copies = [(ORIGINAL, image, truth.box, "")]
        for kind in augmentations:
            aug = augment(image, truth.box, kind, truth.image.name, seed)
            copies.append((kind, aug.image, aug.box, aug.params))
        for kind, picture, box, params in copies:
            read, detected, centred, ms = read_one(reader, picture, box)
            outcome = Outcome(truth, read, detected, ms, centred, i % folds, kind, params)
            report.outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    return report
