"""Metrics on six hand-written answers whose right numbers are worked out by hand in the comments."""

from __future__ import annotations

import pytest

from services.common.schemas import CandidateEvidence
from services.decision.metrics import (
    Answer,
    LabelledPhoto,
    by_group,
    failures,
    flagged_pairs,
    latency,
    stage_breakdown,
    summarise,
)
from services.decision.reliability import choose_threshold, precision_coverage, reliability, top_answers
from tools.cli.dataset import choose_excluded, labelled_photos


def _photo(name: str, *shown: str) -> LabelledPhoto:
    return LabelledPhoto(name, frozenset(shown), frozenset(shown))


def _answer(matches: list[tuple[str, float]], candidates: list[str], total_ms: float = 100.0) -> Answer:
    rows = tuple(CandidateEvidence(object_id=c, similarity=0.5, inliers=20) for c in candidates)
    return Answer(matches=tuple(matches), candidates=rows, timing={"total_ms": total_ms})


PHOTOS = [
    _photo("a__1", "A"),  # right (0.9), rank 1
    _photo("a__2", "B"),  # wrong answer C (0.7), B at rank 2
    _photo("b__1", "D", "E"),  # D 0.95 and E 0.6: complete at 0.5, incomplete at 0.65; rank 1
    _photo("b__2", "F"),  # right but weak (0.4): missed at 0.5; F at rank 6
    _photo("nonart__1"),  # nothing named: right
    _photo("nonart__2"),  # X named at 0.55: a false alarm at 0.5
]
ANSWERS = [
    _answer([("A", 0.9)], ["A", "B"], 100),
    _answer([("C", 0.7)], ["C", "B"], 200),
    _answer([("D", 0.95), ("E", 0.6)], ["D", "Q", "E"], 300),
    _answer([("F", 0.4)], ["G", "H", "I", "J", "K", "F"], 400),
    _answer([], ["A"], 500),
    _answer([("X", 0.55)], ["X"], 600),
]


def test_rates_at_the_operating_threshold_match_the_hand_count() -> None:
    rates = summarise(PHOTOS, ANSWERS, 0.5).rates()

    assert rates["top1"] == 2 / 4  # a__1, b__1 of the four collection photos
    assert rates["no_match"] == 1 / 2  # nonart__1
    assert rates["precision"] == 2 / 4  # answered a__1, a__2, b__1, nonart__2; two right
    assert rates["complete"] == 1 / 1
    assert rates["mrr"] == pytest.approx((1 + 1 / 2 + 1 + 1 / 6) / 4)
    assert (rates["hit@1"], rates["hit@3"], rates["hit@5"], rates["hit@10"]) == (2 / 4, 3 / 4, 3 / 4, 4 / 4)
    assert rates["no_match_excluded"] is None


def test_a_lower_threshold_answers_the_weak_match_and_a_higher_one_drops_the_false_alarm() -> None:
    low = summarise(PHOTOS, ANSWERS, 0.3)
    high = summarise(PHOTOS, ANSWERS, 0.65)

    assert low.rates()["top1"] == 3 / 4
    assert low.rates()["precision"] == 3 / 5
    assert high.rates()["no_match"] == 2 / 2
    assert high.rates()["precision"] == 2 / 3
    assert high.rates()["complete"] == 0 / 1  # E (0.6) is no longer named
    assert high.wrong_named == 1  # C only


def test_groups_are_the_name_prefix_before_the_double_underscore() -> None:
    groups = by_group(PHOTOS, ANSWERS, 0.5)

    assert list(groups) == ["a", "b", "nonart"]
    assert groups["a"].rates()["top1"] == 1 / 2
    assert groups["b"].rates()["complete"] == 1.0
    assert groups["nonart"].rates()["no_match"] == 1 / 2
    assert LabelledPhoto("plain.jpg", frozenset(), frozenset()).group == "other"


