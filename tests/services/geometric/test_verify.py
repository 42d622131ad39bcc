"""Behaviour of ORB extraction, ratio-test matching and homography verification, against oracles."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from services.collection.features import DESCRIPTOR_SIZE, FeatureSet
from services.geometric.verify import (
    PairResult,
    VerifyParams,
    extract_features,
    match_descriptors,
    verify_many,
    verify_pair,
)

# A perspective view of the reference: rotation, shear, anisotropic scale and mild foreshortening.
KNOWN_H = np.array([[0.92, 0.12, 40.0], [-0.08, 0.85, 25.0], [1.2e-4, -8e-5, 1.0]])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def astronaut_features(astronaut: np.ndarray) -> FeatureSet:
    return extract_features(astronaut)


def project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), h).reshape(-1, 2)


def random_descriptors(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, DESCRIPTOR_SIZE), dtype=np.uint8)


def synthetic_pair(query_points: np.ndarray, ref_points: np.ndarray, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """Query and reference sharing random descriptors, so match i pairs ``ref_points[i]`` with ``query_points[i]``."""
    descriptors = random_descriptors(np.random.default_rng(seed), len(ref_points))
    reference = FeatureSet(ref_points.astype(np.float32), descriptors, 400, 300)
    query = FeatureSet(query_points.astype(np.float32), descriptors.copy(), 640, 480)
    return query, reference


def grid_points(seed: int = 0, n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(10, 390, n), rng.uniform(10, 290, n)])


def euclidean_oracle(query: np.ndarray, reference: np.ndarray, ratio: float) -> set[tuple[int, int]]:
    """Brute-force numpy Lowe's ratio test on Euclidean distances between the descriptors as numbers."""
    q = query.astype(np.float64)
    r = reference.astype(np.float64)
    distances = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(axis=2))
    kept = set()
    for i, row in enumerate(distances):
        order = np.argsort(row, kind="stable")
        if len(row) >= 2 and row[order[0]] < ratio * row[order[1]]:
            kept.add((i, int(order[0])))
    return kept


def test_recovers_a_known_homography_within_tolerance(astronaut, astronaut_features):
    warped = cv2.warpPerspective(astronaut, KNOWN_H, (600, 560))
    result = verify_pair(extract_features(warped), astronaut_features)

    assert result.verified and result.reason is None
    assert result.inliers >= 100 and result.inliers <= result.good_matches
    assert result.inlier_ratio == pytest.approx(result.inliers / result.good_matches)
    corners = np.array([[0, 0], [512, 0], [512, 512], [0, 512]], dtype=np.float64)
    error = np.linalg.norm(project(result.homography, corners) - project(KNOWN_H, corners), axis=1)
    assert error.max() < 3.0
    expected = project(KNOWN_H, corners)
    x0, y0 = np.clip(expected.min(axis=0) / (600, 560), 0.0, 1.0)
    x1, y1 = np.clip(expected.max(axis=0) / (600, 560), 0.0, 1.0)
    assert result.query_box == pytest.approx((x0, y0, x1, y1), abs=0.01)
    assert 0.5 < result.spread <= 1.0


@pytest.mark.parametrize("light", [True, False])
def test_a_caption_box_laid_over_the_painting_does_not_stop_verification(astronaut, astronaut_features, light):
    warped = cv2.warpPerspective(astronaut, KNOWN_H, (600, 560))
    # a plate over 60 % of the painting's width and a sixth of its height, with text in the contrasting colour
    plate, ink = (235, 20) if light else (25, 230)
    captioned = warped.copy()
    captioned[300:390, 120:450] = plate
    cv2.putText(captioned, "Ramon Herreros", (135, 360), cv2.FONT_HERSHEY_COMPLEX, 1.1, (ink,) * 3, 2, cv2.LINE_AA)

    plain = verify_pair(extract_features(warped), astronaut_features)
    covered = verify_pair(extract_features(captioned), astronaut_features)

    assert covered.verified and covered.reason is None
    assert covered.inliers >= 0.5 * plain.inliers
    assert covered.query_box == pytest.approx(plain.query_box, abs=0.02)


def test_unrelated_images_do_not_verify(astronaut_features):
    for image in (data.coffee(), np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8)):
        result = verify_pair(extract_features(image), astronaut_features)
        assert not result.verified
        assert result.reason in {"too_few_matches", "no_homography", "degenerate_homography", "too_few_inliers"}


