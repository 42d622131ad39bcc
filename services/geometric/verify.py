"""Local-feature verification: RootSIFT keypoints on contrast-equalised images, Lowe's ratio test and a MAGSAC++
homography.

The shortlists propose candidates; this module confirms a candidate only when many query keypoints map onto the
reference through one plausible planar homography (a painting is flat). Pure numerics, no web framework: the
geometric service wraps these functions.

Why SIFT and CLAHE: real gallery pictures (dim rooms, varnish glare, action cameras, paintings a tenth of the frame)
defeat ORB. On ``estense-dev`` the labelled painting verified in 5 of 25 cases with ORB (2000 × 400 keypoints) and in
22 of 25 with RootSIFT after CLAHE, with no wrong pair verified in either set (see the README's quality section).

Array contract of a :class:`FeatureSet`: ``keypoints`` (N, 2) float32 pixel coordinates (x, y) in the frame of
``(width, height)``, ``descriptors`` (N, 128) uint8 quantised RootSIFT descriptors (:data:`DESCRIPTOR_SIZE`
columns; see :func:`quantise_rootsift`), row i describing keypoint i.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from services.collection.features import FeatureSet, describe_array

_MIN_HOMOGRAPHY_MATCHES = 4
"""A homography has 8 degrees of freedom: four correspondences are the least that determine it."""

DESCRIPTOR_SCALE = 255.0
"""A RootSIFT component (0..1, the row has unit L2 norm) is stored as ``round(value × DESCRIPTOR_SCALE)``."""


@dataclass(frozen=True)
class VerifyParams:
    """Extraction and verification settings.

    Defaults were chosen on both dev sets (museum-dev's wall photos and estense-dev's gallery pictures) and checked
    on simulated gallery pictures (``bench/gallery_photos.py``): queries at 800 px with 2000 SIFT keypoints after
    CLAHE against references at 640 px with 500 keypoints. Given its own reference, 22 of estense-dev's 25 labelled
    paintings verify (ORB at 640 px: 5), and no wrong pair verifies on either set. Queries at 720 px with 1500
    keypoints cost a third less and verified one estense painting fewer among the ten most-voted references (20
    against 21); 1024 px with 3000 cost half as much again and gained nothing. Since 2026-12-04 references are
    extracted at 480 px (see ``reference_max_side``), and against them queries at 720 px with 1500 keypoints lose
    no real photo's answer (see ``max_side``); since stop 23, 1200 keypoints (see ``n_features``).

    Attributes:
        max_side: longest query side in pixels after downscaling, before extraction (never upscaled). 720 px
            with 1500 keypoints instead of 800 with 2000 (2026-12-04, against 480-px references): the geometric
            service's CPU per photo 184-192 -> 150-156 ms, ``/identify`` p50 171-178 -> 144-148 ms one at a time,
            7.4-7.5 -> 8.7 photos/s at concurrency 8 on two cores. museum-dev, estense-dev, the three open-set
            seeds and two gallery simulations gave the same figures. The captioned simulation lost one complete
            answer (18 instead of 19 of 24): ``mcv_bbdd_00184`` in ``gallery_sim__003_0058``, which had verified
            at the threshold (13 inliers, 6 on the painting) and got 9. 640 px with 1200 lost an estense
            painting (12 of 14).
        n_features: most SIFT keypoints kept per query image, strongest first. 1200 instead of 1500 (2026-12-04,
            stop 23): the vote and every verification compare fewer descriptors and fewer are described, so the
            geometric steps cost 11 % less CPU (``bench/stage_costs.py``, both in turn photo by photo: extract +
            vote + verify 162 -> 144 ms a museum-dev photo on one core) and the geometric service 277 instead of
            303-308 ms a photo at concurrency 8 (alternating pairs of ``bench/identify_latency.py``, 4.41-4.48 ->
            4.73-4.77 photos/s on this machine that day, slower than on earlier days). The same answers on
            museum-dev, estense-dev, the three open-set seeds and three gallery simulations (seeds 0 and 7, seed 3
            with captions), but for the order within six multi-artwork answers; median inliers of the true pairs
            -6 % on museum-dev, -12 % on estense-dev, the lowest unchanged (14).
        reference_max_side: longest reference side in pixels before extraction. A reference is a tight crop of the
            painting, so a smaller frame covers it as densely as ``max_side`` covers a photo of a wall. 480 instead
            of 640 (2026-12-04) costs 31 instead of 57 ms of SIFT a reference on one core, and kept or raised every
            figure: museum-dev top-1 201 → 202 of 202, the open-set runs (seeds 0-2) 153 → 154 of 154, 159 → 160 of
            160 and 100 %, estense-dev unchanged (13 of 14), simulated gallery pictures 26 → 27 of 29 complete and,
            with captions, 52 → 54 of 55; precision and "no match" stayed 100 % everywhere. A photo shows a painting
            smaller than its reference, so 500 keypoints at coarser scales match more of it (median inliers of true
            pairs +3 % on museum-dev, +17 % on estense-dev). 512 gave the 640 answers but for their order
            within a few multi-artwork answers and one unlabelled painting no longer named.
        reference_features: most keypoints kept per reference image; matching cost grows with the product of the
            two counts.
        clahe: equalise local contrast (CLAHE on the grey image) before detection: dark varnished canvases and
            dim rooms give SIFT too little contrast otherwise.
        clahe_clip: CLAHE's clip limit (8 × 8 tiles).
        contrast_threshold: SIFT's detection threshold on local contrast (OpenCV's default 0.04).
        ratio: Lowe's ratio; a match is kept when its distance is below ``ratio`` × the second best's.
        vote_ratio: the same test for the local-feature shortlist, against the nearest descriptor of any other
            reference in the whole collection (``retrieval.py``). Looser than ``ratio``: over hundreds of thousands
            of descriptors a rival is always near, and a wrong vote costs only a verification. 0.9 put 24 of
            estense-dev's 25 labelled paintings among the ten most-voted references (0.8: 21), 93 of 95 on the
            simulated gallery pictures (0.8: 92) and every museum-dev label checked (54 of 54, both).
        ransac_reproj_threshold: largest reprojection error in pixels (query frame) of an inlier.
        max_iters: MAGSAC++ iteration cap; bounds the latency of non-matching pairs.
        confidence: MAGSAC++ stopping confidence (0..1).
        min_inliers: inliers needed to call a pair verified.
        min_scale: smallest local linear scale, query pixels per reference pixel, of a plausible homography.
        max_scale: largest such scale.
        max_anisotropy: largest ratio of the local stretch along two axes (aspect change and shear).
        max_perspective: largest ratio between the projective denominators at the reference's corners, i.e.
            how much foreshortening varies across the painting.
        border: width of the reference's border band, as a fraction of each side. A reference is usually cropped
            with its frame, and frames repeat across a collection (the same gilded moulding around many works):
            on museum-dev every wrong pair with a plausible homography and 10+ inliers had most of them in this band.
        min_interior_inliers: inliers inside the border band (on the painting itself) needed to call a pair
            verified; the frame alone never identifies a painting.
        reference_interior: share of a reference's keypoints kept for the interior (inside the border band) when
            it has that many there, strongest first; the rest are the strongest of the whole image. A carved,
            gilded frame gives SIFT its strongest responses, so a reference cropped with its frame could spend its
            whole budget there and then never verify (``inliers_on_border``) however well it matches; 0 keeps the
            strongest of the whole image. The band holds about half of the image, so a quarter is asked only of
            references whose frame dominates: 2 of 99 museum-dev references needed the second, larger detection,
            and an index build took 2 % longer (0.5: 16 of 99, 17 % longer, the same figures on both dev sets).
        fine_max_side: longest side of the query's second, finer feature set (``extract_features(fine=True)``).
            Small paintings on a wall photo get too few keypoints at ``max_side``; the gateway can retry its best
            unverified candidates against the finer set. Used for queries only.
        fine_features: most keypoints of the finer query set.
    """

    max_side: int = 720
    n_features: int = 1200
    reference_max_side: int = 480
    reference_features: int = 500
    clahe: bool = True
    clahe_clip: float = 3.0
    contrast_threshold: float = 0.04
    ratio: float = 0.8
    vote_ratio: float = 0.9
    ransac_reproj_threshold: float = 5.0
    max_iters: int = 2000
    confidence: float = 0.995
    min_inliers: int = 12
    min_scale: float = 0.05
    max_scale: float = 8.0
    max_anisotropy: float = 4.0
    max_perspective: float = 4.0
    border: float = 0.15
    min_interior_inliers: int = 6
    reference_interior: float = 0.25
    fine_max_side: int = 1024
    fine_features: int = 3000

    def extractor_stamp(self) -> str:
        """Names the extraction settings that reference features depend on: features made with another stamp
        must be extracted again before they can be matched against this extractor's queries."""
        return (
            f"rootsift-v1:clahe={self.clahe_clip if self.clahe else 0}:contrast={self.contrast_threshold}"
            f":side={self.reference_max_side}:n={self.reference_features}"
            + (f":interior={self.reference_interior}@{self.border}" if self.reference_interior > 0 else "")
        )


