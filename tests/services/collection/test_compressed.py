"""The compressed index for large collections: chosen at a size, trained once, tuned to a recall target against a
brute-force oracle, updated in place, saved and loaded without retraining."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from services.collection.compressed import choose_lists, recall_at, train_compressed
from services.collection.vectors import VectorIndex
from services.common.schemas import ObjectMetadata

D = 32


def clustered(rng: np.random.Generator, n: int, centres: int = 40) -> np.ndarray:
    """Unit vectors around a few centres, like embeddings of a collection (not uniform noise)."""
    means = rng.normal(size=(centres, D)).astype(np.float32)
    rows = means[rng.integers(0, centres, n)] + 0.35 * rng.normal(size=(n, D)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def exact_top(stored: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ stored.T), axis=1, kind="stable")[:, :k]


def metas(start: int, n: int) -> list[ObjectMetadata]:
    return [ObjectMetadata(object_id=f"o{i}") for i in range(start, start + n)]


def test_lists_grow_with_the_square_root_of_the_expected_size_within_bounds():
    assert choose_lists(1_000_000) == 1024
    assert choose_lists(10_000) == 128
    assert choose_lists(10) == 16
    assert choose_lists(10**12) == 4096
    with pytest.raises(ValueError, match="positive"):
        choose_lists(0)


def test_recall_counts_the_exact_neighbours_found():
    truth = np.array([[1, 2], [3, 4]])
    assert recall_at(np.array([[2, 1], [3, -1]]), truth) == pytest.approx(0.75)


def test_probe_is_the_fewest_lists_reaching_the_target_on_an_oracle():
    rng = np.random.default_rng(1)
    sample = clustered(rng, 2000)
    trained = train_compressed(sample, expected=2000, recall_target=0.9)
    assert trained.lists == 32 and trained.index.is_trained and trained.index.ntotal == 0
    assert trained.recall >= 0.9
    trained.index.add_with_ids(sample, np.arange(len(sample), dtype=np.int64))
    queries = sample[:100]
    truth = exact_top(sample, queries, 10)
    trained.index.nprobe = trained.probe
    assert recall_at(trained.index.search(queries, 10)[1], truth) >= 0.85
    assert 1 <= trained.probe < trained.lists  # fewer lists than all: the inverted file saves work


def test_too_small_a_sample_is_refused():
    with pytest.raises(ValueError, match="cannot train"):
        train_compressed(clustered(np.random.default_rng(2), 100), expected=100)


def test_auto_kind_is_exact_below_the_size_then_compresses_once_and_updates_in_place(tmp_path):
    rng = np.random.default_rng(3)
    vectors = clustered(rng, 1400)
    index = VectorIndex(D, kind="auto", compress_above=1200, expected_size=4000, recall_target=0.9)
    index.add_many(vectors[:1100], metas(0, 1100))
    assert not index.compressed  # 1100 < 1200: still exact
    index.add_many(vectors[1100:1200], metas(1100, 100))
    assert index.compressed and isinstance(index._index, faiss.IndexIVFScalarQuantizer)
    trained = index._index
    assert index.ivf_lists == 1200 // 39  # 64 lists for 4000 expected, but 1200 training rows train at most 30
    for i in range(1200, 1400):  # one by one: the same trained lists take them
        index.upsert(vectors[i], ObjectMetadata(object_id=f"o{i}"))
    assert index._index is trained and len(index) == 1400
    assert index.remove("o5") and "o5" not in index
    top = index.search(vectors[1300:1310], 1)
    assert [hits[0].object_id for hits in top] == [f"o{i}" for i in range(1300, 1310)]
    np.testing.assert_allclose(index.vector("o7"), vectors[7], atol=0.02)  # 8-bit codes: close, not exact

    index.save(tmp_path / "search.npz")
    loaded = VectorIndex.load(tmp_path / "search.npz")
    assert loaded.compressed and loaded.kind == "auto" and len(loaded) == 1399
    assert loaded._index.nprobe == index.ivf_probe and loaded.tuned_recall == pytest.approx(index.tuned_recall)
    centroids = trained.quantizer.reconstruct_n(0, trained.nlist)
    np.testing.assert_array_equal(loaded._index.quantizer.reconstruct_n(0, trained.nlist), centroids)  # not retrained
    got = loaded.search(vectors[:50], 10)
    truth = exact_top(np.delete(vectors, 5, axis=0), vectors[:50], 10)
    ids = [f"o{i}" for i in range(1400) if i != 5]
    found = np.array([[ids.index(h.object_id) for h in hits] for hits in got])
    assert recall_at(found, truth) >= 0.85
    loaded.upsert(vectors[5], ObjectMetadata(object_id="o5"))  # add after a load: no retraining
    assert loaded.search(vectors[5][None, :], 1)[0][0].object_id == "o5"


def test_compress_with_a_sample_trains_before_any_vector_is_added():
    rng = np.random.default_rng(4)
    vectors = clustered(rng, 1500)
    index = VectorIndex(D, kind="auto", expected_size=1500, recall_target=0.9)
    index.compress(vectors[:1000])
    assert index.compressed and len(index) == 0
    index.add_many(vectors, metas(0, 1500))
    assert index.search(vectors[1400][None, :], 1)[0][0].object_id == "o1400"
