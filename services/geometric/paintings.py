"""A closer look at one located painting: rectify it, describe it at a higher resolution, let its descriptors vote,
verify the references they point to, and map each result back into the photo.

Small and far paintings are where whole-photo verification fails: on ``estense-dev`` a painting covering 1–6 % of a
GoPro frame gets a few dozen of the photo's 2000 keypoints. Rectified to 560 px with its own 1200 keypoints (the
outer ``shrink`` of the quadrilateral, mostly frame, left out: gilded mouldings would take the strongest keypoints),
the same painting verifies with 15–50 inliers. 800 px with 2000 keypoints verified the same paintings on
``estense-dev`` at half as much again the cost; 640 px without leaving the frame out lost the smallest. Pure
numerics over :mod:`services.geometric.localise`, :mod:`services.geometric.verify` and the
:class:`~services.geometric.references.References`; no web framework.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from services.collection.features import FeatureSet
from services.geometric.localise import Quad, order_corners, rectify
from services.geometric.references import References
from services.geometric.retrieval import Vote
from services.geometric.verify import PairResult, VerifyParams, extract_features


@dataclass(frozen=True)
class CloseLookParams:
    """How a located painting is looked at.

    Attributes:
        side: longest side, pixels, of the rectified crop (small paintings are enlarged to it).
        features: most SIFT keypoints of the crop.
        shrink: share of the quadrilateral's size left out around its edge (the frame), 0..0.4.
    """

    side: int = 560
    features: int = 1200
    shrink: float = 0.12


@dataclass(frozen=True)
class CloseLook:
    """One painting's outcome: its crop's keypoint count, the references its descriptors voted for and each checked
    reference's result in the photo's standard query frame (None: no stored features)."""

    keypoints: int
    votes: list[Vote]
    results: list[tuple[str, PairResult | None]]


def query_frame(width: int, height: int, params: VerifyParams) -> tuple[int, int, float]:
    """The size of a photo's standard query features (``extract_features``) and its scale from photo pixels."""
    scale = min(1.0, params.max_side / max(width, height))
    if scale >= 1.0:
        return width, height, 1.0
    return max(1, round(width * scale)), max(1, round(height * scale)), scale


def inner_quad(corners: np.ndarray, shrink: float) -> Quad:
    """The quadrilateral ``corners`` (fractions of the photo) drawn towards its centre by ``shrink`` of its size."""
    corners = order_corners(corners)
    centre = corners.mean(axis=0)
    return Quad(centre + (corners - centre) * (1.0 - shrink), 1.0)


def describe(
    image: np.ndarray, corners: np.ndarray, verify: VerifyParams, look: CloseLookParams
) -> tuple[FeatureSet, np.ndarray]:
    """The rectified painting's features, and the 3 × 3 homography from crop pixels to the photo's standard query
    frame (where whole-photo results live)."""
    crop, to_photo = rectify(image, inner_quad(corners, look.shrink), look.side)
    features = extract_features(crop, dataclasses.replace(verify, max_side=look.side, n_features=look.features))
    _, _, scale = query_frame(image.shape[1], image.shape[0], verify)
    return features, np.diag([scale, scale, 1.0]) @ to_photo


def in_photo(result: PairResult, to_frame: np.ndarray, reference: FeatureSet, frame: tuple[int, int]) -> PairResult:
    """A crop's result expressed in the photo's standard query frame: homography composed, box recomputed."""
    if result.homography is None:
        return result
    homography = to_frame @ result.homography
    outline = np.array(
        [[0, 0], [reference.width, 0], [reference.width, reference.height], [0, reference.height]], np.float64
    )
    projected = cv2.perspectiveTransform(outline.reshape(-1, 1, 2), homography).reshape(-1, 2)
    width, height = frame
    lo = np.clip(projected.min(axis=0) / [width, height], 0.0, 1.0)
    hi = np.clip(projected.max(axis=0) / [width, height], 0.0, 1.0)
    box = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    return dataclasses.replace(result, homography=homography, query_box=box)


def look_closer(
    references: References,
    image: np.ndarray,
    corners: np.ndarray,
    extra_ids: list[str],
    shortlist: int,
    look: CloseLookParams = CloseLookParams(),
) -> CloseLook:
    """Rectify and describe one located painting, and verify against it the ``shortlist`` references its descriptors
    vote for and ``extra_ids``; results in the photo's standard query frame, voted references first.

    Args:
        references: the stored reference features and their vote index.
        image: (H, W, 3) uint8 RGB photo, as the standard query features were extracted from.
        corners: (4, 2) the painting's corners, fractions of the photo's width and height.
        extra_ids: references to verify besides the voted ones.
        shortlist: most voted references verified.
        look: crop size, keypoints and frame margin.
    """
    params = references.params
    features, to_frame = describe(image, np.asarray(corners, dtype=np.float64), params, look)
    votes = references.shortlist(features, shortlist) if shortlist else []
    ids = list(dict.fromkeys([*(v.object_id for v in votes), *extra_ids]))
    width, height, _ = query_frame(image.shape[1], image.shape[0], params)
    results: list[tuple[str, PairResult | None]] = []
    for object_id, result in references.verify(features, ids) if ids else []:
        reference = references.store.get(object_id)
        if result is not None and reference is not None:
            result = in_photo(result, to_frame, reference, (width, height))
        results.append((object_id, result))
    return CloseLook(len(features), votes, results)


def look_at_each(
    references: References,
    image: np.ndarray,
    paintings: Sequence[tuple[np.ndarray, list[str]]],
    shortlist: int,
    look: CloseLookParams = CloseLookParams(),
) -> list[CloseLook]:
    """:func:`look_closer` at each ``(corners, extra_ids)`` painting, in order; on up to ``references.threads``
    threads at once (OpenCV and FAISS release the GIL: a crop's extraction and vote run while another's verify)."""
    if len(paintings) < 2 or references.threads < 2:
        return [look_closer(references, image, c, ids, shortlist, look) for c, ids in paintings]
    with ThreadPoolExecutor(min(len(paintings), references.threads), thread_name_prefix="look") as pool:
        return list(pool.map(lambda p: look_closer(references, image, p[0], p[1], shortlist, look), paintings))