@dataclass(frozen=True)
class PairResult:
    """Outcome of verifying one reference against a query.

    Attributes:
        verified: True when a plausible homography has at least ``min_inliers`` inliers.
        inliers: matches consistent with the estimated homography.
        good_matches: matches passing the ratio test.
        inlier_ratio: ``inliers / good_matches``, 0 when there are no good matches.
        spread: fraction (0..1) of the reference's area covered by the convex hull of its inlier keypoints.
        homography: 3x3 float64 mapping reference pixel coordinates to query pixel coordinates, or None.
        query_box: ``(x0, y0, x1, y1)`` bounding box of the projected reference outline in the query, as
            fractions of the query's width and height clipped to 0..1, or None.
        reason: None when verified, else ``too_few_matches``, ``no_homography``, ``degenerate_homography``,
            ``too_few_inliers`` or ``inliers_on_border`` (enough inliers, but too few inside the border band).
        interior_inliers: inliers whose reference keypoint lies inside the border band (see ``VerifyParams.border``).
        fine: the result came from the query's finer feature set.
    """

    verified: bool
    inliers: int
    good_matches: int
    inlier_ratio: float
    spread: float
    homography: np.ndarray | None
    query_box: tuple[float, float, float, float] | None
    reason: str | None
    interior_inliers: int = 0
    fine: bool = False


