"""Confidence-weighted per-character vote over the reads of one vehicle pass.

Rule (deterministic and independent of the order of the ballots):

0. **Quality.** Each ballot has a ``quality`` factor (1 by default); a read's ballot gets its
   read confidence squared (:meth:`Ballot.of`), so a frame where the plate is cut by the
   picture's edge or blurred (the recogniser is unsure of at least one character, often because
   the format alignment had to invent one) counts far less than a clean frame, even when its
   other characters are confident. Quality scales the votes (steps 1–3), not the confidence.
1. **Length.** Each ballot weighs its mean character confidence times its quality. The
   winning length is the one with the largest total weight (ties: more ballots, then the
   longer text).
2. **Reference.** Ballots of the winning length vote position by position; the winner at each
   position is the character with the largest summed confidence × quality (ties: the smaller
   character).
3. **Other lengths.** A ballot with a dropped or extra character is aligned to the reference
   with Levenshtein opcodes; its characters on ``equal``/``replace`` spans vote at the aligned
   positions, inserted/deleted characters are ignored. This keeps the evidence of a read like
   ``ABC123`` (one digit dropped) for the positions it did see.
4. **Result.** The per-position winners form the text; ``shares[i]`` is the winner's fraction of
   the weight at position ``i``; ``confidence`` is ``mean(shares) * mean ballot weight``, so a
   single ballot keeps its own confidence and disagreement lowers it.

Sums use :func:`math.fsum` over sorted terms, so permuting the ballots cannot flip a tie.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from gtvision.events import PlateCandidate, PlateRead


@dataclass(frozen=True, slots=True)
class Ballot:
    """One read's text, one weight (confidence in [0, 1]) per character, and a quality factor."""

    text: str
    weights: tuple[float, ...]
    quality: float = 1.0

    def __post_init__(self) -> None:
        """Check there is one weight per character."""
        if len(self.weights) != len(self.text):
            msg = f"ballot {self.text!r} has {len(self.weights)} weights for {len(self.text)} chars"
            raise ValueError(msg)

    @classmethod
    def of(cls, read: PlateRead) -> Ballot:
        """Ballot of a read: per-character confidences, read confidence squared as quality.

        A read without per-character confidences gives its confidence to every character.
        """
        quality = read.confidence**2
        chars = read.candidates[0].char_confidences if read.candidates else ()
        if (
            read.candidates
            and read.candidates[0].text == read.text
            and len(chars) == len(read.text)
        ):
            return cls(read.text, tuple(chars), quality)
        return cls(read.text, (read.confidence,) * len(read.text), quality)

    @property
    def weight(self) -> float:
        """Mean character confidence (0 for an empty text)."""
        return math.fsum(self.weights) / len(self.weights) if self.weights else 0.0

    @property
    def votes(self) -> tuple[float, ...]:
        """Per-character votes: weights times quality."""
        return tuple(w * self.quality for w in self.weights)


@dataclass(frozen=True, slots=True)
class VoteResult:
    """Voted text, per-position winner share and runner-up, and overall confidence."""

    text: str
    confidence: float
    shares: tuple[float, ...]
    runner_ups: tuple[tuple[str, float] | None, ...]

    def candidates(self, limit: int = 3) -> tuple[PlateCandidate, ...]:
        """The voted text, then the texts with one uncertain position swapped to its runner-up."""
        best = PlateCandidate(
            text=self.text, confidence=_clamp(self.confidence), char_confidences=self.shares
        )
        out = [best]
        doubtful = sorted(
            (i for i, r in enumerate(self.runner_ups) if r is not None),
            key=lambda i: (self.shares[i], i),
        )
        for i in doubtful[: max(0, limit - 1)]:
            runner = self.runner_ups[i]
            assert runner is not None
            char, share = runner
            shares = (*self.shares[:i], share, *self.shares[i + 1 :])
            ratio = share / self.shares[i] if self.shares[i] > 0 else 0.0
            out.append(
                PlateCandidate(
                    text=self.text[:i] + char + self.text[i + 1 :],
                    confidence=_clamp(self.confidence * ratio),
                    char_confidences=shares,
                )
            )
        return tuple(out)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _winner(tally: dict[str, list[float]]) -> tuple[str, float, tuple[str, float] | None, float]:
    sums = sorted(
        ((math.fsum(sorted(ws)), ch) for ch, ws in tally.items()), key=lambda t: (-t[0], t[1])
    )
    total = math.fsum(sorted(s for s, _ in sums))
    (w_best, c_best), rest = sums[0], sums[1:]
    runner = (rest[0][1], rest[0][0] / total if total > 0 else 0.0) if rest else None
    return c_best, (w_best / total if total > 0 else 0.0), runner, total


def _positional(ballots: Sequence[Ballot], length: int) -> list[dict[str, list[float]]]:
    tallies: list[dict[str, list[float]]] = [defaultdict(list) for _ in range(length)]
    for b in ballots:
        for i, (ch, w) in enumerate(zip(b.text, b.votes, strict=True)):
            tallies[i][ch].append(w)
    return tallies


def vote(ballots: Sequence[Ballot]) -> VoteResult:
    """Confidence-weighted per-character vote (see the module docstring for the rule)."""
    usable = [b for b in ballots if b.text]
    if not usable:
        msg = f"cannot vote on {len(ballots)} ballots: no ballot has any text"
        raise ValueError(msg)
    by_len: dict[int, list[Ballot]] = defaultdict(list)
    for b in usable:
        by_len[len(b.text)].append(b)
    length = max(
        by_len,
        key=lambda n: (
            math.fsum(sorted(b.weight * b.quality for b in by_len[n])),
            len(by_len[n]),
            n,
        ),
    )
    same = by_len[length]
    tallies = _positional(same, length)
    reference = "".join(_winner(t)[0] for t in tallies)
    for b in usable:
        if len(b.text) == length:
            continue
        votes = b.votes
        for block in Levenshtein.opcodes(b.text, reference):
            if block.tag not in {"equal", "replace"}:
                continue
            for k in range(block.src_end - block.src_start):
                src = block.src_start + k
                tallies[block.dest_start + k][b.text[src]].append(votes[src])
    chars: list[str] = []
    shares: list[float] = []
    runners: list[tuple[str, float] | None] = []
    for tally in tallies:
        ch, share, runner, _ = _winner(tally)
        chars.append(ch)
        shares.append(share)
        runners.append(runner)
    mean_weight = math.fsum(sorted(b.weight for b in usable)) / len(usable)
    mean_share = math.fsum(shares) / len(shares)
    return VoteResult(
        text="".join(chars),
        confidence=_clamp(mean_share * mean_weight),
        shares=tuple(_clamp(s) for s in shares),
        runner_ups=tuple(runners),
    )
