"""The decision: which candidates are answers, and how confident we are. Pure functions, no I/O.

Confidence is a logistic function of evidence (inliers, inlier ratio, spatial spread, embedding similarity), its
weights fitted on labelled photos by ``artwork-matcher calibrate`` so that among answers given with confidence ≥ c
about a share c is right. A candidate is an answer when it verified geometrically and its confidence reaches the
operating threshold. Low-texture works (flat colour fields, noisy photos) give local features little to hold on to,
so when nothing verified, the embedding's clear winner can still be answered by a stricter model of its similarity
and lead over the runner-up (fitted on the photos where verification failed), provided the photo shares a few local
matches with it (a reference with no texture at all looks to an embedding like a plain wall). Without geometric
evidence at all (geometric down, or disabled by the request) only a clear embedding winner is answered.

The gateway decides live with :func:`decide`; ``calibrate`` fits :class:`DecisionParams` and re-decides offline with
the same function (:mod:`services.decision.fitting`), so the fit and the service never disagree about what a
parameter means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import msgspec

from services.common.schemas import MatchResult, ObjectMetadata


@dataclass(frozen=True)
class Candidate:
    """One shortlisted artwork with its evidence."""

    object_id: str
    similarity: float
    metadata: ObjectMetadata | None = None
    geometric: MatchResult | None = None
    votes: int = 0
    """Query descriptors that voted for this artwork (the local-feature shortlist); 0 when not voted for."""
    embedding_rank: int = 0
    """1-based rank among the embedding's candidates; 0 when only the local-feature shortlist proposed it."""


@dataclass(frozen=True)
class DecisionParams:
    """Decision parameters; defaults are hand-set, ``calibrate`` fits and stores better ones.

    Attributes:
        threshold: the operating point: least confidence (0..1) of an answer.
        embedding_threshold: least confidence of an answer while there is no geometric evidence (geometric down,
            or disabled by the request); None: ``threshold``. ``calibrate`` sets it where embedding-only answers
            reach the same target precision, which on real photos takes a higher bar than verified ones.
        min_inliers: fewest homography inliers for a geometric verification to count at all.
        geo_weights: logistic weights on (log1p(inliers), inlier_ratio, spread, similarity).
        geo_bias: logistic bias of the geometric confidence.
        emb_weights: logistic weights on (similarity, margin to the next candidate) for embedding-only answers.
        emb_bias: logistic bias of the embedding-only confidence.
        unverified_weights: logistic weights on (similarity, margin) of the embedding's top candidate when
            verification ran and verified nothing: stricter than ``emb_weights``, since a failed check is evidence.
        unverified_bias: logistic bias of that confidence.
        unverified_min_matches: fewest ratio-test matches between the photo and that top candidate for it to be
            answered so: some local evidence that the painting is in the photo. Without any, a whole-photo
            embedding cannot tell a featureless reference (a flat colour field) from a plain wall; measured on
            simulated gallery pictures, empty walls came closer to museum-dev's flat ``mcv_bbdd_00001`` (0.69-0.79)
            than close-ups of it did (0.50-0.66), and were answered as it in 7 of 25; no answer on the real
            photos of either dev set came this way. Four: the matches a homography needs.
        overlap_iou: two verified candidates whose boxes in the photo overlap more than this are one painting.
    """

    threshold: float = 0.5
    embedding_threshold: float | None = None
    min_inliers: int = 12
    geo_weights: tuple[float, float, float, float] = (3.0, 0.0, 0.0, 2.0)
    geo_bias: float = -8.2
    emb_weights: tuple[float, float] = (20.0, 25.0)
    emb_bias: float = -17.5
    unverified_weights: tuple[float, float] = (10.0, 40.0)
    unverified_bias: float = -15.5
    unverified_min_matches: int = 4
    overlap_iou: float = 0.5
    fitted_on: dict[str, object] = field(default_factory=dict)

    def to_mapping(self) -> dict[str, Any]:
        """The parameters as a JSON-ready mapping (what ``decision.json`` holds)."""
        return asdict(self)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> DecisionParams:
        """Parameters from a :meth:`to_mapping` mapping; missing keys take their defaults.

        Raises:
            ValueError: the mapping has keys that are not parameters (a typo such as ``treshold``), or a value of
                the wrong type or shape (the message names it, e.g. ``$.geo_weights``).
        """
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown decision parameters: {sorted(unknown)}")
        try:
            return msgspec.convert(dict(raw), cls)
        except msgspec.ValidationError as exc:
            raise ValueError(f"bad decision parameter: {exc}") from exc

    def cut(self, use_geometric: bool) -> float:
        """The operating threshold of a mode: with geometric evidence, or without."""
        if use_geometric or self.embedding_threshold is None:
            return self.threshold
        return self.embedding_threshold


@dataclass(frozen=True)
class Scored:
    """A candidate with its confidence and how it was verified."""

    candidate: Candidate
    confidence: float
    geometric: bool
    near_duplicate_of: str | None = None
    """The answer this candidate follows as its inseparable near-duplicate (:mod:`services.decision.duplicates`);
    None for an answer in its own right."""


