"""Old ↔ Mercosul identity of a Brazilian plate.

A car keeps its registration when its old grey plate ``LLL9D99`` is replaced by a Mercosul plate:
the fifth character's digit becomes a letter, ``0→A, 1→B, … 9→J`` (``ABC1234`` → ``ABC1C34``).
Both forms therefore name one vehicle. :func:`plate_identity` gives the canonical key (the
Mercosul form) and which form was read, so hotlists, plate search and trajectories can match
either form and still say what the camera saw.

Only the fifth position differs; a Mercosul plate whose fifth letter is after ``J`` was issued
new and has no old form (its key is itself). Text that fits neither Brazilian layout (a foreign
plate, a partial read) is its own key with form ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gtvision.operators.lpr.plates import BR_MERCOSUL, BR_OLD, normalise

#: the letter a fifth-position digit becomes on the Mercosul plate (index = digit)
MERCOSUL_FIFTH = "ABCDEFGHIJ"
#: position (0-based) of the character that changes between the two forms
FIFTH = 4

PlateForm = Literal["old", "mercosul"]


@dataclass(frozen=True, slots=True)
class PlateIdentity:
    """One read plate: its canonical key, the text as read and which Brazilian form it has."""

    #: the vehicle's key: the Mercosul form of a Brazilian plate, else the normalised text
    key: str
    #: the normalised text as read
    text: str
    #: ``"old"`` (``LLL9999``), ``"mercosul"`` (``LLL9L99``) or ``None`` (neither layout)
    form: PlateForm | None

    @property
    def forms(self) -> tuple[str, ...]:
        """Every text naming this vehicle: the read text first, then its other form (if any)."""
        other = to_old(self.key) if self.form == "mercosul" else None
        if self.form == "old":
            other = self.key
        return (self.text,) if other is None or other == self.text else (self.text, other)


def to_mercosul(plate: str) -> str | None:
    """The Mercosul form of an old plate (``ABC1234`` → ``ABC1C34``); ``None`` if not old."""
    text = normalise(plate)
    if not BR_OLD.fits(text):
        return None
    return text[:FIFTH] + MERCOSUL_FIFTH[int(text[FIFTH])] + text[FIFTH + 1 :]


def to_old(plate: str) -> str | None:
    """The old form of a Mercosul plate (``ABC1C34`` → ``ABC1234``).

    ``None`` when the text is not a Mercosul plate or its fifth letter is after ``J`` (a plate
    issued new, which never had an old form).
    """
    text = normalise(plate)
    if not BR_MERCOSUL.fits(text) or text[FIFTH] not in MERCOSUL_FIFTH:
        return None
    return text[:FIFTH] + str(MERCOSUL_FIFTH.index(text[FIFTH])) + text[FIFTH + 1 :]


def plate_form(plate: str) -> PlateForm | None:
    """``"old"``, ``"mercosul"`` or ``None`` for text fitting neither Brazilian layout."""
    text = normalise(plate)
    if BR_OLD.fits(text):
        return "old"
    if BR_MERCOSUL.fits(text):
        return "mercosul"
    return None


def plate_identity(plate: str) -> PlateIdentity:
    """Canonical key and form of a read plate (separators and case are ignored)."""
    text = normalise(plate)
    form = plate_form(text)
    key = to_mercosul(text) if form == "old" else None
    return PlateIdentity(key=key or text, text=text, form=form)


def plate_key(plate: str) -> str:
    """The canonical key alone: equal for the old and the Mercosul form of one vehicle."""
    return plate_identity(plate).key


def same_vehicle(a: str, b: str) -> bool:
    """``True`` when two plate texts name one vehicle (equal, or old and Mercosul forms)."""
    return plate_key(a) == plate_key(b)
