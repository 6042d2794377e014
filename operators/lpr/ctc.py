"""Format-constrained CTC decoding of a text-recognition model's per-step probabilities.

Greedy CTC decoding (argmax per step, merge repeats, drop blanks) loses characters when the
model does not put a blank between two equal letters (``PJJ`` → ``PJ``) and reads letters where
digits must be. Here the best *alignment* of the steps to a plate pattern is found by Viterbi:
each position of the pattern takes one character of its class (look-alikes of the other class
count for it, see :data:`~gtvision.operators.lpr.plates.TO_LETTER`), separators and unknown glyphs
count as blank, and two equal neighbours may share steps at a penalty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gtvision.events import PlateCandidate
from gtvision.operators.lpr.plates import (
    DIGITS,
    LETTERS,
    TO_DIGIT,
    TO_LETTER,
    PlateFormat,
    top_candidates,
)

ALPHABET = LETTERS + DIGITS
_NEG = -1e9
#: log-penalty for two equal neighbours without a blank step between them
DUPLICATE_PENALTY = math.log(0.05)
#: a look-alike of the other class counts this much for the character it stands for
LOOKALIKE_WEIGHT = 0.8


@dataclass(frozen=True, slots=True)
class Decoded:
    """The best reading of one format: text, log-score per step and the top candidates."""

    format: PlateFormat
    text: str
    score: float
    candidates: tuple[PlateCandidate, ...]
    segments: tuple[tuple[int, int], ...] = ()
    steps: int = 0


class Projection:
    """Folds a model's character set onto plate classes (built once per model)."""

    def __init__(self, charset: Sequence[str], blank: int = 0) -> None:
        index = {ch: i for i, ch in enumerate(charset)}
        n = len(charset)
        self._cols = {
            "L": self._matrix(index, n, letter=True),
            "9": self._matrix(index, n, letter=False),
        }
        self._cols["*"] = np.maximum(self._cols["L"], self._cols["9"])
        # only the few rows of plate characters matter: keep them, fold the rest into the gap
        used = np.flatnonzero(self._cols["*"].sum(axis=1) > 0)
        self._rows = used[used != blank]
        self._cols = {k: m[self._rows] for k, m in self._cols.items()}

    @staticmethod
    def _matrix(index: dict[str, int], n: int, *, letter: bool) -> NDArray[np.float32]:
        m = np.zeros((n, len(ALPHABET)), dtype=np.float32)
        for j, ch in enumerate(ALPHABET):
            for src in {ch, ch.lower()}:
                if src in index:
                    m[index[src], j] = 1.0
        lookalikes = TO_LETTER if letter else TO_DIGIT
        for src, dst in lookalikes.items():
            for s in {src, src.lower()}:
                if s in index:
                    m[index[s], ALPHABET.index(dst)] = max(
                        m[index[s], ALPHABET.index(dst)], LOOKALIKE_WEIGHT
                    )
        return m

    def project(
        self, probs: NDArray[np.float32]
    ) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.float64]]:
        """Per-class character probabilities (T×36 each) and the gap probability (T)."""
        sub = probs[:, self._rows].astype(np.float64)
        classes = {k: sub @ m for k, m in self._cols.items()}
        gap = np.clip(1.0 - sub.sum(axis=1), 0.0, 1.0)
        return classes, gap


def _mask(allowed: str) -> NDArray[np.bool_]:
    return np.array([ch in allowed for ch in ALPHABET])


