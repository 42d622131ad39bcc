"""The decision: verified candidates answered best first, one answer per painting, no match without evidence."""

from __future__ import annotations

import dataclasses
import json

import msgspec
import pytest

from services.common.schemas import MatchResult
from services.decision.rule import (
    Candidate,
    DecisionParams,
    decide,
    embedding_confidence,
    geometric_confidence,
)

PARAMS = DecisionParams()


def result(object_id: str, *, inliers: int, verified: bool = True, box: list[float] | None = None) -> MatchResult:
    good = inliers + 10
    return MatchResult(
        reference_id=object_id,
        verified=verified,
        inliers=inliers,
        good_matches=good,
        inlier_ratio=inliers / good,
        score=inliers / (inliers + 25),
        spread=0.5,
        reason=None if verified else "too_few_inliers",
        query_box=box,
    )


def candidate(object_id: str, similarity: float, **geometric) -> Candidate:
    return Candidate(object_id, similarity, None, result(object_id, **geometric) if geometric else None)


def ids(scored) -> list[str]:
    return [s.candidate.object_id for s in scored]


def test_answers_every_verified_candidate_above_threshold_best_first():
    candidates = [
        candidate("similar-but-weak", 0.80, inliers=15, box=[0.0, 0.0, 0.4, 0.4]),
        candidate("strong", 0.60, inliers=200, box=[0.5, 0.5, 1.0, 1.0]),
        candidate("middle", 0.55, inliers=60, box=[0.5, 0.0, 1.0, 0.4]),
    ]

    decision = decide(candidates, PARAMS, use_geometric=True)

    assert ids(decision.matches) == ["strong", "middle", "similar-but-weak"]
    confidences = [s.confidence for s in decision.matches]
    assert confidences == sorted(confidences, reverse=True)
    assert all(PARAMS.threshold <= c <= 1.0 for c in confidences)
    assert all(s.geometric for s in decision.matches)
    assert decision.alternatives == []


def test_returns_no_match_when_no_candidate_verifies():
    candidates = [
        candidate("a", 0.95, inliers=8, verified=False),
        candidate("b", 0.90, inliers=0, verified=False),
    ]

    decision = decide(candidates, PARAMS, use_geometric=True)

    assert decision.matches == []
    assert ids(decision.alternatives) == ["a", "b"]
    top, other = decision.alternatives
    assert 0.0 < top.confidence < PARAMS.threshold and not top.geometric
    assert other.confidence == 0.0


def test_a_clear_embedding_winner_is_answered_when_nothing_verified():
    candidates = [
        candidate("flat-colour-field", 0.84, inliers=7, verified=False),
        candidate("b", 0.56, inliers=0, verified=False),
    ]

    decision = decide(candidates, PARAMS, use_geometric=True)

    assert ids(decision.matches) == ["flat-colour-field"]
    assert not decision.matches[0].geometric
    assert decision.matches[0].confidence >= PARAMS.threshold


def test_the_embedding_winner_needs_some_local_matches_with_the_photo():
    # a featureless reference (a flat colour field) against an empty wall: a clear winner, but nothing matched
    wall = msgspec.structs.replace(result("flat-colour-field", inliers=0, verified=False), good_matches=0)
    candidates = [Candidate("flat-colour-field", 0.84, None, wall), candidate("b", 0.56, inliers=0, verified=False)]

    refused = decide(candidates, PARAMS, use_geometric=True)

    assert refused.matches == []
    assert [s.confidence for s in refused.alternatives] == [0.0, 0.0]
    enough = msgspec.structs.replace(wall, good_matches=PARAMS.unverified_min_matches)
    answered = decide([dataclasses.replace(candidates[0], geometric=enough), candidates[1]], PARAMS, use_geometric=True)
    assert ids(answered.matches) == ["flat-colour-field"]
    unchecked = decide([Candidate("x", 0.84), Candidate("y", 0.56)], PARAMS, use_geometric=True)
    assert unchecked.matches == []


