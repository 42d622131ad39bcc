"""Conversions between the pure geometric types and the wire contracts."""

from __future__ import annotations

import numpy as np

from services.collection.features import DESCRIPTOR_SIZE, FeatureSet
from services.common.arrays import decode_array, encode_array
from services.common.errors import InvalidFields
from services.common.schemas import Features, LocatedPainting, MatchResult
from services.geometric.localise import Quad
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


def painting_to_wire(quad: Quad) -> LocatedPainting:
    """A located painting (:class:`Quad`) as its wire form, rounded to 4 decimals."""
    return LocatedPainting(
        corners=[[round(float(x), 4), round(float(y), 4)] for x, y in quad.corners],
        box=[round(v, 4) for v in quad.box],
        score=round(quad.score, 4),
    )


def corners_from_wire(corners: list[list[float]], *, field: str) -> np.ndarray:
    """Client-sent painting corners as a (4, 2) float64 array, checked to outline a convex quadrilateral of some
    area (a point, a line or a bow tie cannot be rectified).

    Raises:
        InvalidFields: the corners do not outline a convex quadrilateral.
    """
    points = np.asarray(corners, dtype=np.float64).reshape(4, 2)
    edges = np.roll(points, -1, axis=0) - points
    turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    area = abs(float(np.sum(points[:, 0] * np.roll(points[:, 1], -1) - np.roll(points[:, 0], -1) * points[:, 1]))) / 2
    if not np.isfinite(points).all() or area < 1e-5 or not (np.all(turns > 0) or np.all(turns < 0)):
        raise InvalidFields(
            f"{field} must outline a convex quadrilateral with some area, corners in order",
            details={"field": field},
        )
    return points