def decode(
    probs: NDArray[np.float32],
    projection: Projection,
    fmt: PlateFormat,
    k: int = 3,
) -> Decoded | None:
    """Viterbi-align ``probs`` (T×C softmax output) to ``fmt``; ``None`` if too few steps."""
    steps = probs.shape[0]
    n = len(fmt)
    if steps < n:
        return None
    classes, gap_p = projection.project(probs)
    lg = np.log(np.clip(gap_p, 1e-12, 1.0))
    emit = np.full((n, steps, len(ALPHABET)), _NEG)
    for i, cls in enumerate(fmt.pattern):
        lp = np.log(np.clip(classes[cls], 1e-12, 1.0))
        emit[i] = np.where(_mask(fmt.slots[i])[None, :], lp, _NEG)
    # gap[i]: after position i-1 (gap[0] before the first char); slot[i, c]: in position i
    gap = np.full((steps, n + 1), _NEG)
    slot = np.full((steps, n, len(ALPHABET)), _NEG)
    gap[0, 0] = lg[0]
    slot[0, 0] = emit[0, 0]
    for t in range(1, steps):
        g_prev, s_prev = gap[t - 1], slot[t - 1]
        best_prev = s_prev.max(axis=1)
        gap[t, 0] = g_prev[0] + lg[t]
        gap[t, 1:] = np.maximum(g_prev[1:], best_prev) + lg[t]
        # entering position i from the gap before it, or straight from position i-1
        enter = np.empty((n, len(ALPHABET)))
        enter[0] = g_prev[0]
        top2 = np.sort(s_prev[:-1], axis=1)[:, -2:]
        arg = s_prev[:-1].argmax(axis=1)
        other = np.repeat(top2[:, 1:2], len(ALPHABET), axis=1)
        rows = np.arange(n - 1)
        other[rows, arg] = top2[:, 0]  # best of a *different* char in position i-1
        same = s_prev[:-1] + DUPLICATE_PENALTY
        enter[1:] = np.maximum(np.maximum(g_prev[1:n, None], other), same)
        slot[t] = np.maximum(s_prev, enter) + emit[:, t]
    end_gap, end_slot = gap[-1, n], slot[-1, n - 1].max()
    score = max(end_gap, end_slot)
    if score <= _NEG / 2:
        return None
    segments = _backtrack(gap, slot, emit, lg, end_in_gap=end_gap >= end_slot)
    slot_scores: list[dict[str, float]] = []
    for i, (t0, t1, _) in enumerate(segments):
        mask = _mask(fmt.slots[i])
        cls = classes[fmt.pattern[i]][t0 : t1 + 1].max(axis=0)
        slot_scores.append({ALPHABET[j]: float(cls[j]) for j in np.flatnonzero(mask)})
    text = "".join(ALPHABET[c] for _, _, c in segments)
    cands = top_candidates(slot_scores, k)
    if cands and cands[0].text != text:
        # the aligned best path wins over the per-segment maxima when they disagree
        cands = [c for c in cands if c.text == text] + [c for c in cands if c.text != text]
    spans = tuple((t0, t1) for t0, t1, _ in segments)
    return Decoded(fmt, text, float(score) / steps, tuple(cands[:k]), spans, steps)


def _backtrack(
    gap: NDArray[np.float64],
    slot: NDArray[np.float64],
    emit: NDArray[np.float64],
    lg: NDArray[np.float64],
    *,
    end_in_gap: bool,
) -> list[tuple[int, int, int]]:
    """Return ``(first step, last step, char index)`` per position of the best path."""
    steps, n = slot.shape[0], slot.shape[1]
    pos = n - 1
    in_gap = end_in_gap
    char = int(slot[-1, n - 1].argmax())
    gap_pos = n
    spans: dict[int, list[int]] = {}
    chars: dict[int, int] = {}
    for t in range(steps - 1, -1, -1):
        if in_gap:
            if t == 0:
                break
            cur = gap[t, gap_pos] - lg[t]
            if gap_pos > 0 and math.isclose(
                cur, slot[t - 1, gap_pos - 1].max(), rel_tol=0, abs_tol=1e-9
            ):
                in_gap = False
                pos = gap_pos - 1
                char = int(slot[t - 1, pos].argmax())
            continue
        spans.setdefault(pos, [t, t])[0] = t
        chars[pos] = char
        if t == 0:
            break
        cur = slot[t, pos, char] - emit[pos, t, char]
        if math.isclose(cur, slot[t - 1, pos, char], rel_tol=0, abs_tol=1e-9):
            continue
        if pos > 0 and math.isclose(cur, gap[t - 1, pos], rel_tol=0, abs_tol=1e-9):
            in_gap, gap_pos = True, pos
            continue
        if pos > 0:
            prev = slot[t - 1, pos - 1].copy()
            prev[char] += DUPLICATE_PENALTY
            pos, char = pos - 1, int(prev.argmax())
            continue
        in_gap, gap_pos = True, 0
    return [(spans[i][0], spans[i][1], chars[i]) for i in range(n)]
