"""Near-duplicate references in an answer: when the evidence cannot tell two references of the same picture apart,
answer both. Pure functions, no I/O.

The collection report (``index doctor``, and ``index build`` after a build that changed the snapshot) names the pairs
of references that show (nearly) the same picture. A photo of either verifies against both, and which one wins is
chance, not evidence. :func:`pair_near_duplicates` runs after :func:`~services.decision.rule.decide`: an answer
whose report partner is among the candidates and *inseparable* from it (:func:`inseparable`) gets the partner right
after it, marked ``near_duplicate_of`` the answer; otherwise the answer stands alone as before.

Whether a partner is inseparable depends only on the two candidates' evidence, never on the threshold: a partner
that verified overlaps its answer's box, so the decision keeps it out of the answers at every threshold, and it is
named exactly when its answer is. Evaluating at threshold 0 therefore still serves every threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from services.decision.rule import Candidate, Decision, DecisionParams, Scored, counts_as_verified, iou

NearDuplicates = Mapping[str, frozenset[str]]
"""Per object id, the object ids the collection report names as its near-duplicates (symmetric)."""


@dataclass(frozen=True)
class NearDuplicateRule:
    """When two near-duplicate references count as inseparable for one photo.

    Attributes:
        min_inlier_share: an answer verified geometrically is inseparable from its partner when the partner verified
            too (at least the decision's ``min_inliers``), in the same place of the photo (box overlap above the
            decision's ``overlap_iou``), with at least this share of the answer's inliers.
        max_similarity_gap: an answer given on the embedding alone (verification off or down, or nothing verified)
            is inseparable from its partner when the partner did not verify either and its similarity is at most
            this far below the answer's.
    """

    min_inlier_share: float = 0.8
    max_similarity_gap: float = 0.02


def inseparable(
    answer: Scored, partner: Candidate, params: DecisionParams, rule: NearDuplicateRule | None = None
) -> bool:
    """Whether the photo's evidence cannot tell ``answer`` from its near-duplicate ``partner`` (see
    :class:`NearDuplicateRule`)."""
    rule = rule or NearDuplicateRule()
    mine = answer.candidate.geometric
    theirs = partner.geometric
    partner_verified = theirs is not None and counts_as_verified(theirs, params.min_inliers)
    if answer.geometric:
        return (
            mine is not None
            and theirs is not None
            and partner_verified
            and theirs.inliers >= rule.min_inlier_share * mine.inliers
            and iou(mine.query_box, theirs.query_box) > params.overlap_iou
        )
    return not partner_verified and answer.candidate.similarity - partner.similarity <= rule.max_similarity_gap


def pair_near_duplicates(
    decision: Decision,
    candidates: list[Candidate],
    near_duplicates: NearDuplicates,
    params: DecisionParams,
    rule: NearDuplicateRule | None = None,
) -> Decision:
    """``decision`` with each answer's inseparable near-duplicate partner placed right after it.

    A partner comes from the candidates that are not answers (never another answer: it does not displace or repeat
    an artwork of a multi-artwork answer), is taken once (by the better answer), best partner first when an answer
    has several, and leaves the alternatives. An answer without a partner in the report, or whose partner the
    evidence separates from it, is unchanged.
    """
    if not near_duplicates or not decision.matches:
        return decision
    answered = {s.candidate.object_id for s in decision.matches}
    rest = {s.candidate.object_id: s for s in decision.alternatives}
    by_id = {c.object_id: c for c in candidates}
    taken: set[str] = set()
    matches: list[Scored] = []
    for answer in decision.matches:
        matches.append(answer)
        leader = answer.candidate.object_id
        for object_id in sorted(near_duplicates.get(leader, ()), key=lambda o: _rank(rest.get(o))):
            partner = by_id.get(object_id)
            if object_id in answered or object_id in taken or partner is None:
                continue
            if inseparable(answer, partner, params, rule):
                taken.add(object_id)
                scored = rest.get(object_id) or Scored(partner, 0.0, False)
                matches.append(dataclasses.replace(scored, near_duplicate_of=leader))
    if not taken:
        return decision
    alternatives = [s for s in decision.alternatives if s.candidate.object_id not in taken]
    return Decision(matches=matches, alternatives=alternatives, threshold=decision.threshold)


def _rank(scored: Scored | None) -> tuple[float, float]:
    """Sort key of partners: highest confidence, then highest similarity, first."""
    if scored is None:
        return (0.0, 0.0)
    return (-scored.confidence, -scored.candidate.similarity)
