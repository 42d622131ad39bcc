"""Near-duplicate references: both answered, flagged, better first, only when the photo cannot tell them apart."""

from __future__ import annotations

from services.decision.duplicates import NearDuplicateRule, inseparable, pair_near_duplicates
from services.decision.rule import Candidate, DecisionParams, Scored, decide
from tests.services.decision.test_rule import candidate

PARAMS = DecisionParams()
PAIRS = {"twin-a": frozenset({"twin-b"}), "twin-b": frozenset({"twin-a"})}
HERE = [0.2, 0.2, 0.7, 0.7]
ELSEWHERE = [0.75, 0.0, 1.0, 0.3]


def answer_of(candidates: list[Candidate], pairs=PAIRS, *, use_geometric: bool = True):
    decision = decide(candidates, PARAMS, use_geometric=use_geometric)
    return pair_near_duplicates(decision, candidates, pairs, PARAMS)


def listed(scored: list[Scored]) -> list[tuple[str, str | None]]:
    return [(s.candidate.object_id, s.near_duplicate_of) for s in scored]


def test_inseparable_twins_are_both_answered_the_better_first_and_the_other_flagged():
    candidates = [
        candidate("twin-b", 0.91, inliers=90, box=HERE),
        candidate("twin-a", 0.90, inliers=100, box=HERE),
        candidate("other", 0.60, inliers=3, verified=False),
    ]

    decision = answer_of(candidates)

    assert listed(decision.matches) == [("twin-a", None), ("twin-b", "twin-a")]
    assert decision.matches[0].confidence > decision.matches[1].confidence
    assert [s.candidate.object_id for s in decision.alternatives] == ["other"]


def test_twins_the_evidence_separates_are_answered_alone():
    candidates = [
        candidate("twin-a", 0.90, inliers=100, box=HERE),
        candidate("twin-b", 0.89, inliers=79, box=HERE),  # under 0.8 of the answer's inliers
    ]

    decision = answer_of(candidates)

    assert listed(decision.matches) == [("twin-a", None)]
    assert [s.candidate.object_id for s in decision.alternatives] == ["twin-b"]


def test_a_partner_that_did_not_verify_separates_a_verified_answer():
    candidates = [
        candidate("twin-a", 0.90, inliers=100, box=HERE),
        candidate("twin-b", 0.90, inliers=8, verified=False, box=HERE),
    ]

    assert listed(answer_of(candidates).matches) == [("twin-a", None)]


def test_a_partner_verified_elsewhere_in_the_photo_is_another_painting_not_an_ambiguity():
    twin = candidate("twin-b", 0.9, inliers=100, box=ELSEWHERE)
    answer = Scored(candidate("twin-a", 0.9, inliers=100, box=HERE), 0.99, True)

    assert not inseparable(answer, twin, PARAMS)
    decision = answer_of([answer.candidate, twin])
    assert listed(decision.matches) == [("twin-a", None), ("twin-b", None)]  # two answers in their own right


def test_an_answer_without_a_partner_in_the_report_is_unchanged():
    candidates = [
        candidate("twin-a", 0.90, inliers=100, box=HERE),
        candidate("look-alike", 0.90, inliers=100, box=HERE),
    ]
    plain = decide(candidates, PARAMS, use_geometric=True)

    assert answer_of(candidates) == plain
    assert answer_of(candidates, {}) == plain
    assert listed(plain.matches) == [("twin-a", None)]


def test_a_partner_that_is_not_a_candidate_is_not_answered():
    candidates = [candidate("twin-a", 0.90, inliers=100, box=HERE), candidate("other", 0.5, inliers=2, verified=False)]

    assert listed(answer_of(candidates).matches) == [("twin-a", None)]


def test_embedding_only_twins_within_the_similarity_gap_are_both_answered():
    close = [Candidate("twin-a", 0.95), Candidate("twin-b", 0.94), Candidate("other", 0.5)]
    apart = [Candidate("twin-a", 0.95), Candidate("twin-b", 0.90), Candidate("other", 0.5)]

    assert listed(answer_of(close, use_geometric=False).matches) == [("twin-a", None), ("twin-b", "twin-a")]
    assert listed(answer_of(apart, use_geometric=False).matches) == [("twin-a", None)]


def test_the_partner_never_displaces_or_repeats_another_answer():
    candidates = [
        candidate("twin-a", 0.90, inliers=100, box=HERE),
        candidate("twin-b", 0.89, inliers=95, box=HERE),
        candidate("second", 0.70, inliers=120, box=ELSEWHERE),
    ]

    decision = answer_of(candidates)

    assert listed(decision.matches) == [("second", None), ("twin-a", None), ("twin-b", "twin-a")]
    assert [s.candidate.object_id for s in decision.alternatives] == []


def test_the_rule_is_the_same_at_every_threshold():
    candidates = [candidate("twin-a", 0.90, inliers=100, box=HERE), candidate("twin-b", 0.90, inliers=90, box=HERE)]

    for threshold in (0.0, 0.5, 0.99):
        decision = pair_near_duplicates(
            decide(candidates, PARAMS, use_geometric=True, threshold=threshold), candidates, PAIRS, PARAMS
        )
        answered = decision.matches[0].confidence >= threshold if decision.matches else False
        assert listed(decision.matches) == ([("twin-a", None), ("twin-b", "twin-a")] if answered else [])


def test_a_stricter_rule_separates_what_the_default_does_not():
    answer = Scored(candidate("twin-a", 0.9, inliers=100, box=HERE), 0.99, True)
    twin = candidate("twin-b", 0.9, inliers=85, box=HERE)

    assert inseparable(answer, twin, PARAMS)
    assert not inseparable(answer, twin, PARAMS, NearDuplicateRule(min_inlier_share=0.9))