def test_every_failure_is_listed_with_the_wrong_artwork_and_its_evidence() -> None:
    found = failures(PHOTOS, ANSWERS, 0.5)

    assert [(f["photo"], f["failure"]) for f in found] == [
        ("a__2", "wrong answer"),
        ("b__2", "missed"),
        ("nonart__2", "wrong answer"),
    ]
    wrong = found[0]
    assert wrong["answered"] == "C" and wrong["confidence"] == 0.7
    assert wrong["wrong_evidence"]["rank"] == 1 and wrong["wrong_evidence"]["inliers"] == 20
    assert wrong["expected_evidence"]["object_id"] == "B" and wrong["expected_evidence"]["rank"] == 2
    assert found[2]["expected_evidence"] is None
    incomplete = [f for f in failures(PHOTOS, ANSWERS, 0.65) if f["failure"] == "incomplete"]
    assert incomplete == [
        {"photo": "b__1", "kind": "collection", "expected": ["D", "E"], "failure": "incomplete", "missing": ["E"],
         "answered": ["D"], "missing_evidence": [
             {"rank": 3, "object_id": "E", "similarity": 0.5, "embedding_rank": 0, "votes": 0, "inliers": 20}]}
    ]  # fmt: skip


def test_errors_and_wrong_extra_artworks_are_failures_too() -> None:
    photos = [_photo("x__1", "A"), _photo("x__2", "A")]
    answers = [Answer(error="RuntimeError: 503"), _answer([("A", 0.9), ("Z", 0.8)], ["A", "Z"])]

    found = failures(photos, answers, 0.5)
    summary = summarise(photos, answers, 0.5)

    assert [f["failure"] for f in found] == ["error", "wrong extra artwork"]
    assert summary.errors == 1 and summary.wrong_named == 1 and summary.rates()["precision"] == 1.0


def test_latency_percentiles_per_stage() -> None:
    table = latency(ANSWERS)

    assert list(table) == ["total_ms"]
    assert table["total_ms"]["p50"] == pytest.approx(350.0)
    assert table["total_ms"]["mean"] == pytest.approx(350.0)
    assert table["total_ms"]["p99"] == pytest.approx(595.0)


def test_precision_coverage_sweep_at_every_answer_confidence() -> None:
    points = precision_coverage(PHOTOS, ANSWERS)

    assert [p.threshold for p in points] == [0.4, 0.55, 0.7, 0.9, 0.95]
    assert [p.coverage for p in points] == [4 / 4, 3 / 4, 3 / 4, 2 / 4, 1 / 4]
    assert [p.precision for p in points] == pytest.approx([3 / 5, 2 / 4, 2 / 3, 1.0, 1.0])
    assert [p.wrong for p in points] == [2, 2, 1, 0, 0]


def test_threshold_is_the_lowest_confidence_reaching_the_target_precision() -> None:
    tops = top_answers(PHOTOS, ANSWERS)

    assert choose_threshold(tops, 0.99) == 0.9
    assert choose_threshold(tops, 0.6) == 0.4
    assert choose_threshold(tops, 0.6, floor=0.5) == 0.5
    assert choose_threshold([(0.8, False, "none")], 0.5) is None


def test_reliability_bins_count_answers_and_share_right() -> None:
    rows = reliability(top_answers(PHOTOS, ANSWERS), edges=(0.0, 0.5, 1.0))

    assert rows[0] == {"lo": 0.0, "hi": 0.5, "answers": 1, "right": 1, "share_right": 1.0, "mean_confidence": 0.4,
                       "at_least": 3 / 5}  # fmt: skip
    assert (rows[1]["answers"], rows[1]["right"], rows[1]["share_right"]) == (4, 2, 0.5)
    assert rows[1]["mean_confidence"] == pytest.approx((0.55 + 0.7 + 0.9 + 0.95) / 4)
    assert rows[1]["at_least"] == 2 / 4
    assert reliability([(1.0, True, "collection")], edges=(0.0, 0.5, 1.0))[1]["answers"] == 1


def test_excluded_artworks_turn_their_photos_into_no_match_photos() -> None:
    labels = {
        "w4__0": frozenset({"A", "B"}),  # one left out, one indexed: still expects B
        "w4__1": frozenset({"A"}),  # only a left-out artwork: "no match"
        "w4__2": frozenset(),  # no collection artwork at all
    }
    photos = labelled_photos(labels, excluded=frozenset({"A"}))
    answers = [_answer([("B", 0.9)], ["B"]), _answer([], ["C"]), _answer([("C", 0.9)], ["C"])]

    assert [p.kind for p in photos] == ["collection", "excluded", "none"]
    assert photos[0].expected == {"B"} and photos[0].shown == {"A", "B"}
    rates = summarise(photos, answers, 0.5).rates()
    assert (rates["top1"], rates["no_match_excluded"], rates["no_match"]) == (1.0, 1.0, 0.0)
    assert rates["complete"] is None  # one indexed artwork left: not a multi-artwork photo any more


