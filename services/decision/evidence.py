"""The decision's evidence on the wire: a :class:`Candidate` as the ``/identify`` answer's ``debug.candidates`` row
(:class:`~services.common.schemas.CandidateEvidence`), and back.

The gateway writes the rows with :func:`evidence_of`; ``evaluate`` saves them and ``calibrate`` rebuilds the
candidates with :func:`candidate_of` to re-decide offline. Both directions live here so that they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from services.common.schemas import CandidateEvidence, MatchResult
from services.decision.rule import Candidate

Rows = Sequence[CandidateEvidence]
"""One photo's ``debug.candidates`` rows, in the gateway's order (best similarity first)."""


def evidence_of(candidate: Candidate) -> CandidateEvidence:
    """The public row of a candidate: its evidence rounded as the answer shows it; geometric fields null when the
    candidate was not checked."""
    row = CandidateEvidence(
        object_id=candidate.object_id,
        similarity=round(candidate.similarity, 4),
        embedding_rank=candidate.embedding_rank,
        votes=candidate.votes,
    )
    g = candidate.geometric
    if g is None:
        return row
    return msgspec.structs.replace(
        row,
        verified=g.verified,
        reason=g.reason,
        inliers=g.inliers,
        good_matches=g.good_matches,
        inlier_ratio=round(g.inlier_ratio, 3),
        spread=round(g.spread, 3),
        interior_inliers=g.interior_inliers,
        score=round(g.score, 4),
        fine=g.fine,
        query_box=[round(v, 4) for v in g.query_box] if g.query_box is not None else None,
        painting=g.painting,
    )


def candidate_of(row: CandidateEvidence) -> Candidate:
    """The candidate a row describes (no catalogue entry); a row not checked geometrically has no geometric result.

    Rows saved by older gateways may lack fields a check produces (``score``, ``interior_inliers``): they count as 0.
    """
    geometric = None
    if row.checked:
        geometric = MatchResult(
            reference_id=row.object_id,
            verified=bool(row.verified),
            inliers=row.inliers or 0,
            good_matches=row.good_matches or 0,
            inlier_ratio=row.inlier_ratio or 0.0,
            score=row.score or 0.0,
            spread=row.spread or 0.0,
            reason=row.reason,
            query_box=row.query_box,
            interior_inliers=row.interior_inliers or 0,
            fine=bool(row.fine),
            painting=row.painting,
        )
    return Candidate(row.object_id, row.similarity, None, geometric, row.votes, row.embedding_rank)


def to_candidates(rows: Iterable[CandidateEvidence]) -> list[Candidate]:
    """The candidates of one photo's rows, in order."""
    return [candidate_of(row) for row in rows]


def decode_rows(raw: Any) -> list[CandidateEvidence]:
    """Typed rows from decoded JSON (a saved report's ``candidates``, any gateway version's).

    Raises:
        ValueError: when ``raw`` is not a list of candidate rows (the message names the offending field).
    """
    try:
        return msgspec.convert(raw, list[CandidateEvidence])
    except msgspec.ValidationError as exc:
        raise ValueError(f"candidate evidence: {exc}") from exc
