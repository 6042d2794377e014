from __future__ import annotations

import numpy as np
import pytest

from gtvision.operators.lpr.ctc import Projection, decode
from gtvision.operators.lpr.plates import BR_MERCOSUL, BR_OLD

CHARSET = [
    "blank",
    *"abcdefghijklmnopqrstuvwxyz",
    *"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "-",
    "中",
]
IDX = {c: i for i, c in enumerate(CHARSET)}


def steps(*frames: str | dict[str, float]) -> np.ndarray:
    """One row per frame: a char name (prob 0.9, rest spread) or an explicit distribution."""
    out = np.full((len(frames), len(CHARSET)), 1e-4, dtype=np.float32)
    for t, f in enumerate(frames):
        dist = {f: 0.95} if isinstance(f, str) else f
        for ch, p in dist.items():
            out[t, IDX[ch]] = p
    norm: np.ndarray = out / out.sum(axis=1, keepdims=True)
    return norm


def greedy(*chars: str) -> list[str]:
    seq: list[str] = []
    for ch in chars:
        seq += [ch, "blank"]
    return seq


PROJ = Projection(CHARSET)


def test_reads_a_clean_plate_with_separator() -> None:
    got = decode(steps(*greedy(*"ABC"), "-", "blank", *greedy(*"1234")), PROJ, BR_OLD)
    assert got is not None
    assert got.text == "ABC1234"
    assert got.candidates[0].text == "ABC1234"
    assert got.candidates[0].confidence > 0.9
    assert len(got.candidates[0].char_confidences) == 7


def test_digit_at_letter_position_becomes_letter() -> None:
    got = decode(steps(*greedy("0", "D", "J"), *greedy(*"1599")), PROJ, BR_OLD)
    assert got is not None
    assert got.text == "ODJ1599"


def test_repeated_letter_without_blank_is_recovered() -> None:
    # the model emits J for two steps without a blank: greedy CTC would read "PJ4955"
    probs = steps("P", "blank", "J", "J", "blank", *greedy(*"4955"))
    got = decode(probs, PROJ, BR_OLD)
    assert got is not None
    assert got.text == "PJJ4955"


def test_top3_has_runner_up_characters() -> None:
    frames: list[str | dict[str, float]] = [*greedy("O", "U")]
    frames += [{"0": 0.5, "Q": 0.4, "blank": 0.1}, "blank", *greedy(*"6314")]
    got = decode(steps(*frames), PROJ, BR_OLD)
    assert got is not None
    texts = [c.text for c in got.candidates]
    assert texts[0] == "OUO6314"
    assert "OUQ6314" in texts
    assert len(texts) == 3
    confs = [c.confidence for c in got.candidates]
    assert confs == sorted(confs, reverse=True)


def test_mercosul_letter_in_digit_block() -> None:
    got = decode(steps(*greedy(*"BRA2E19")), PROJ, BR_MERCOSUL)
    old = decode(steps(*greedy(*"BRA2E19")), PROJ, BR_OLD)
    assert got is not None
    assert old is not None
    assert got.text == "BRA2E19"
    assert got.score > old.score


def test_too_few_steps() -> None:
    assert decode(steps("A", "B"), PROJ, BR_OLD) is None


@pytest.mark.parametrize("junk", ["中", "-"])
def test_unknown_glyphs_count_as_gaps(junk: str) -> None:
    got = decode(steps(junk, *greedy(*"ABC"), junk, *greedy(*"1234"), junk), PROJ, BR_OLD)
    assert got is not None
    assert got.text == "ABC1234"
