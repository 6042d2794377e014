from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gtvision.operators.lpr.plates import (
    BR_MERCOSUL,
    BR_OLD,
    BRAZIL,
    TO_DIGIT,
    TO_LETTER,
    PlateFormat,
    correct,
    normalise,
    parse_formats,
    top_candidates,
    vote,
)

letters = st.sampled_from(string.ascii_uppercase)
digits = st.sampled_from(string.digits)


@st.composite
def plates(draw: st.DrawFn, fmt: PlateFormat = BR_OLD) -> str:
    return "".join(draw(letters if c == "L" else digits) for c in fmt.pattern)


def test_formats_fit() -> None:
    assert BR_OLD.fits("ABC1234")
    assert not BR_OLD.fits("ABC1D23")
    assert BR_MERCOSUL.fits("ABC1D23")
    assert not BR_MERCOSUL.fits("ABC1234")
    assert not BR_OLD.fits("ABC123")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0DJ-1599", "ODJ1599"),  # first letter read as a digit
        ("PWC-06S3", "PWC0653"),  # digit read as a letter
        ("PWC-0G33", "PWC0G33"),  # fits Mercosul as read: text rules cannot tell, kept
        ("ABC·1234", "ABC1234"),
        ("abc1d23", "ABC1D23"),  # Mercosul stays Mercosul
        ("8R4-5Z7O", "BRA5270"),
        ("5Q1-2I3B", "SQI2138"),
        ("AYO-90Z4", "AYO9024"),
    ],
)
def test_correct(raw: str, expected: str) -> None:
    assert correct(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "ABC123", "ABC12345", "A3C1234X", "ABCDEFG", "1234567", "AB?1234"]
)
def test_correct_rejects(raw: str) -> None:
    assert correct(raw) is None


def test_custom_formats() -> None:
    formats = parse_formats("eu=LL999LL, us=*******")
    assert [f.name for f in formats] == ["eu", "us"]
    assert correct("AB-123-CD", formats[:1]) == "AB123CD"
    assert correct("A8-I23-CD", formats[:1]) == "AB123CD"
    with pytest.raises(ValueError, match="pattern 'LLX'"):
        PlateFormat("bad", "LLX")
    with pytest.raises(ValueError, match="empty"):
        parse_formats(" , ")


@given(plates(BR_OLD))
def test_valid_old_plates_are_unchanged(plate: str) -> None:
    assert correct(plate) == plate


@given(plates(BR_MERCOSUL))
def test_valid_mercosul_plates_are_unchanged(plate: str) -> None:
    assert correct(plate) == plate


@given(plates(BR_OLD), st.data())
def test_confusions_are_undone_by_position(plate: str, data: st.DataObject) -> None:
    """Replace letters by their digit look-alike (and digits by letters) where rules map back."""
    back_letter = dict(TO_LETTER)
    back_digit: dict[str, str] = {}
    for letter, digit in TO_DIGIT.items():
        back_digit.setdefault(digit, letter)
    noisy = list(plate)
    for i, ch in enumerate(plate):
        if not data.draw(st.booleans()):
            continue
        if i < 3:
            src = [d for d, let in back_letter.items() if let == ch]
            if src:
                noisy[i] = src[0]
        elif i != 4 and ch in back_digit:  # position 4 decides old vs Mercosul
            noisy[i] = back_digit[ch]
    assert correct("".join(noisy), BRAZIL[:1]) == plate


@given(st.text(max_size=12))
def test_output_always_fits_a_format(text: str) -> None:
    got = correct(text)
    assert got is None or any(f.fits(got) for f in BRAZIL)
    if got is not None:
        assert len(normalise(text)) == len(got)


def test_top_candidates_rank_by_product() -> None:
    slots = [{"A": 0.9, "B": 0.1}, {"1": 0.6, "7": 0.4}]
    cands = top_candidates(slots, k=3)
    assert [c.text for c in cands] == ["A1", "A7", "B1"]
    assert cands[0].char_confidences == (0.9, 0.6)
    assert cands[0].confidence == pytest.approx((0.9 * 0.6) ** 0.5)
    assert cands[0].confidence > cands[1].confidence > cands[2].confidence


def test_vote_sums_over_crops() -> None:
    a = top_candidates([{"O": 0.6, "Q": 0.4}, {"1": 1.0}])
    b = top_candidates([{"Q": 0.7, "O": 0.3}, {"1": 1.0}])
    c = top_candidates([{"Q": 0.8, "O": 0.2}, {"1": 1.0}])
    merged = vote([a, b, c])
    assert merged[0].text == "Q1"
    assert merged[0].char_confidences[0] == pytest.approx((0.4 + 0.7 + 0.8) / 3)
    assert vote([]) == []
