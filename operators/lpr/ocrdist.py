"""An edit distance that knows which characters OCR confuses on licence plates.

Plain Levenshtein charges 1 for every substitution. On plates, ``O``/``0``/``D``/``Q``,
``1``/``I``, ``8``/``B``, ``5``/``S``, ``2``/``Z`` ... are swapped by OCR far more often than,
say, ``K``/``3``, so :func:`ocr_distance` charges :data:`CONFUSABLE_COST` (0.5) for a
substitution inside one of :data:`CONFUSABLE_GROUPS` and 1 for any other edit. It is used both
to group the reads of one vehicle pass and to match fuzzy hotlist entries.

Because every edit costs at least ``CONFUSABLE_COST``, ``ocr_distance(a, b) >=
CONFUSABLE_COST * levenshtein(a, b)``: callers prefilter with rapidfuzz's C Levenshtein
(:func:`levenshtein_bound`) and run the Python dynamic programme only on the survivors.
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations

CONFUSABLE_COST = 0.5
CONFUSABLE_GROUPS: tuple[str, ...] = (
    "0ODQUC",
    "1IJLT",
    "7T",
    "8B",
    "5S",
    "2Z",
    "6GC",
    "4A",
    "GO",
    "GD",
    "GQ",
    "MN",
    "VY",
    "EF",
    "PR",
)


def _pairs() -> frozenset[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for group in CONFUSABLE_GROUPS:
        for a, b in combinations(group, 2):
            found.add((a, b))
            found.add((b, a))
    return frozenset(found)


CONFUSABLE_PAIRS = _pairs()


def substitution_cost(a: str, b: str) -> float:
    """Cost of reading ``b`` where ``a`` was: 0 if equal, 0.5 if confusable, else 1."""
    if a == b:
        return 0.0
    return CONFUSABLE_COST if (a, b) in CONFUSABLE_PAIRS else 1.0


@lru_cache(maxsize=65536)
def ocr_distance(a: str, b: str) -> float:
    """Weighted Levenshtein distance: insert/delete 1, confusable substitution 0.5, other 1."""
    if a == b:
        return 0.0
    if not a:
        return float(len(b))
    if not b:
        return float(len(a))
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, start=1):
        cur = [float(i)]
        for j, cb in enumerate(b, start=1):
            cur.append(
                min(
                    prev[j] + 1.0,
                    cur[j - 1] + 1.0,
                    prev[j - 1] + substitution_cost(ca, cb),
                )
            )
        prev = cur
    return prev[-1]


def levenshtein_bound(max_distance: float) -> int:
    """Largest plain Levenshtein distance that can still give ``ocr_distance <= max_distance``."""
    return math.floor(max_distance / CONFUSABLE_COST + 1e-9)