def extract_features(
    image: np.ndarray, params: VerifyParams = VerifyParams(), *, reference: bool = False, fine: bool = False
) -> FeatureSet:
    """Detect SIFT keypoints of an RGB image after downscaling its longest side, with RootSIFT descriptors.

    Downscaling bounds the cost and makes query and reference resolutions comparable; CLAHE (``params.clahe``)
    lifts the texture of dark paintings and glare-washed varnish above SIFT's contrast threshold.

    Args:
        image: (H, W, 3) uint8 RGB pixels; (H, W) uint8 grey is accepted too.
        params: extraction settings.
        reference: the image is a collection reference: ``params.reference_max_side`` and
            ``params.reference_features`` instead of the query's ``max_side`` and ``n_features``.
        fine: the query's finer set: ``params.fine_max_side`` and ``params.fine_features``.

    Returns:
        The features, with keypoints in the downscaled frame, strongest first. An image without texture gives an
        empty set.

    Raises:
        ValueError: the image breaks the array contract.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 array, got {describe_array(image)}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or 0 in image.shape:
        raise ValueError(f"image must be (H, W, 3) RGB or (H, W) grey and non-empty, got shape {image.shape}")
    if reference and fine:
        raise ValueError("fine features are for queries; references are extracted at reference_max_side")
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    if reference:
        side, limit = params.reference_max_side, params.reference_features
    elif fine:
        side, limit = params.fine_max_side, params.fine_features
    else:
        side, limit = params.max_side, params.n_features
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
    if params.clahe:
        grey = cv2.createCLAHE(clipLimit=params.clahe_clip, tileGridSize=(8, 8)).apply(grey)
    sift = cv2.SIFT.create(nfeatures=limit, contrastThreshold=params.contrast_threshold)
    keypoints, descriptors = sift.detectAndCompute(grey, None)
    if descriptors is None or not keypoints:
        return FeatureSet.empty(width, height)
    quota = round(params.reference_interior * limit) if reference else 0
    points = _keypoint_array(keypoints)
    if quota > 0 and len(keypoints) >= limit and _interior_count(points, width, height, params.border) < quota:
        # the painting holds too few of the strongest: detect a larger pool to choose its share from (a second
        # pass, only for such references, mostly framed ones)
        sift = cv2.SIFT.create(nfeatures=limit * INTERIOR_POOL, contrastThreshold=params.contrast_threshold)
        keypoints, descriptors = sift.detectAndCompute(grey, None)
        points = _keypoint_array(keypoints)
    # SIFT keeps ties at the cut, so it can return a few more than nfeatures; keep the strongest so the cap is exact.
    order = np.argsort([-kp.response for kp in keypoints], kind="stable")
    keep = _strongest_with_interior(order, _in_band(points[order], width, height, params.border), limit, quota)
    return FeatureSet(points[keep], quantise_rootsift(descriptors[keep]), width, height)


def _keypoint_array(keypoints: Sequence[cv2.KeyPoint]) -> np.ndarray:
    """(N, 2) float32 pixel coordinates of OpenCV keypoints."""
    return np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)


INTERIOR_POOL = 4
"""When a reference's strongest keypoints hold too few inside the border band for ``VerifyParams.reference_interior``,
they are chosen from this many times its budget of the strongest SIFT finds."""


def _strongest_with_interior(order: np.ndarray, inside: np.ndarray, limit: int, quota: int) -> np.ndarray:
    """Indices of ``limit`` keypoints, strongest first (``order`` ranks them, ``inside`` says which of them, in that
    order, lie inside the border band): the strongest ``quota`` inside, as many as there are, then the strongest of
    the others."""
    if quota <= 0 or len(order) <= limit:
        return order[:limit]
    reserved = np.flatnonzero(inside)[:quota]  # ranks, strongest first
    others = np.setdiff1d(np.arange(len(order)), reserved, assume_unique=True)[: limit - len(reserved)]
    kept: np.ndarray = order[np.sort(np.concatenate([reserved, others]))]
    return kept


def quantise_rootsift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT (Arandjelović & Zisserman 2012) of SIFT descriptors, quantised to uint8.

    Each row is L1-normalised and square-rooted, which makes Euclidean distance behave like the Hellinger kernel
    (better matching than plain SIFT) and gives rows of unit L2 norm; components are stored as
    ``round(value × DESCRIPTOR_SCALE)``.
    """
    rows = np.asarray(descriptors, dtype=np.float32)
    rows = rows / np.maximum(rows.sum(axis=1, keepdims=True), 1e-7)
    quantised: np.ndarray = np.clip(np.rint(np.sqrt(rows) * DESCRIPTOR_SCALE), 0, 255).astype(np.uint8)
    return quantised