def test_blank_image_has_no_features_and_gives_too_few_matches(astronaut_features):
    blank = extract_features(np.full((300, 200, 3), 128, dtype=np.uint8))
    assert len(blank) == 0 and (blank.width, blank.height) == (200, 300)

    for query, reference in ((blank, astronaut_features), (astronaut_features, blank)):
        result = verify_pair(query, reference)
        assert result == PairResult(False, 0, 0, 0.0, 0.0, None, None, "too_few_matches")


def test_one_keypoint_gives_no_matches_and_too_few_matches():
    rng = np.random.default_rng(1)
    one = FeatureSet(np.array([[5.0, 5.0]], np.float32), random_descriptors(rng, 1), 10, 10)
    many = FeatureSet(rng.uniform(0, 10, (20, 2)).astype(np.float32), random_descriptors(rng, 20), 10, 10)

    assert match_descriptors(one, many, 0.8).shape == (0, 2)
    assert match_descriptors(many, one, 0.8).shape == (0, 2)
    assert match_descriptors(FeatureSet.empty(10, 10), many, 0.8).shape == (0, 2)
    assert verify_pair(one, many).reason == "too_few_matches"
    assert verify_pair(many, one).reason == "too_few_matches"


def test_fewer_than_four_matches_is_a_valid_not_verified_result():
    points = grid_points(n=3)
    query, reference = synthetic_pair(points + 5, points)
    # Unrelated distractors give the reference a second neighbour for the ratio test.
    rng = np.random.default_rng(2)
    reference = FeatureSet(
        np.vstack([reference.keypoints, rng.uniform(0, 300, (30, 2)).astype(np.float32)]),
        np.vstack([reference.descriptors, random_descriptors(rng, 30)]),
        reference.width,
        reference.height,
    )

    result = verify_pair(query, reference)

    assert result.good_matches == 3
    assert result == PairResult(False, 0, 3, 0.0, 0.0, None, None, "too_few_matches")


def test_constructed_translation_verifies_with_every_match_an_inlier():
    points = grid_points()
    query, reference = synthetic_pair(points + np.array([30.0, 20.0]), points)

    result = verify_pair(query, reference)

    assert result.verified and result.inliers == 60 and result.inlier_ratio == 1.0
    expected = np.array([[1, 0, 30], [0, 1, 20], [0, 0, 1]], dtype=np.float64)
    assert np.allclose(result.homography / result.homography[2, 2], expected, atol=1e-3)
    assert result.homography.dtype == np.float64
    assert result.query_box == pytest.approx((30 / 640, 20 / 480, 430 / 640, 320 / 480), abs=1e-3)


@pytest.mark.parametrize(
    "name, transform",
    [
        ("collapse to a tiny blob", lambda p: p * 0.01 + 100),
        ("squash to a sliver", lambda p: np.column_stack([p[:, 0], p[:, 1] * 0.05 + 100])),
        ("shear", lambda p: np.column_stack([p[:, 0] + 3 * p[:, 1], p[:, 1]])),
        ("strong perspective", lambda p: project(np.array([[1, 0, 0], [0, 1, 0], [0.01, 0, 1.0]]), p)),
        ("blow-up of a detail", lambda p: p * 12 - 2000),
    ],
)
def test_implausible_homographies_are_rejected_as_degenerate(name, transform):
    points = grid_points()
    query, reference = synthetic_pair(transform(points), points)

    result = verify_pair(query, reference)

    assert not result.verified, name
    assert result.reason == "degenerate_homography", name
    assert result.inliers == 60 and result.homography is None and result.query_box is None


def test_mirrored_matches_never_verify():
    # USAC's oriented-sample check already refuses mirrored samples; our determinant check is the second guard.
    points = grid_points()
    query, reference = synthetic_pair(np.column_stack([400 - points[:, 0], points[:, 1]]), points)

    result = verify_pair(query, reference)

    assert not result.verified
    assert result.reason in {"no_homography", "degenerate_homography"}


def test_too_few_inliers_keeps_the_homography_but_does_not_verify():
    points = grid_points()
    query, reference = synthetic_pair(points + 10.0, points)

    result = verify_pair(query, reference, VerifyParams(min_inliers=61))

    assert result.reason == "too_few_inliers" and not result.verified
    assert result.inliers == 60 and result.homography is not None