def test_the_embedding_winner_is_not_answered_beside_a_verified_artwork():
    candidates = [
        candidate("unverified-top", 0.84, inliers=7, verified=False),
        candidate("verified", 0.56, inliers=80),
    ]

    decision = decide(candidates, PARAMS, use_geometric=True)

    assert ids(decision.matches) == ["verified"]
    assert ids(decision.alternatives) == ["unverified-top"]
    assert decision.alternatives[0].confidence == 0.0


def test_the_embedding_winner_needs_a_lead_over_the_runner_up():
    candidates = [
        candidate("a", 0.88, inliers=5, verified=False),
        candidate("b", 0.82, inliers=5, verified=False),
    ]

    assert decide(candidates, PARAMS, use_geometric=True).matches == []


def test_a_verification_below_the_minimum_inliers_does_not_count():
    weak = result("a", inliers=PARAMS.min_inliers - 1)

    assert geometric_confidence(weak, 0.99, PARAMS) == 0.0
    assert decide([Candidate("a", 0.99, None, weak)], PARAMS, use_geometric=True).matches == []


def test_candidates_below_the_threshold_are_alternatives():
    candidates = [candidate("a", 0.3, inliers=12)]
    confidence = geometric_confidence(candidates[0].geometric, 0.3, PARAMS)
    assert confidence > 0.0

    assert ids(decide(candidates, PARAMS, use_geometric=True, threshold=confidence).matches) == ["a"]
    refused = decide(candidates, PARAMS, use_geometric=True, threshold=min(1.0, confidence + 1e-6))
    assert refused.matches == [] and ids(refused.alternatives) == ["a"]


def test_confidence_grows_with_inliers():
    values = [geometric_confidence(result("a", inliers=n), 0.5, PARAMS) for n in (12, 20, 40, 80, 160)]

    assert values == sorted(values) and len(set(values)) == len(values)


def test_overlapping_boxes_collapse_to_the_most_confident_one():
    candidates = [
        candidate("copy", 0.90, inliers=40, box=[0.10, 0.10, 0.60, 0.60]),
        candidate("original", 0.85, inliers=150, box=[0.12, 0.12, 0.62, 0.62]),
        candidate("elsewhere", 0.50, inliers=60, box=[0.70, 0.10, 0.95, 0.50]),
    ]

    decision = decide(candidates, PARAMS, use_geometric=True)

    assert ids(decision.matches) == ["original", "elsewhere"]
    assert ids(decision.alternatives) == ["copy"] and decision.alternatives[0].confidence >= PARAMS.threshold


def test_boxes_touching_but_not_overlapping_enough_stay_separate_answers():
    candidates = [
        candidate("left", 0.9, inliers=100, box=[0.0, 0.0, 0.6, 1.0]),
        candidate("right", 0.8, inliers=100, box=[0.4, 0.0, 1.0, 1.0]),  # IoU 0.25
    ]

    assert sorted(ids(decide(candidates, PARAMS, use_geometric=True).matches)) == ["left", "right"]


def test_candidates_without_a_geometric_result_are_left_out_of_a_geometric_decision():
    candidates = [candidate("unchecked", 0.99), candidate("checked", 0.5, inliers=100)]

    decision = decide(candidates, PARAMS, use_geometric=True)

    assert ids(decision.matches) == ["checked"] and decision.alternatives == []


def test_embedding_only_answers_a_clear_top_one():
    candidates = [candidate("clear", 0.97), candidate("next", 0.60), candidate("third", 0.55)]

    decision = decide(candidates, PARAMS, use_geometric=False)

    assert ids(decision.matches) == ["clear"]
    assert decision.matches[0].geometric is False
    assert decision.matches[0].confidence == pytest.approx(embedding_confidence(0.97, 0.37, PARAMS))
    assert ids(decision.alternatives) == ["next", "third"]
    assert all(s.confidence == 0.0 for s in decision.alternatives)


def test_embedding_only_refuses_a_top_one_close_to_the_runner_up():
    candidates = [candidate("a", 0.80, inliers=100), candidate("b", 0.79)]

    decision = decide(candidates, PARAMS, use_geometric=False)  # geometric evidence is ignored on this path

    assert decision.matches == []