def match_descriptors(query: FeatureSet, reference: FeatureSet, ratio: float) -> np.ndarray:
    """Match each query descriptor to its nearest reference descriptor, keeping those passing Lowe's ratio test.

    A match is kept when its Euclidean distance is strictly below ``ratio`` times the distance of the second-nearest
    reference descriptor. With fewer than two reference descriptors there is no second neighbour to compare with, so
    nothing is kept: an unambiguous match cannot be told from a chance one.

    The distances are exact: descriptors are whole numbers 0..255, so every product, sum and squared distance of
    two 128-value rows is a whole number below 2^24, which float32 (and so one BLAS matrix product, in any order of
    summation) holds exactly. The ratio test is scale-free, so comparing the stored values is the same as comparing
    the RootSIFT vectors they quantise. Measured: 15 references (500 keypoints) against a 2000-keypoint photo in
    27 ms on one core, against 138 ms with OpenCV's brute-force matcher, same matches.

    Returns:
        (M, 2) int64 array of ``(query_index, reference_index)`` rows, in query order.
    """
    if len(query) == 0 or len(reference) < 2:
        return np.zeros((0, 2), np.int64)
    q = query.descriptors.astype(np.float32)
    r = reference.descriptors.astype(np.float32)
    # squared distance less the query row's own norm, which does not change which reference row is nearest
    partial = np.einsum("ij,ij->i", r, r)[None, :] - 2.0 * (q @ r.T)
    rows = np.arange(len(q))
    nearest = partial.argmin(axis=1)
    first = partial[rows, nearest]
    partial[rows, nearest] = np.inf
    second = partial.min(axis=1)
    norms = np.einsum("ij,ij->i", q, q)
    first64 = first.astype(np.float64) + norms
    second64 = second.astype(np.float64) + norms
    # sqrt(first) < ratio * sqrt(second), on squares: both sides are non-negative
    kept = np.nonzero(first64 < ratio * ratio * second64)[0]
    return np.stack([kept, nearest[kept]], axis=1).astype(np.int64).reshape(-1, 2)


def verify_pair(query: FeatureSet, reference: FeatureSet, params: VerifyParams = VerifyParams()) -> PairResult:
    """Verify that the reference appears in the query: ratio-test matches, a MAGSAC++ homography, sanity checks.

    Degenerate input (no keypoints, fewer than four matches, no estimable homography) gives a not-verified result
    with a ``reason``, never an exception.
    """
    matches = match_descriptors(query, reference, params.ratio)
    good = len(matches)
    if good < _MIN_HOMOGRAPHY_MATCHES:
        return _rejected(good, "too_few_matches")
    ref_pts = reference.keypoints[matches[:, 1]]
    query_pts = query.keypoints[matches[:, 0]]
    homography, mask = cv2.findHomography(
        ref_pts,
        query_pts,
        cv2.USAC_MAGSAC,
        params.ransac_reproj_threshold,
        maxIters=params.max_iters,
        confidence=params.confidence,
    )
    if homography is None or homography.shape != (3, 3) or mask is None:
        return _rejected(good, "no_homography")
    inlier_mask = mask.ravel().astype(bool)
    inliers = int(inlier_mask.sum())
    ratio = inliers / good
    spread = _hull_fraction(ref_pts[inlier_mask], reference.width, reference.height)
    interior = _interior_count(ref_pts[inlier_mask], reference.width, reference.height, params.border)
    corners = _project_corners(homography, reference.width, reference.height)
    if corners is None or not _plausible(homography, reference.width, reference.height, params):
        return PairResult(False, inliers, good, ratio, spread, None, None, "degenerate_homography", interior)
    homography = homography.astype(np.float64)
    box = _query_box(corners, query.width, query.height)
    if inliers < params.min_inliers:
        return PairResult(False, inliers, good, ratio, spread, homography, box, "too_few_inliers", interior)
    if interior < params.min_interior_inliers:
        return PairResult(False, inliers, good, ratio, spread, homography, box, "inliers_on_border", interior)
    return PairResult(True, inliers, good, ratio, spread, homography, box, None, interior)