@dataclass(frozen=True)
class Decision:
    """Answers (best first), the remaining candidates ranked as alternatives, and the cut that separated them.

    Attributes:
        matches: the answers, best first.
        alternatives: every other scored candidate, best first.
        threshold: the least confidence an answer needed: the request's threshold, else the mode's operating
            threshold (:meth:`DecisionParams.cut`).
    """

    matches: list[Scored]
    alternatives: list[Scored]
    threshold: float


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def geometric_features(result: MatchResult, similarity: float) -> tuple[float, float, float, float]:
    """The evidence vector the geometric confidence is computed from."""
    return (math.log1p(result.inliers), result.inlier_ratio, result.spread, similarity)


def counts_as_verified(result: MatchResult, min_inliers: int) -> bool:
    """Whether a geometric check verified with at least ``min_inliers`` inliers: the only checks that count."""
    return result.verified and result.inliers >= min_inliers


def geometric_confidence(result: MatchResult, similarity: float, params: DecisionParams) -> float:
    """Confidence that a geometrically checked candidate is right; 0 when it did not verify."""
    if not counts_as_verified(result, params.min_inliers):
        return 0.0
    x = geometric_features(result, similarity)
    return _sigmoid(sum(w * v for w, v in zip(params.geo_weights, x, strict=True)) + params.geo_bias)


def embedding_confidence(similarity: float, margin: float, params: DecisionParams) -> float:
    """Confidence of an embedding-only answer from its similarity and its lead over the runner-up."""
    w_sim, w_margin = params.emb_weights
    return _sigmoid(w_sim * similarity + w_margin * margin + params.emb_bias)


def unverified_confidence(similarity: float, margin: float, params: DecisionParams) -> float:
    """Confidence of the embedding's top candidate when verification ran and verified no candidate."""
    w_sim, w_margin = params.unverified_weights
    return _sigmoid(w_sim * similarity + w_margin * margin + params.unverified_bias)


def has_local_evidence(candidate: Candidate, min_matches: int) -> bool:
    """Whether the photo shares at least ``min_matches`` ratio-test matches with the candidate: what the embedding's
    top candidate needs (``DecisionParams.unverified_min_matches``) to be answered when nothing verified."""
    g = candidate.geometric
    return g is not None and g.good_matches >= min_matches


def top_margin(candidates: list[Candidate]) -> float:
    """The top candidate's similarity lead over the runner-up; 0 without a runner-up (no evidence of a lead: a
    one-artwork collection must not answer every photo)."""
    if len(candidates) < 2:
        return 0.0
    return candidates[0].similarity - candidates[1].similarity


def iou(a: list[float] | None, b: list[float] | None) -> float:
    """Intersection over union of two boxes ``[x0, y0, x1, y1]``; 0 when either is missing."""
    if a is None or b is None:
        return 0.0
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def decide(
    candidates: list[Candidate], params: DecisionParams, *, use_geometric: bool, threshold: float | None = None
) -> Decision:
    """Pick the answers among ``candidates`` (sorted by similarity, best first).

    With geometric evidence, every candidate that verified with confidence ≥ threshold is an answer, except one
    whose region in the photo overlaps a better answer (the same painting); when no candidate verified at all, the
    top candidate can still be answered by :func:`unverified_confidence` when it has local evidence
    (:func:`has_local_evidence`). Without geometric evidence, only the top
    candidate can be an answer, when its embedding confidence reaches the threshold. ``threshold`` overrides the
    mode's operating threshold; the cut applied is returned with the answers.
    """
    cut = params.cut(use_geometric) if threshold is None else threshold
    if use_geometric:
        scored = [
            Scored(c, geometric_confidence(c.geometric, c.similarity, params), True)
            for c in candidates
            if c.geometric is not None
        ]
        top = candidates[0] if candidates else None
        unverified = not any(s.confidence > 0 for s in scored)
        if top is not None and unverified and has_local_evidence(top, params.unverified_min_matches):
            fallback = Scored(top, unverified_confidence(top.similarity, top_margin(candidates), params), False)
            scored = [fallback, *(s for s in scored if s.candidate.object_id != top.object_id)]
    else:
        margin = top_margin(candidates)
        scored = [
            Scored(c, embedding_confidence(c.similarity, margin, params) if i == 0 else 0.0, False)
            for i, c in enumerate(candidates)
        ]
    scored.sort(key=lambda s: (s.confidence, s.candidate.similarity), reverse=True)
    matches: list[Scored] = []
    rest: list[Scored] = []
    for s in scored:
        box = s.candidate.geometric.query_box if s.candidate.geometric else None
        overlapping = any(
            iou(box, m.candidate.geometric.query_box if m.candidate.geometric else None) > params.overlap_iou
            for m in matches
        )
        if s.confidence >= cut and s.confidence > 0 and not overlapping:
            matches.append(s)
        else:
            rest.append(s)
    return Decision(matches=matches, alternatives=rest, threshold=cut)
