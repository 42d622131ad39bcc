"""The local-feature shortlist: descriptor votes over the whole collection, exact and inverted-file indexes."""

from __future__ import annotations

import numpy as np
import pytest

from services.collection.features import DESCRIPTOR_SIZE, FeatureSet
from services.geometric import retrieval
from services.geometric.retrieval import VoteIndex


def reference(rng: np.random.Generator, n: int) -> FeatureSet:
    descriptors = rng.integers(0, 256, (n, DESCRIPTOR_SIZE), dtype=np.uint8)
    return FeatureSet(rng.uniform(0, 100, (n, 2)).astype(np.float32), descriptors, 100, 100)


def seen_again(rng: np.random.Generator, of: FeatureSet, n: int, noise: float = 4.0) -> FeatureSet:
    """A query holding noisy copies of ``n`` of the reference's descriptors, plus as many unrelated ones."""
    rows = rng.choice(len(of), n, replace=False)
    copies = np.clip(of.descriptors[rows] + rng.normal(0, noise, (n, DESCRIPTOR_SIZE)), 0, 255).astype(np.uint8)
    noise_rows = rng.integers(0, 256, (n, DESCRIPTOR_SIZE), dtype=np.uint8)
    descriptors = np.concatenate([copies, noise_rows])
    return FeatureSet(np.zeros((2 * n, 2), np.float32), descriptors, 100, 100)


@pytest.fixture
def collection() -> dict[str, FeatureSet]:
    rng = np.random.default_rng(7)
    return {f"ref-{i}": reference(rng, 60) for i in range(8)}


def test_the_reference_whose_descriptors_the_query_holds_gets_the_votes(collection):
    index = VoteIndex()
    index.rebuild(collection)

    votes = index.vote(seen_again(np.random.default_rng(1), collection["ref-3"], 30), limit=5)

    assert index.kind == "flat" and index.descriptors == 8 * 60
    assert votes[0].object_id == "ref-3" and votes[0].votes >= 25
    assert all(v.votes < 5 for v in votes[1:])


def test_limit_min_votes_and_ordering(collection):
    index = VoteIndex(min_votes=3)
    index.rebuild(collection)
    rng = np.random.default_rng(2)
    query = seen_again(rng, collection["ref-1"], 20)
    extra = seen_again(rng, collection["ref-5"], 10).descriptors[:10]
    query = FeatureSet(np.zeros((50, 2), np.float32), np.concatenate([query.descriptors, extra]), 100, 100)

    votes = index.vote(query, limit=10)

    assert [v.object_id for v in votes] == ["ref-1", "ref-5"]
    assert votes[0].votes > votes[1].votes >= 3
    assert [v.object_id for v in index.vote(query, limit=1)] == ["ref-1"]
    assert index.vote(query, limit=0) == []
    assert index.vote(FeatureSet.empty(10, 10), limit=5) == []


def test_ambiguous_descriptors_do_not_vote(collection):
    """A descriptor shared by two references fails the ratio test: it cannot tell them apart."""
    rng = np.random.default_rng(3)
    twin = FeatureSet(collection["ref-2"].keypoints, collection["ref-2"].descriptors.copy(), 100, 100)
    index = VoteIndex()
    index.rebuild(collection | {"twin": twin})

    assert index.vote(seen_again(rng, collection["ref-2"], 30, noise=1.0), limit=5) == []


def test_repeated_texture_within_one_reference_does_not_cancel_its_votes(collection):
    """Two near-identical descriptors of the same painting (brocade, a repeated ornament) are no rival to each other."""
    rng = np.random.default_rng(9)
    base = collection["ref-6"]
    doubled = np.clip(np.concatenate([base.descriptors, base.descriptors + 1]), 0, 255).astype(np.uint8)
    repeated = FeatureSet(np.concatenate([base.keypoints, base.keypoints]), doubled, 100, 100)
    index = VoteIndex()
    index.rebuild(collection | {"ref-6": repeated})

    votes = index.vote(seen_again(rng, base, 30, noise=1.0), limit=3)

    assert votes[0].object_id == "ref-6" and votes[0].votes >= 25


def test_put_replaces_and_remove_forgets(collection):
    rng = np.random.default_rng(4)
    index = VoteIndex()
    index.rebuild(collection)
    old = collection["ref-0"]
    new = reference(rng, 60)

    index.put("ref-0", new)

    assert index.descriptors == 8 * 60
    assert index.vote(seen_again(rng, new, 30), limit=1)[0].object_id == "ref-0"
    assert all(v.object_id != "ref-0" for v in index.vote(seen_again(rng, old, 30), limit=5))
    index.put("added", old)
    assert index.vote(seen_again(rng, old, 30), limit=1)[0].object_id == "added"

    index.remove("added")
    index.remove("never-there")

    assert index.descriptors == 8 * 60
    assert index.vote(seen_again(rng, old, 30), limit=5) == []


def test_an_empty_or_one_descriptor_index_votes_for_nothing():
    index = VoteIndex()
    assert index.vote(reference(np.random.default_rng(5), 10), limit=3) == []
    index.rebuild({"one": reference(np.random.default_rng(6), 1)})
    assert index.vote(reference(np.random.default_rng(6), 1), limit=3) == []


def test_a_large_collection_gets_a_trained_inverted_file_that_still_finds_the_reference(monkeypatch):
    monkeypatch.setattr(retrieval, "IVF_MIN_DESCRIPTORS", 2_000)
    rng = np.random.default_rng(8)
    collection = {f"ref-{i}": reference(rng, 100) for i in range(40)}
    index = VoteIndex(nprobe=8)
    index.rebuild(collection)

    assert index.kind.startswith("ivf") and index.descriptors == 4_000
    assert index.vote(seen_again(rng, collection["ref-17"], 40), limit=3)[0].object_id == "ref-17"

    index.remove("ref-17")
    index.put("late", collection["ref-17"])

    assert index.descriptors == 4_000
    assert index.vote(seen_again(rng, collection["ref-17"], 40), limit=3)[0].object_id == "late"
