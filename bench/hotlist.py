"""Hotlist matching speed: ``HotlistMatcher`` vs a naive loop over every entry, same run.

Prints µs per plate for N entries (a third each exact, wildcard, fuzzy) and the ratio
naive / matcher. Usage: ``python bench/hotlist.py [N] [PLATES]``.
"""

from __future__ import annotations

import random
import re
import string
import sys
import time
from datetime import UTC, datetime

from gtvision.operators.hotlist import HotlistEntry, HotlistKind, HotlistMatcher
from gtvision.operators.lpr.ocrdist import ocr_distance


def plate(rnd: random.Random) -> str:
    letters = "".join(rnd.choices(string.ascii_uppercase, k=3))
    return (
        letters
        + rnd.choice(string.digits)
        + rnd.choice(string.ascii_uppercase + string.digits)
        + "".join(rnd.choices(string.digits, k=2))
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    rnd = random.Random(1)
    kinds: tuple[HotlistKind, ...] = ("exact", "wildcard", "fuzzy")
    entries = []
    for i in range(n):
        kind = kinds[i % 3]
        p = plate(rnd)
        pattern = p[:4] + "*" if kind == "wildcard" else p
        entries.append(HotlistEntry(id=i, city_id=1, pattern=pattern, kind=kind, max_distance=1.0))
    plates = [plate(rnd) for _ in range(m)]
    now = datetime.now(UTC)

    t = time.perf_counter()
    matcher = HotlistMatcher(entries)
    build_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    fast = [len(matcher.matches(p, now)) for p in plates]
    fast_us = (time.perf_counter() - t) / m * 1e6

    regexes = [re.compile(e.pattern.replace("*", ".*").replace("?", ".")) for e in entries]

    def naive(p: str) -> int:
        hits = 0
        for e, rx in zip(entries, regexes, strict=True):
            if e.kind == "exact":
                hits += p == e.pattern
            elif e.kind == "wildcard":
                hits += rx.fullmatch(p) is not None
            else:
                hits += ocr_distance(p, e.pattern) <= e.max_distance
        return hits

    sample = plates[: max(1, m // 10)]
    t = time.perf_counter()
    slow = [naive(p) for p in sample]
    naive_us = (time.perf_counter() - t) / len(sample) * 1e6
    assert slow == fast[: len(sample)], "matcher and naive loop disagree"
    print(f"entries={n} plates={m} build={build_ms:.1f} ms")
    print(f"matcher: {fast_us:.1f} us/plate; naive loop: {naive_us:.1f} us/plate")
    print(f"ratio naive/matcher: {naive_us / fast_us:.1f}x")


if __name__ == "__main__":
    main()
