"""Licence-plate formats and position-aware correction of OCR confusions.

A :class:`PlateFormat` is a pattern of character classes, one per position: ``L`` a letter,
``9`` a digit, ``*`` either. Brazil uses the old grey plate ``LLL9999`` and the Mercosul plate
``LLL9L99``; other countries are added with :func:`parse_formats` (``GTV_PLATE_FORMATS``).

OCR confuses letters and digits that look alike (``0/O/Q/D``, ``1/I/L``, ``2/Z``, ``4/A``, ``5/S``,
``6/G``, ``7/T``, ``8/B``). Knowing which class a position takes, :func:`correct` maps a wrong-class
character to its look-alike of the right class, and rejects text that fits no format.
"""

from __future__ import annotations

import heapq
import math
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gtvision.events import PlateCandidate

LETTERS = string.ascii_uppercase
DIGITS = string.digits
CLASSES: dict[str, str] = {"L": LETTERS, "9": DIGITS, "*": LETTERS + DIGITS}

#: digit read where a letter must be -> the letter it most likely was
TO_LETTER: dict[str, str] = {
    "0": "O",
    "1": "I",
    "2": "Z",
    "4": "A",
    "5": "S",
    "6": "G",
    "7": "T",
    "8": "B",
}
#: letter read where a digit must be -> the digit it most likely was
TO_DIGIT: dict[str, str] = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "U": "0",
    "I": "1",
    "L": "1",
    "J": "1",
    "Z": "2",
    "A": "4",
    "S": "5",
    "G": "6",
    "T": "7",
    "B": "8",
}


@dataclass(frozen=True, slots=True)
class PlateFormat:
    """One plate layout: ``pattern`` holds one class per position (``L`` letter, ``9`` digit)."""

    name: str
    pattern: str

    def __post_init__(self) -> None:
        """Reject empty patterns and unknown class symbols."""
        bad = sorted(set(self.pattern) - set(CLASSES))
        if not self.pattern or bad:
            msg = (
                f"plate format {self.name!r} has pattern {self.pattern!r}: expected a non-empty "
                f"string of L (letter), 9 (digit) or * (either), got symbols {bad}"
            )
            raise ValueError(msg)

    def __len__(self) -> int:
        return len(self.pattern)

    @property
    def slots(self) -> tuple[str, ...]:
        """The characters allowed at each position."""
        return tuple(CLASSES[c] for c in self.pattern)

    def fits(self, text: str) -> bool:
        """``True`` when ``text`` matches the pattern exactly."""
        return len(text) == len(self.pattern) and all(
            ch in CLASSES[cls] for ch, cls in zip(text, self.pattern, strict=True)
        )

    def coerce(self, text: str) -> str | None:
        """Map look-alikes to the class each position needs; ``None`` when impossible."""
        if len(text) != len(self.pattern):
            return None
        out: list[str] = []
        for ch, cls in zip(text, self.pattern, strict=True):
            fixed = ch
            if cls == "L" and ch in DIGITS:
                fixed = TO_LETTER.get(ch, ch)
            elif cls == "9" and ch in LETTERS:
                fixed = TO_DIGIT.get(ch, ch)
            if fixed not in CLASSES[cls]:
                return None
            out.append(fixed)
        return "".join(out)


BR_OLD = PlateFormat("br-old", "LLL9999")
BR_MERCOSUL = PlateFormat("br-mercosul", "LLL9L99")
BRAZIL: tuple[PlateFormat, ...] = (BR_OLD, BR_MERCOSUL)


def parse_formats(spec: str) -> tuple[PlateFormat, ...]:
    """Parse ``"LLL9999,LLL9L99"`` (optionally ``name=pattern`` items) into formats."""
    out: list[PlateFormat] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, pattern = item.rpartition("=")
        out.append(PlateFormat(name or pattern, pattern.strip().upper()))
    if not out:
        msg = f"plate format list {spec!r} is empty: expected e.g. 'LLL9999,LLL9L99'"
        raise ValueError(msg)
    return tuple(out)


def normalise(text: str) -> str:
    """Upper-case ASCII letters and digits only (drops separators like ``-`` and ``·``)."""
    return "".join(ch for ch in text.upper() if ch in LETTERS or ch in DIGITS)


def correct(text: str, formats: Sequence[PlateFormat] = BRAZIL) -> str | None:
    """Normalise ``text`` and fix it to the first format it can fit; ``None`` if it fits none.

    Text that already fits a format is returned unchanged; otherwise the first format that
    the look-alike mapping makes it fit wins.
    """
    clean = normalise(text)
    for fmt in formats:
        if fmt.fits(clean):
            return clean
    for fmt in formats:
        fixed = fmt.coerce(clean)
        if fixed is not None:
            return fixed
    return None


def top_candidates(slot_scores: Sequence[dict[str, float]], k: int = 3) -> list[PlateCandidate]:
    """The ``k`` best strings from independent per-position character probabilities.

    ``slot_scores[i]`` maps each allowed character of position ``i`` to its probability; a
    string's confidence is the geometric mean of its characters' probabilities.
    """
    if not slot_scores:
        return []
    ranked = [sorted(s.items(), key=lambda kv: -kv[1])[: max(k, 1)] for s in slot_scores]
    if any(not r for r in ranked):
        return []

    def cost(idx: tuple[int, ...]) -> float:
        return -sum(math.log(max(ranked[i][j][1], 1e-12)) for i, j in enumerate(idx))

    start = (0,) * len(ranked)
    heap: list[tuple[float, tuple[int, ...]]] = [(cost(start), start)]
    seen = {start}
    out: list[PlateCandidate] = []
    n = len(ranked)
    while heap and len(out) < k:
        c, idx = heapq.heappop(heap)
        chars = [ranked[i][j] for i, j in enumerate(idx)]
        out.append(
            PlateCandidate(
                text="".join(ch for ch, _ in chars),
                confidence=min(1.0, math.exp(-c / n)),
                char_confidences=tuple(min(1.0, max(0.0, p)) for _, p in chars),
            )
        )
        for i in range(n):
            if idx[i] + 1 < len(ranked[i]):
                nxt = (*idx[:i], idx[i] + 1, *idx[i + 1 :])
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (cost(nxt), nxt))
    return out


def vote(readings: Iterable[Sequence[PlateCandidate]], k: int = 3) -> list[PlateCandidate]:
    """Merge the candidate lists of several crops of one plate: sum of confidences per text.

    Per-character confidences of a text are averaged over the crops that proposed it; the
    merged confidence is the mean over all crops (a crop that did not propose it counts 0).
    """
    total: dict[str, float] = {}
    chars: dict[str, list[tuple[float, ...]]] = {}
    n = 0
    for cands in readings:
        n += 1
        for cand in cands:
            total[cand.text] = total.get(cand.text, 0.0) + cand.confidence
            chars.setdefault(cand.text, []).append(cand.char_confidences)
    if n == 0:
        return []
    best = sorted(total, key=lambda t: (-total[t], t))[:k]
    out: list[PlateCandidate] = []
    for text in best:
        rows = [r for r in chars[text] if len(r) == len(text)]
        per_char = tuple(sum(col) / len(rows) for col in zip(*rows, strict=True)) if rows else ()
        out.append(
            PlateCandidate(
                text=text,
                confidence=min(1.0, total[text] / n),
                char_confidences=per_char,
            )
        )
    return out
