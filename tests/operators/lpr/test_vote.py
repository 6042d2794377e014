from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from gtvision.operators.lpr.ocrdist import levenshtein_bound, ocr_distance
from gtvision.operators.lpr.vote import Ballot, vote

ALPHABET = string.ascii_uppercase + string.digits
texts = st.text(alphabet=ALPHABET, min_size=1, max_size=8)
weights = st.floats(min_value=0.05, max_value=1.0, allow_nan=False)


@st.composite
def ballots(draw: st.DrawFn, text: str | None = None, uniform: bool = False) -> Ballot:
    t = text if text is not None else draw(texts)
    if uniform:
        return Ballot(t, (draw(weights),) * len(t))
    ws = draw(st.lists(weights, min_size=len(t), max_size=len(t)))
    return Ballot(t, tuple(ws))


@given(st.lists(ballots(), min_size=1, max_size=8), st.randoms())
def test_vote_is_independent_of_ballot_order(bs: list[Ballot], rnd: object) -> None:
    shuffled = list(bs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert vote(bs) == vote(shuffled)


@given(texts, st.integers(min_value=1, max_value=6), weights)
def test_unanimous_ballots_give_their_text(text: str, n: int, w: float) -> None:
    result = vote([Ballot(text, (w,) * len(text))] * n)
    assert result.text == text
    assert all(s == 1.0 for s in result.shares)
    assert abs(result.confidence - w) < 1e-9


@given(st.data())
def test_weighted_majority_wins(data: st.DataObject) -> None:
    winner = data.draw(texts)
    # with one confidence per read, a strict majority of the weight decides every position
    major = data.draw(st.lists(ballots(winner, uniform=True), min_size=1, max_size=5))
    minor = data.draw(st.lists(ballots(uniform=True), max_size=5))
    total = sum(b.weight for b in major + minor)
    if sum(b.weight for b in major) <= 0.5 * total + 1e-9:
        return  # not a strict majority of weight: nothing to claim
    assert vote(major + minor).text == winner


@given(st.lists(ballots(), min_size=1, max_size=8))
def test_result_is_well_formed(bs: list[Ballot]) -> None:
    r = vote(bs)
    assert len(r.text) == len(r.shares) == len(r.runner_ups)
    assert len(r.text) in {len(b.text) for b in bs}
    assert 0.0 <= r.confidence <= 1.0
    cands = r.candidates()
    assert cands[0].text == r.text
    assert all(len(c.text) == len(r.text) for c in cands)
    assert len({c.text for c in cands}) == len(cands)


def test_dropped_character_still_votes_on_aligned_positions() -> None:
    r = vote(
        [
            Ballot("ABC1234", (0.5,) * 7),
            Ballot("A8C1234", (0.5,) * 7),
            Ballot("ABC234", (0.9,) * 6),
        ]
    )
    assert r.text == "ABC1234"
    assert r.shares[1] > 0.7  # the short read's B counted at position 1


def test_ocr_distance_is_cheap_for_confusions_only() -> None:
    assert ocr_distance("ABC1D23", "ABC1D23") == 0
    assert ocr_distance("OBC1D23", "0BC1D23") == 0.5
    assert ocr_distance("ABC1D23", "A8C1023") == 1.0
    assert ocr_distance("ABC1D23", "AKC1D23") == 1.0
    assert ocr_distance("ABC1D23", "ABC1D2") == 1.0
    assert ocr_distance("5Z8", "S2B") == 1.5


@given(texts, texts)
def test_ocr_distance_is_symmetric_and_bounded_by_levenshtein(a: str, b: str) -> None:
    from rapidfuzz.distance import Levenshtein

    d = ocr_distance(a, b)
    lev = Levenshtein.distance(a, b)
    assert d == ocr_distance(b, a)
    assert 0.5 * lev <= d <= lev
    assert lev <= levenshtein_bound(d)


def test_quality_scales_votes_not_confidence() -> None:
    # two clean reads against three confident-looking reads of a cut or blurred plate
    clean = [Ballot("ABC1234", (0.9,) * 7, quality=0.9) for _ in range(2)]
    cut = [Ballot("BCX1234", (1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0), quality=0.1) for _ in range(3)]
    assert vote(clean + cut).text == "ABC1234"
    unweighted = [Ballot(b.text, b.weights) for b in clean + cut]
    assert vote(unweighted).text == "BCC1234"  # without quality the cut reads win
    single = vote([Ballot("ABC1234", (0.8,) * 7, quality=0.25)])
    assert abs(single.confidence - 0.8) < 1e-9
