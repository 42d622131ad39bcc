"""Conversions between the pure geometric types and the wire contracts."""

from __future__ import annotations

import numpy as np

from services.collection.features import DESCRIPTOR_SIZE, FeatureSet
from services.common.arrays import decode_array, encode_array
from services.common.errors import InvalidFields
from services.common.schemas import Features, MatchResult
from services.geometric.verify import PairResult

SCORE_HALF_INLIERS = 25.0
"""Inliers at which ``score`` reaches 0.5: score = inliers / (inliers + 25), a bounded strength of the match."""


def features_to_wire(features: FeatureSet) -> Features:
    """A :class:`FeatureSet` as base64 arrays."""
    return Features(
        keypoints=encode_array(features.keypoints),
        descriptors=encode_array(features.descriptors),
        count=len(features.keypoints),
        width=features.width,
        height=features.height,
    )


def features_from_wire(wire: Features, *, max_keypoints: int) -> FeatureSet:
    """Decode and validate client-sent features (count limit, shapes, finite coordinates)."""
    if wire.count > max_keypoints:
        raise InvalidFields(
            f"{wire.count} keypoints sent; at most {max_keypoints}", details={"count": wire.count, "max": max_keypoints}
        )
    keypoints = decode_array(wire.keypoints, np.float32, 2, wire.count, field="query.keypoints")
    descriptors = decode_array(wire.descriptors, np.uint8, DESCRIPTOR_SIZE, wire.count, field="query.descriptors")
    if not np.isfinite(keypoints).all():
        raise InvalidFields("query.keypoints must be finite", details={"field": "query.keypoints"})
    return FeatureSet(keypoints, descriptors, wire.width, wire.height)


def result_to_wire(object_id: str, result: PairResult | None) -> MatchResult:
    """A :class:`PairResult` (None: unknown reference) as a wire result."""
    if result is None:
        return MatchResult(object_id, False, 0, 0, 0.0, 0.0, 0.0, reason="unknown_reference")
    return MatchResult(
        reference_id=object_id,
        verified=result.verified,
        inliers=result.inliers,
        good_matches=result.good_matches,
        inlier_ratio=float(result.inlier_ratio),
        score=result.inliers / (result.inliers + SCORE_HALF_INLIERS),
        spread=float(result.spread),
        reason=result.reason,
        homography=[float(v) for v in result.homography.ravel()] if result.homography is not None else None,
        query_box=[float(v) for v in result.query_box] if result.query_box is not None else None,
        interior_inliers=result.interior_inliers,
        fine=result.fine,
    )
