"""The evaluation protocol's augmentations: seeded, deterministic, box kept on the plate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gtvision.events import Box
from gtvision.operators.lpr.augment import AUGMENTATIONS, augment, parse_augmentations
from gtvision.operators.lpr.evaluation import ORIGINAL, Outcome, Report, Truth

BOX = Box(x1=200, y1=150, x2=360, y2=200)


def _scene() -> np.ndarray:
    """A grey street with one dark-on-light plate (the box) and a textured background."""
    rng = np.random.default_rng(5)
    img = rng.integers(60, 120, size=(360, 640, 3), dtype=np.uint8)
    cv2.rectangle(img, (200, 150), (360, 200), (210, 210, 210), -1)
    cv2.putText(img, "ABC1234", (206, 190), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (20, 20, 20), 3)
    return img


@pytest.mark.parametrize("kind", list(AUGMENTATIONS))
def test_seeded_deterministic_and_box_follows(kind: str) -> None:
    img = _scene()
    a = augment(img, BOX, kind, "ABC1234.jpg", seed=0)
    b = augment(img, BOX, kind, "ABC1234.jpg", seed=0)
    c = augment(img, BOX, kind, "ABC1234.jpg", seed=1)
    assert np.array_equal(a.image, b.image)
    assert a.params == b.params
    assert a.params != c.params  # another seed draws other parameters
    assert a.image.dtype == np.uint8
    assert a.image.ndim == 3
    assert not np.array_equal(a.image, img[: a.image.shape[0], : a.image.shape[1]])
    # the moved box still frames the plate: it is mostly the plate's light grey
    crop = a.image[int(a.box.y1) : int(a.box.y2), int(a.box.x1) : int(a.box.x2)]
    plate = np.asarray(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY))
    if kind == "lowlight":
        assert plate.mean() < 110  # dark, but still brighter than the (darker) street
    else:
        assert plate.mean() > 140


def test_parameters_stay_in_their_ranges() -> None:
    img = _scene()
    for i in range(40):
        key = f"img{i}"
        scale = float(augment(img, BOX, "scale", key).params.split("=")[1])
        assert 0.4 <= scale <= 1.0
        quality = int(augment(img, BOX, "jpeg", key).params.split("=")[1])
        assert 25 <= quality <= 40
        angle = float(augment(img, BOX, "rotate", key).params.split("=")[1])
        assert -10 <= angle <= 10


def test_augmentation_names() -> None:
    assert parse_augmentations("all") == tuple(AUGMENTATIONS)
    assert parse_augmentations(" jpeg, blur") == ("jpeg", "blur")
    with pytest.raises(ValueError, match=r"unknown augmentation\(s\) \['fog'\]"):
        parse_augmentations("jpeg,fog")


def test_report_folds_mean_and_worst() -> None:
    def outcome(i: int, ok: bool, aug: str = ORIGINAL) -> Outcome:
        truth = Truth(image=Path(f"{i}.jpg"), box=BOX, plate="ABC1234")
        return Outcome(truth, "ABC1234" if ok else "ABC1235", True, 1.0, True, i % 3, aug)

    rows = [outcome(i, i != 4) for i in range(9)] + [outcome(i, i < 6, "blur") for i in range(9)]
    report = Report(rows, folds=3)
    assert report.fold_accuracies() == [1.0, pytest.approx(2 / 3), 1.0]
    assert report.worst_fold() == pytest.approx(2 / 3)
    assert report.fold_mean() == pytest.approx(8 / 9)
    assert report.sets == ["original", "blur", "augmented"]
    assert report.accuracy(augmentation="augmented") == pytest.approx(6 / 9)
    assert report.confusions(augmentation="blur") == [("4→5", 3)]