def test_left_out_artworks_are_a_seeded_share_of_the_collection() -> None:
    ids = [f"o{i}" for i in range(8)]

    first = choose_excluded(ids, 0.25, seed=1)

    assert len(first) == 2 and first <= set(ids)
    assert choose_excluded(reversed(ids), 0.25, seed=1) == first
    assert {choose_excluded(ids, 0.25, seed=s) for s in range(6)} != {first}
    assert choose_excluded(ids, 0.0, seed=1) == frozenset()
    with pytest.raises(ValueError):
        choose_excluded(ids, 1.0, seed=1)


def test_stage_breakdown_says_which_stage_found_and_lost_each_labelled_painting():
    photos = [_photo("g__1", "A", "B"), _photo("g__2", "C"), _photo("g__3", "D"), _photo("h__1", "E"), _photo("x__1")]
    rows = {
        "A": CandidateEvidence("A", 0.5, embedding_rank=1, votes=0, verified=True),
        "B": CandidateEvidence("B", 0.5, embedding_rank=0, votes=12, verified=False, reason="too_few_inliers"),
        "D": CandidateEvidence("D", 0.5, embedding_rank=4, votes=3, verified=True),
        "E": CandidateEvidence("E", 0.5, embedding_rank=0, votes=40, verified=True),
    }
    answers = [
        Answer(matches=(("A", 0.9),), candidates=(rows["A"], rows["B"])),  # A answered, B lost in verification
        Answer(candidates=(rows["A"],)),  # C never shortlisted
        Answer(matches=(("D", 0.3),), candidates=(rows["D"],)),  # D verified but under the cut
        Answer(matches=(("E", 0.8),), candidates=(rows["E"],)),  # E found by the votes alone
        Answer(),  # a no-match photo: not counted
    ]

    stages = stage_breakdown(photos, answers, threshold=0.5)

    assert stages["g"] == {
        "paintings": 4,
        "embedding": 2,
        "voted": 2,
        "shortlisted": 3,
        "verified": 2,
        "answered": 1,
        "missed": {"too_few_inliers": 1, "not shortlisted": 1, "below threshold": 1},
    }
    assert stages["h"] | {"missed": None} == {
        "paintings": 1,
        "embedding": 0,
        "voted": 1,
        "shortlisted": 1,
        "verified": 1,
        "answered": 1,
        "missed": None,
    }
    assert set(stages) == {"g", "h"}


def test_a_flagged_near_duplicate_pair_is_right_when_either_is_labelled_and_nothing_else_counts_it():
    photos = [
        _photo("p__1", "B"),  # answered A with its flagged partner B: right (a declared ambiguity)
        _photo("p__2", "A"),  # answered A with its flagged partner B: right, B not a wrong artwork named
        _photo("p__3", "B"),  # answered C with its flagged partner A: wrong
        _photo("p__4", "B", "D"),  # A+B pair and D: complete needs B named as an answer in its own right
        _photo("p__5"),  # a no-match photo answered with a pair: wrong
    ]
    pair = (("A", "B"),)
    answers = [
        Answer(matches=(("A", 0.9),), candidates=(), near_duplicates=pair),
        Answer(matches=(("A", 0.9),), candidates=(), near_duplicates=pair),
        Answer(matches=(("C", 0.9),), candidates=(), near_duplicates=(("C", "A"),)),
        Answer(matches=(("A", 0.9), ("D", 0.8)), candidates=(), near_duplicates=pair),
        Answer(matches=(("A", 0.9),), candidates=(), near_duplicates=pair),
    ]

    summary = summarise(photos, answers, threshold=0.5)

    assert (summary.top1_right, summary.collection) == (3, 4)
    assert (summary.answered_right, summary.answered) == (3, 5)
    assert summary.wrong_named == 2  # C on p__3, A on p__5; never a partner
    assert (summary.multi_complete, summary.multi) == (0, 1)
    assert [f["photo"] for f in failures(photos, answers, 0.5)] == ["p__3", "p__4", "p__5"]
    assert [right for _, right, _ in top_answers(photos, answers)] == [True, True, False, True, False]
    flagged = flagged_pairs(photos, answers, 0.5)
    assert [(f["photo"], f["answered"], f["partner"], f["right"]) for f in flagged][:3] == [
        ("p__1", "A", "B", True),
        ("p__2", "A", "B", True),
        ("p__3", "C", "A", False),
    ]
    assert flagged_pairs(photos, answers, 0.95) == []  # a partner is answered only with its answer
