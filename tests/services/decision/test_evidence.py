"""The decision's evidence on the wire: what the gateway writes, what ``calibrate`` rebuilds, old rows included."""

from __future__ import annotations

import msgspec
import pytest

from services.common.schemas import CandidateEvidence, MatchResult
from services.decision.evidence import candidate_of, decode_rows, evidence_of, to_candidates
from services.decision.rule import Candidate, DecisionParams, decide


def checked(object_id: str, similarity: float, inliers: int, *, votes: int = 0, rank: int = 1) -> Candidate:
    result = MatchResult(
        reference_id=object_id,
        verified=inliers >= 12,
        inliers=inliers,
        good_matches=inliers + 7,
        inlier_ratio=inliers / (inliers + 7),
        score=inliers / (inliers + 25),
        spread=0.41234,
        reason=None if inliers >= 12 else "too_few_inliers",
        query_box=[0.123456, 0.2, 0.654321, 0.9],
        interior_inliers=inliers - 2,
        fine=True,
    )
    return Candidate(object_id, similarity, None, result, votes, rank)


def test_a_checked_candidate_becomes_a_rounded_row_with_every_geometric_field() -> None:
    row = evidence_of(checked("a", 0.812345678, 40, votes=9, rank=2))

    assert (row.object_id, row.similarity, row.embedding_rank, row.votes) == ("a", 0.8123, 2, 9)
    assert row.checked and row.verified is True and row.reason is None
    assert (row.inliers, row.good_matches, row.interior_inliers, row.fine) == (40, 47, 38, True)
    assert (row.inlier_ratio, row.spread, row.score) == (0.851, 0.412, 0.6154)
    assert row.query_box == [0.1235, 0.2, 0.6543, 0.9]


def test_an_unchecked_candidate_has_null_geometric_fields_on_the_wire() -> None:
    row = evidence_of(Candidate("b", 0.5, None, None, votes=3, embedding_rank=0))

    wire = msgspec.json.decode(msgspec.json.encode(row))

    assert not row.checked and candidate_of(row).geometric is None
    assert wire["object_id"] == "b" and wire["votes"] == 3 and wire["embedding_rank"] == 0
    assert wire["verified"] is None and wire["inliers"] is None and wire["query_box"] is None


def test_rows_rebuild_candidates_that_decide_the_same_as_the_rounded_originals() -> None:
    originals = [checked("a", 0.9, 60), checked("b", 0.8, 5), Candidate("c", 0.7, None, None)]
    rows = [evidence_of(c) for c in originals]
    params = DecisionParams()

    rebuilt = to_candidates(msgspec.json.decode(msgspec.json.encode(rows), type=list[CandidateEvidence]))

    assert [evidence_of(c) for c in rebuilt] == rows
    live = decide(originals, params, use_geometric=True, threshold=0.0)
    offline = decide(rebuilt, params, use_geometric=True, threshold=0.0)
    assert [s.candidate.object_id for s in offline.matches] == [s.candidate.object_id for s in live.matches]
    assert [s.confidence for s in offline.matches] == pytest.approx([s.confidence for s in live.matches], abs=1e-3)


def test_rows_of_an_older_gateway_decode_with_the_missing_fields_as_zero() -> None:
    # rows as gateways before the typed evidence wrote them: no ``score``, and older still without ranks or votes
    raw = [
        {"object_id": "a", "similarity": 0.9, "inliers": 40, "good_matches": 50, "inlier_ratio": 0.8, "spread": 0.3,
         "verified": True, "reason": None, "query_box": None},
        {"object_id": "b", "similarity": 0.6},
    ]  # fmt: skip

    rows = decode_rows(raw)
    a, b = to_candidates(rows)

    assert rows[0].score is None and rows[0].embedding_rank == 0 and rows[1].verified is None
    assert a.geometric is not None and a.geometric.inliers == 40 and a.geometric.score == 0.0
    assert a.geometric.interior_inliers == 0 and b.geometric is None


def test_a_row_that_breaks_the_contract_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="similarity"):
        decode_rows([{"object_id": "a", "similarity": "high"}])
    with pytest.raises(ValueError, match="object_id"):
        decode_rows([{"similarity": 0.5}])
