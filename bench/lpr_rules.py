"""Which LPR rules to keep, decided under the evaluation protocol (docs/lpr.md).

Every candidate configuration of the reader (the Q-tail check on/off, the weight of a format its
plate style contradicts) reads the same photos and the same seeded augmented copies; detection
and OCR run once per picture and are shared (the rules only change decoding), so the comparison
is exact. Printed per configuration: fold accuracies, mean, worst fold, each augmentation and
the augmented set. Then the *nested* choice: for each fold, the configuration that scores best
on the other folds (original + augmented; ties go to the first, simplest one) is scored on the
held-out fold; that held-out accuracy is what a rule chosen this way is expected to give.

Usage: ``.venv/bin/python bench/lpr_rules.py [--folds 3] [--seed 0] [--augment all]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gtvision.config import load_settings
from gtvision.models.ocr import PlateOCR
from gtvision.models.store import pull
from gtvision.operators.lpr.augment import augment, parse_augmentations
from gtvision.operators.lpr.evaluation import ORIGINAL, Outcome, Report, load_truths
from gtvision.operators.lpr.reader import PlateReader, ReaderConfig, load_image
from tests.conftest import DEV_DATA

CONFIGS: dict[str, ReaderConfig] = {
    "plain": ReaderConfig(confident=1.1, q_tail=False, mercosul_if_old=1.0, old_if_mercosul=1.0),
    "qtail": ReaderConfig(confident=1.1, q_tail=True, mercosul_if_old=1.0, old_if_mercosul=1.0),
    "qtail+old0.5": ReaderConfig(
        confident=1.1, q_tail=True, mercosul_if_old=0.5, old_if_mercosul=1.0
    ),
    "qtail+old0.3": ReaderConfig(
        confident=1.1, q_tail=True, mercosul_if_old=0.3, old_if_mercosul=1.0
    ),
    "qtail+both0.5": ReaderConfig(
        confident=1.1, q_tail=True, mercosul_if_old=0.5, old_if_mercosul=0.5
    ),
    "old0.5": ReaderConfig(confident=1.1, q_tail=False, mercosul_if_old=0.5, old_if_mercosul=1.0),
    "default (first crop if >= 0.9)": ReaderConfig(),
}


class CachedOCR(PlateOCR):
    """The recogniser with its per-crop results kept (configurations share the crops)."""

    def __init__(self) -> None:
        super().__init__()
        self.cache: dict[str, NDArray[np.float32]] = {}

    def probs(self, crops: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.float32]]:
        out = []
        for crop in crops:
            key = hashlib.blake2b(crop.tobytes() + bytes(str(crop.shape), "ascii")).hexdigest()
            if key not in self.cache:
                self.cache[key] = super().probs([crop])[0]
            out.append(self.cache[key])
        return out


def load() -> float:
    return os.getloadavg()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", default="all")
    parser.add_argument("--data", default=str(DEV_DATA))
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    models_dir = load_settings().models_path
    pull(models_dir)
    base = PlateReader.load(models_dir)
    ocr = CachedOCR()
    readers = {n: PlateReader(base.detector, ocr, c) for n, c in CONFIGS.items()}
    reports = {n: Report(folds=args.folds) for n in CONFIGS}
    kinds = parse_augmentations(args.augment)
    truths = load_truths(Path(args.data))
    for i, truth in enumerate(truths):
        image = load_image(truth.image)
        assert image is not None, truth.image
        copies = [(ORIGINAL, image, "")]
        for kind in kinds:
            aug = augment(image, truth.box, kind, truth.image.name, args.seed)
            copies.append((kind, aug.image, aug.params))
        for kind, picture, params in copies:
            ocr.cache.clear()
            boxes = base.detect(picture)
            for name, reader in readers.items():
                got = reader.read_boxes(picture, boxes)
                text = got[0].text if got else ""
                reports[name].outcomes.append(
                    Outcome(truth, text, True, 0.0, True, i % args.folds, kind, params)
                )
        print(f"\r{i + 1}/{len(truths)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    sets = reports["plain"].sets
    print(f"{'config':<16} " + " ".join(f"{s[:8]:>8}" for s in sets) + "   folds (original)")
    for name, rep in reports.items():
        accs = " ".join(f"{rep.accuracy(augmentation=s):>8.1%}" for s in sets)
        folds = " ".join(f"{a:.1%}" for a in rep.fold_accuracies())
        print(
            f"{name:<16} {accs}   {folds} mean {rep.fold_mean():.1%} worst {rep.worst_fold():.1%}"
        )
    print("nested choice (chosen on the other folds, scored on the held-out fold):")
    held_orig, held_aug = [], []
    for k in range(args.folds):

        def train_score(rep: Report, k: int = k) -> float:
            rows = [o for o in rep.outcomes if o.fold != k]
            return sum(o.exact for o in rows) / len(rows)

        best = max(CONFIGS, key=lambda n: (train_score(reports[n]), -list(CONFIGS).index(n)))
        rep = reports[best]
        held_orig.append(rep.accuracy(k))
        held_aug.append(rep.accuracy(k, "augmented"))
        print(
            f"  fold {k + 1}: chose {best}: held-out original {held_orig[-1]:.1%}, "
            f"augmented {held_aug[-1]:.1%}"
        )
    print(
        f"nested: original mean {statistics.fmean(held_orig):.1%} worst {min(held_orig):.1%}; "
        f"augmented mean {statistics.fmean(held_aug):.1%} worst {min(held_aug):.1%}"
    )
    for name, rep in reports.items():
        wrong = [
            f"{o.augmentation}:{o.truth.plate}->{o.read or '-'}"
            for o in rep.outcomes
            if not o.exact
        ]
        print(f"wrong [{name}]: {', '.join(wrong)}")
    print(f"load at the end: {load():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
