"""Old ↔ Mercosul plate equivalence: the conversion table, round trips and hostile strings."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gtvision.operators.lpr.equivalence import (
    plate_form,
    plate_identity,
    plate_key,
    same_vehicle,
    to_mercosul,
    to_old,
)

letters = st.text(string.ascii_uppercase, min_size=3, max_size=3)
digit = st.sampled_from(string.digits)
old_plates = st.builds(
    lambda a, b, c, d, e: f"{a}{b}{c}{d}{e}",
    letters,
    digit,
    digit,
    st.text(string.digits, min_size=2, max_size=2),
    st.just(""),
)


@pytest.mark.parametrize(
    ("old", "mercosul"),
    [
        ("ABC1034", "ABC1A34"),
        ("ABC1134", "ABC1B34"),
        ("ABC1234", "ABC1C34"),
        ("ABC1334", "ABC1D34"),
        ("ABC1434", "ABC1E34"),
        ("ABC1534", "ABC1F34"),
        ("ABC1634", "ABC1G34"),
        ("ABC1734", "ABC1H34"),
        ("ABC1834", "ABC1I34"),
        ("ABC1934", "ABC1J34"),
    ],
)
def test_official_table(old: str, mercosul: str) -> None:
    assert to_mercosul(old) == mercosul
    assert to_old(mercosul) == old
    assert same_vehicle(old, mercosul)
    assert plate_identity(old).form == "old"
    assert plate_identity(mercosul).form == "mercosul"
    assert plate_identity(old).forms == (old, mercosul)
    assert plate_identity(mercosul).forms == (mercosul, old)


@given(old_plates)
def test_round_trip_and_one_key(old: str) -> None:
    merc = to_mercosul(old)
    assert merc is not None
    assert to_old(merc) == old
    assert plate_key(old) == plate_key(merc) == merc
    assert plate_form(old) == "old"
    assert plate_form(merc) == "mercosul"


@given(old_plates, old_plates)
def test_different_vehicles_stay_different(a: str, b: str) -> None:
    assert same_vehicle(a, b) == (a == b)


def test_new_mercosul_letter_has_no_old_form() -> None:
    ident = plate_identity("RTM7K23")
    assert ident == plate_identity("rtm-7k23")
    assert ident.key == "RTM7K23"
    assert ident.form == "mercosul"
    assert ident.forms == ("RTM7K23",)
    assert to_old("RTM7K23") is None


def test_separators_and_case_are_ignored() -> None:
    assert plate_key("abc-1234") == plate_key("ABC 1C34") == "ABC1C34"
    assert plate_identity("abc-1234").text == "ABC1234"


@pytest.mark.parametrize(
    "text", ["", "-", "ABC123", "ABC12345", "1234ABC", "AB1C234", "ÁBC1234", "ＡBC1234", "ABCD234"]
)
def test_other_text_is_its_own_key(text: str) -> None:
    ident = plate_identity(text)
    assert ident.form is None
    assert ident.key == ident.text
    assert ident.forms == (ident.text,)
    assert to_mercosul(text) is None
    assert to_old(text) is None


def test_control_characters_are_separators() -> None:
    assert plate_identity("ABC1234\x00").form == "old"


@given(st.text(max_size=12))
def test_never_raises_and_is_idempotent(text: str) -> None:
    ident = plate_identity(text)
    assert plate_identity(ident.key).key == ident.key
    assert all(plate_key(f) == ident.key for f in ident.forms)