def verify_many(
    query: FeatureSet,
    references: Sequence[FeatureSet],
    params: VerifyParams = VerifyParams(),
) -> list[PairResult]:
    """Verify each reference against the same query; results in the order of ``references``."""
    return [verify_pair(query, reference, params) for reference in references]


def _rejected(good: int, reason: str) -> PairResult:
    return PairResult(False, 0, good, 0.0, 0.0, None, None, reason)


def _corners(width: int, height: int) -> np.ndarray:
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)


def _project_corners(homography: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """The reference's outline mapped into the query, or None when a corner goes to infinity."""
    if not np.isfinite(homography).all():
        return None
    ones = np.ones((4, 1))
    projected = np.hstack([_corners(width, height), ones]) @ homography.T
    denominators = projected[:, 2]
    if np.any(np.abs(denominators) < 1e-12):
        return None
    corners = projected[:, :2] / denominators[:, None]
    return corners if np.isfinite(corners).all() else None


def _plausible(homography: np.ndarray, width: int, height: int, params: VerifyParams) -> bool:
    """Whether the homography could be a camera looking at the flat reference.

    The projective denominator w(x, y) = h31 x + h32 y + h33 is linear, so if it is positive at the four corners
    the whole rectangle stays on one side of the horizon: its image is a convex, non-self-intersecting
    quadrilateral. The local Jacobian J at a point has det J = det H / w³; its singular values give the local
    scale and stretch, and a negative determinant is a mirror image, which a photo of a painting never is.
    """
    h = homography / np.linalg.norm(homography)
    points = np.vstack([_corners(width, height), [[width / 2, height / 2]]])
    w = points @ h[2, :2] + h[2, 2]
    if np.all(w < 0):
        h, w = -h, -w
    if np.any(w <= 0) or np.linalg.det(h) <= 0 or w.max() / w.min() > params.max_perspective:
        return False
    for (x, y), wi in zip(points, w, strict=True):
        u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / wi
        v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / wi
        jacobian = (h[:2, :2] - np.outer([u, v], h[2, :2])) / wi
        stretch = np.linalg.svd(jacobian, compute_uv=False)
        if stretch[1] <= 0 or stretch[0] / stretch[1] > params.max_anisotropy:
            return False
        if not params.min_scale <= float(np.sqrt(stretch[0] * stretch[1])) <= params.max_scale:
            return False
    outline = cv2.perspectiveTransform(_corners(width, height).reshape(-1, 1, 2), h).astype(np.float32)
    return bool(cv2.isContourConvex(outline))


def _in_band(points: np.ndarray, width: int, height: int, border: float) -> np.ndarray:
    """Which ``points`` lie at least ``border`` × the side away from every edge of the ``width`` × ``height`` frame
    (inside the border band)."""
    x = points[:, 0] / width
    y = points[:, 1] / height
    mask: np.ndarray = (x >= border) & (x <= 1 - border) & (y >= border) & (y <= 1 - border)
    return mask


def _interior_count(points: np.ndarray, width: int, height: int, border: float) -> int:
    """How many ``points`` lie inside the border band (:func:`_in_band`)."""
    return int(_in_band(points, width, height, border).sum())


def _hull_fraction(points: np.ndarray, width: int, height: int) -> float:
    """Area of the convex hull of ``points`` as a fraction of the ``width`` × ``height`` frame."""
    if len(points) < 3:
        return 0.0
    hull = cv2.convexHull(points.astype(np.float32).reshape(-1, 1, 2))
    return float(min(1.0, cv2.contourArea(hull) / (width * height)))


def _query_box(corners: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    """Bounding box of the projected outline, in fractions of the query frame clipped to 0..1."""
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    box = np.clip([x0 / width, y0 / height, x1 / width, y1 / height], 0.0, 1.0)
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