def test_embedding_only_never_answers_more_than_one():
    candidates = [candidate("a", 0.99), candidate("b", 0.98), candidate("c", 0.97)]

    assert ids(decide(candidates, PARAMS, use_geometric=False, threshold=0.0).matches) == ["a"]


def test_no_candidates_is_no_match():
    for use_geometric in (True, False):
        decision = decide([], PARAMS, use_geometric=use_geometric)
        assert decision.matches == [] and decision.alternatives == []


def test_params_round_trip_through_a_json_mapping():
    fitted = DecisionParams(
        threshold=0.7,
        min_inliers=15,
        geo_weights=(2.5, 1.0, 0.5, 1.5),
        geo_bias=-7.0,
        emb_weights=(18.0, 22.0),
        emb_bias=-16.0,
        overlap_iou=0.4,
        fitted_on={"photos": 120, "set": "dev"},
    )

    again = DecisionParams.from_mapping(json.loads(json.dumps(fitted.to_mapping())))

    assert again == fitted
    assert isinstance(again.geo_weights, tuple) and isinstance(again.emb_weights, tuple)
    assert DecisionParams.from_mapping({}) == DecisionParams()


def test_unknown_parameter_keys_are_rejected():
    raw = {**DecisionParams().to_mapping(), "treshold": 0.9}

    with pytest.raises(ValueError, match="treshold"):
        DecisionParams.from_mapping(raw)


@pytest.mark.parametrize(
    ("raw", "where"),
    [({"threshold": "0.5"}, "threshold"), ({"geo_weights": [1.0, 2.0]}, "geo_weights"), ({"min_inliers": 1.5}, "min")],
)
def test_parameters_of_the_wrong_type_or_shape_are_rejected_naming_them(raw, where):
    with pytest.raises(ValueError, match=where):
        DecisionParams.from_mapping(raw)


def test_decide_returns_the_operating_threshold_of_its_mode():
    params = dataclasses.replace(PARAMS, threshold=0.6, embedding_threshold=0.8)
    candidates = [candidate("strong", 0.9, inliers=200), candidate("weak", 0.5, inliers=13)]

    full = decide(candidates, params, use_geometric=True)
    embedding_only = decide(candidates, params, use_geometric=False)

    assert full.threshold == 0.6 and embedding_only.threshold == 0.8
    assert all(s.confidence >= full.threshold for s in full.matches)
    assert all(s.confidence >= embedding_only.threshold for s in embedding_only.matches)


def test_decide_returns_the_requests_threshold_when_one_is_given():
    candidates = [candidate("strong", 0.9, inliers=200), candidate("weak", 0.5, inliers=13)]
    weak = geometric_confidence(result("weak", inliers=13), 0.5, PARAMS)

    lenient = decide(candidates, PARAMS, use_geometric=True, threshold=0.0)
    strict = decide(candidates, PARAMS, use_geometric=True, threshold=1.0)

    assert lenient.threshold == 0.0 and ids(lenient.matches) == ["strong", "weak"] and weak > 0
    assert strict.threshold == 1.0 and strict.matches == []


def test_embedding_only_answers_use_their_own_threshold_when_one_is_set():
    candidates = [candidate("a", 0.9), candidate("b", 0.6)]
    confidence = embedding_confidence(0.9, 0.3, PARAMS)
    strict = dataclasses.replace(PARAMS, threshold=0.5, embedding_threshold=min(1.0, confidence + 0.001))

    assert ids(decide(candidates, PARAMS, use_geometric=False).matches) == ["a"]
    assert decide(candidates, strict, use_geometric=False).matches == []
    assert ids(decide(candidates, strict, use_geometric=False, threshold=0.5).matches) == ["a"]  # per request
    assert strict.cut(True) == 0.5 and strict.cut(False) > confidence
    assert PARAMS.cut(False) == PARAMS.threshold
    assert DecisionParams.from_mapping(strict.to_mapping()) == strict