def frame_points(n: int = 60, seed: int = 0) -> np.ndarray:
    """Points only in the outer 10 % band of the 400 × 300 reference: a frame's moulding."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(2, 398, n), rng.uniform(2, 298, n)
    side = rng.integers(0, 4, n)
    x = np.where(side == 0, rng.uniform(2, 38, n), np.where(side == 1, rng.uniform(362, 398, n), x))
    y = np.where(side == 2, rng.uniform(2, 28, n), np.where(side == 3, rng.uniform(272, 298, n), y))
    return np.column_stack([x, y])


def test_inliers_on_the_frame_alone_do_not_verify():
    points = frame_points()
    query, reference = synthetic_pair(points + 20.0, points)

    result = verify_pair(query, reference)

    assert not result.verified and result.reason == "inliers_on_border"
    assert result.inliers == 60 and result.interior_inliers == 0
    assert result.homography is not None and result.query_box is not None


def test_enough_inliers_on_the_painting_verify_beside_the_frame():
    params = VerifyParams()
    inner = np.column_stack(
        np.random.default_rng(3).uniform([100, 80], [300, 220], size=(params.min_interior_inliers, 2)).T
    )
    points = np.vstack([frame_points(), inner])
    query, reference = synthetic_pair(points + 20.0, points)

    result = verify_pair(query, reference, params)

    assert result.verified and result.interior_inliers == params.min_interior_inliers
    fewer = verify_pair(query, reference, VerifyParams(min_interior_inliers=params.min_interior_inliers + 1))
    assert not fewer.verified and fewer.reason == "inliers_on_border"


@pytest.mark.parametrize("ratio", [0.6, 0.8, 0.95])
@pytest.mark.parametrize("n_query, n_ref", [(50, 2), (200, 300), (120, 40)])
def test_match_descriptors_agrees_with_a_brute_force_oracle(ratio, n_query, n_ref):
    rng = np.random.default_rng(n_query * 1000 + n_ref)
    reference = random_descriptors(rng, n_ref)
    query = random_descriptors(rng, n_query)
    # Half the query rows are noisy copies of reference rows, so some pass the ratio test and some do not.
    picks = rng.integers(0, n_ref, n_query // 2)
    noise = rng.normal(0.0, 1.0, (n_query // 2, DESCRIPTOR_SIZE)) * rng.uniform(0.0, 90.0, (n_query // 2, 1))
    query[: n_query // 2] = np.clip(reference[picks] + noise, 0, 255).astype(np.uint8)
    q_set = FeatureSet(np.zeros((n_query, 2), np.float32), query, 1, 1)
    r_set = FeatureSet(np.zeros((n_ref, 2), np.float32), reference, 1, 1)

    matches = match_descriptors(q_set, r_set, ratio)

    assert matches.dtype == np.int64 and matches.shape[1] == 2
    assert {tuple(map(int, row)) for row in matches} == euclidean_oracle(query, reference, ratio)
    assert len(matches) > 0


def test_extract_features_downscales_and_keeps_keypoints_in_the_frame(astronaut):
    wide = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # 512 x 1024
    features = extract_features(wide, VerifyParams(max_side=640, n_features=500))

    assert (features.width, features.height) == (640, 320)
    assert 0 < len(features) <= 500
    assert features.keypoints.dtype == np.float32 and features.descriptors.dtype == np.uint8
    assert (features.keypoints >= 0).all()
    assert (features.keypoints[:, 0] < 640).all() and (features.keypoints[:, 1] < 320).all()


def test_reference_extraction_keeps_reference_features(astronaut):
    params = VerifyParams(n_features=800, reference_features=300)
    assert len(extract_features(astronaut, params)) == 800
    assert len(extract_features(astronaut, params, reference=True)) == 300


def framed_painting(astronaut: np.ndarray) -> np.ndarray:
    """A soft, low-contrast painting inside a wide frame of sharp high-contrast ornament (a checkerboard)."""
    side = 512
    frame = np.kron((np.indices((32, 32)).sum(axis=0) % 2) * 255, np.ones((16, 16))).astype(np.uint8)
    image = np.repeat(frame[..., None], 3, axis=2)
    inner = cv2.resize(astronaut, (side - 2 * 112, side - 2 * 112), interpolation=cv2.INTER_AREA)
    image[112 : side - 112, 112 : side - 112] = (inner // 4 + 96).astype(np.uint8)
    return image


def inside_band(features: FeatureSet, border: float) -> np.ndarray:
    x = features.keypoints[:, 0] / features.width
    y = features.keypoints[:, 1] / features.height
    return (x >= border) & (x <= 1 - border) & (y >= border) & (y <= 1 - border)


def test_reference_keypoints_keep_a_share_for_the_painting_inside_a_strong_frame(astronaut):
    image = framed_painting(astronaut)
    plain = VerifyParams(reference_features=200, reference_interior=0.0)
    shared = VerifyParams(reference_features=200, reference_interior=0.5)

    strongest = extract_features(image, plain, reference=True)
    reserved = extract_features(image, shared, reference=True)

    assert len(strongest) == len(reserved) == 200
    assert inside_band(strongest, plain.border).sum() < 100  # the frame takes the budget
    assert inside_band(reserved, shared.border).sum() >= 100


def test_the_interior_share_applies_to_references_only_and_names_the_extractor(astronaut):
    image = framed_painting(astronaut)
    plain, shared = VerifyParams(reference_interior=0.0), VerifyParams(reference_interior=0.5)
    query_plain, query_shared = extract_features(image, plain), extract_features(image, shared)

    assert np.array_equal(query_plain.keypoints, query_shared.keypoints)
    assert np.array_equal(query_plain.descriptors, query_shared.descriptors)
    assert plain.extractor_stamp() != shared.extractor_stamp()
    assert "interior" not in plain.extractor_stamp()


def test_a_reference_with_its_share_on_the_painting_already_keeps_its_strongest_keypoints(astronaut):
    plain, shared = VerifyParams(reference_interior=0.0), VerifyParams(reference_interior=0.25)
    strongest = extract_features(astronaut, plain, reference=True)
    assert inside_band(strongest, plain.border).sum() >= 0.25 * len(strongest)

    kept = extract_features(astronaut, shared, reference=True)

    assert np.array_equal(kept.keypoints, strongest.keypoints)
    assert np.array_equal(kept.descriptors, strongest.descriptors)


def test_extract_features_never_upscales_and_accepts_grey(astronaut):
    grey = cv2.cvtColor(astronaut[:200, :300], cv2.COLOR_RGB2GRAY)
    features = extract_features(grey, VerifyParams(clahe=True))
    assert (features.width, features.height) == (300, 200)
    assert len(features) > 0


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10, 3), np.float32),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((10,), np.uint8),
        "not an array",
    ],
)
def test_extract_features_rejects_images_breaking_the_contract(image):
    with pytest.raises(ValueError, match="image"):
        extract_features(image)


def test_verify_many_keeps_reference_order(astronaut, astronaut_features):
    query = extract_features(cv2.warpPerspective(astronaut, KNOWN_H, (600, 560)))
    coffee = extract_features(data.coffee())
    references = [coffee, astronaut_features, FeatureSet.empty(5, 5)]

    results = verify_many(query, references)

    expected = [verify_pair(query, ref) for ref in references]
    assert [(r.verified, r.inliers, r.reason) for r in results] == [(e.verified, e.inliers, e.reason) for e in expected]
    assert [r.verified for r in results] == [False, True, False]


GOOD_KP = np.zeros((3, 2), np.float32)
GOOD_DESC = np.zeros((3, DESCRIPTOR_SIZE), np.uint8)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"keypoints": GOOD_KP.astype(np.float64)}, "keypoints"),
        ({"keypoints": np.zeros((3, 3), np.float32)}, "keypoints"),
        ({"keypoints": [[0.0, 0.0]] * 3}, "keypoints"),
        ({"descriptors": np.zeros((3, 31), np.uint8)}, "descriptors"),
        ({"descriptors": GOOD_DESC.astype(np.int8)}, "descriptors"),
        ({"descriptors": np.zeros((4, DESCRIPTOR_SIZE), np.uint8)}, "counts must be equal"),
        ({"width": 0}, "width"),
        ({"height": 2.5}, "height"),
        ({"width": True}, "width"),
        ({"keypoints": np.array([[0, 0], [np.nan, 1], [2, 2]], np.float32)}, "finite"),
    ],
)
def test_feature_set_rejects_contract_violations(kwargs, message):
    fields = {"keypoints": GOOD_KP, "descriptors": GOOD_DESC, "width": 10, "height": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        FeatureSet(**fields)


def test_empty_feature_set_meets_the_contract():
    empty = FeatureSet.empty(640, 480)
    assert empty.keypoints.shape == (0, 2) and empty.descriptors.shape == (0, DESCRIPTOR_SIZE)
    assert len(empty) == 0 and (empty.width, empty.height) == (640, 480)


def test_fine_query_features_use_the_finer_side_and_count():
    image = np.random.default_rng(0).integers(0, 256, size=(1200, 1600, 3), dtype=np.uint8)
    params = VerifyParams(max_side=400, n_features=300, fine_max_side=800, fine_features=900)

    coarse = extract_features(image, params)
    fine = extract_features(image, params, fine=True)

    assert (coarse.width, coarse.height) == (400, 300) and len(coarse) <= 300
    assert (fine.width, fine.height) == (800, 600) and 300 < len(fine) <= 900
    with pytest.raises(ValueError, match="fine features are for queries"):
        extract_features(image, params, reference=True, fine=True)
