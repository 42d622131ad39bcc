"""The references' verification: order, parallel threads, and the retry on the query's finer features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.collection.features import DESCRIPTOR_SIZE, FeatureSet, FeatureStore, OutdatedFeatures
from services.geometric.references import References


def _pair(seed: int, n: int = 60) -> tuple[FeatureSet, FeatureSet]:
    """A reference and a query showing it shifted by (20, 10): every one of the ``n`` matches is an inlier."""
    rng = np.random.default_rng(seed)
    points = np.column_stack([rng.uniform(10, 390, n), rng.uniform(10, 290, n)]).astype(np.float32)
    descriptors = rng.integers(0, 256, size=(n, DESCRIPTOR_SIZE), dtype=np.uint8)
    reference = FeatureSet(points, descriptors, 400, 300)
    query = FeatureSet(points + np.float32([20, 10]), descriptors.copy(), 640, 480)
    return reference, query


def _unrelated(seed: int, n: int = 60) -> FeatureSet:
    rng = np.random.default_rng(seed)
    points = np.column_stack([rng.uniform(0, 640, n), rng.uniform(0, 480, n)]).astype(np.float32)
    return FeatureSet(points, rng.integers(0, 256, size=(n, DESCRIPTOR_SIZE), dtype=np.uint8), 640, 480)


@pytest.fixture(params=[1, 2], ids=["one-thread", "two-threads"])
def references(request: pytest.FixtureRequest, tmp_path: Path) -> References:
    refs = References(tmp_path / "features.npz", autosave=False, threads=request.param)
    yield refs
    refs.close()


def test_results_follow_the_requested_order_with_none_for_unknown_ids(references: References) -> None:
    ref_a, query_a = _pair(1)
    ref_b, _ = _pair(2)
    references.put("a", ref_a)
    references.put("b", ref_b)

    results = references.verify(query_a, ["b", "ghost", "a"])

    assert [object_id for object_id, _ in results] == ["b", "ghost", "a"]
    (_, b), (_, ghost), (_, a) = results
    assert b is not None and not b.verified
    assert ghost is None
    assert a is not None and a.verified and a.inliers == 60 and not a.fine


def test_the_first_unverified_references_are_tried_again_on_the_finer_features(references: References) -> None:
    # the standard query features miss every reference; the finer set shows all three
    sets = {name: _pair(seed) for name, seed in (("a", 3), ("b", 4), ("c", 5))}
    for name, (reference, _) in sets.items():
        references.put(name, reference)
    fine = FeatureSet(
        np.vstack([q.keypoints for _, q in sets.values()]),
        np.vstack([q.descriptors for _, q in sets.values()]),
        640,
        480,
    )
    coarse = _unrelated(6)

    results = dict(references.verify(coarse, ["a", "ghost", "b", "c"], fine=fine, fine_first=3))

    assert results["a"] is not None and results["a"].verified and results["a"].fine
    assert results["b"] is not None and results["b"].verified and results["b"].fine
    assert results["c"] is not None and not results["c"].verified and not results["c"].fine  # 4th: not retried
    assert results["ghost"] is None
    without = dict(references.verify(coarse, ["a", "b"]))
    assert not any(r is not None and r.verified for r in without.values())


def test_a_verified_standard_result_is_kept_and_a_failed_retry_changes_nothing(references: References) -> None:
    ref_a, query_a = _pair(7)
    ref_b, _ = _pair(8)
    references.put("a", ref_a)
    references.put("b", ref_b)

    results = dict(references.verify(query_a, ["a", "b"], fine=_unrelated(9), fine_first=2))

    assert results["a"] is not None and results["a"].verified and not results["a"].fine
    assert results["b"] is not None and not results["b"].verified and not results["b"].fine


def test_features_of_another_extractor_are_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "features.npz"
    FeatureStore({"a": _unrelated(1)}, extractor="orb-v0:old").save(path)

    with pytest.raises(OutdatedFeatures, match="index build"):
        References(path).load()


def test_loaded_and_added_references_are_shortlisted(tmp_path: Path) -> None:
    ref_a, query_a = _pair(1)
    ref_b, query_b = _pair(2)
    FeatureStore({"a": ref_a}, extractor=References(tmp_path / "x").params.extractor_stamp()).save(
        tmp_path / "features.npz"
    )
    references = References(tmp_path / "features.npz", autosave=False)
    references.load()
    references.put("b", ref_b)

    assert [v.object_id for v in references.shortlist(query_a, 3)] == ["a"]
    assert [v.object_id for v in references.shortlist(query_b, 3)] == ["b"]
    references.remove("a")
    assert all(v.object_id != "a" for v in references.shortlist(query_a, 3))


def test_loaded_features_stay_in_the_file_and_verify_like_read_ones(tmp_path: Path) -> None:
    ref_a, query_a = _pair(3)
    FeatureStore({"a": ref_a}, extractor=References(tmp_path / "x").params.extractor_stamp()).save(
        tmp_path / "features.npz"
    )
    references = References(tmp_path / "features.npz")
    references.load()
    stored = references.store.get("a")
    assert stored is not None and not stored.descriptors.flags.owndata  # a view of the mapped file
    [(_, result)] = references.verify(query_a, ["a"])
    assert result is not None and result.verified
    references.put("b", _pair(4)[0])  # autosave streams the file and maps the new one
    again = References(tmp_path / "features.npz")
    again.load()
    assert again.store.ids() == ["a", "b"]


def test_above_the_descriptor_budget_the_vote_index_is_not_built(tmp_path: Path) -> None:
    ref_a, query_a = _pair(5)
    FeatureStore({"a": ref_a}, extractor=References(tmp_path / "x").params.extractor_stamp()).save(
        tmp_path / "features.npz"
    )
    capped = References(tmp_path / "features.npz", autosave=False, vote_max_descriptors=len(ref_a) - 1)
    capped.load()
    assert capped.votes.descriptors == 0 and capped.shortlist(query_a, 3) == []
    [(_, result)] = capped.verify(query_a, ["a"])  # verification of given candidates is unaffected
    assert result is not None and result.verified
    within = References(tmp_path / "features.npz", autosave=False, vote_max_descriptors=len(ref_a))
    within.load()
    assert [v.object_id for v in within.shortlist(query_a, 3)] == ["a"]
