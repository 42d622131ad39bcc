"""The id-keyed FAISS index against a brute-force numpy oracle, and its atomic snapshot."""

from __future__ import annotations

import json
import os

import faiss
import numpy as np
import pytest

from services.collection.vectors import SnapshotError, VectorIndex, check_vectors
from services.common.schemas import ObjectMetadata

D = 16


def unit_vectors(rng: np.random.Generator, n: int, d: int = D) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def meta(object_id: str, **fields: str) -> ObjectMetadata:
    return ObjectMetadata(object_id=object_id, **fields)


def oracle(stored: dict[str, np.ndarray], queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """Brute-force inner-product top-k over the objects currently stored."""
    ids = list(stored)
    matrix = np.vstack([stored[i] for i in ids]).astype(np.float64)
    scores = queries.astype(np.float64) @ matrix.T
    results = []
    for row in scores:
        order = np.argsort(-row, kind="stable")[:k]
        results.append([(ids[j], float(row[j])) for j in order])
    return results


def assert_matches_oracle(index: VectorIndex, stored: dict[str, np.ndarray], queries: np.ndarray, k: int) -> None:
    got = index.search(queries, k)
    expected = oracle(stored, queries, k)
    assert len(got) == len(expected)
    for hits, truth in zip(got, expected, strict=True):
        assert [h.object_id for h in hits] == [object_id for object_id, _ in truth]
        assert [h.score for h in hits] == pytest.approx([score for _, score in truth], abs=1e-5)
        assert [h.rank for h in hits] == list(range(1, len(truth) + 1))


@pytest.fixture
def filled() -> tuple[VectorIndex, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    vectors = unit_vectors(rng, 120)
    index = VectorIndex(D, model="fake")
    stored = {}
    for i, vector in enumerate(vectors):
        index.upsert(vector, meta(f"obj-{i:03d}", title=f"Title {i}"))
        stored[f"obj-{i:03d}"] = vector
    return index, stored


@pytest.mark.parametrize("k", [1, 5, 37, 120, 500])
def test_search_equals_brute_force_top_k(filled, k):
    index, stored = filled
    queries = unit_vectors(np.random.default_rng(1), 9)

    assert_matches_oracle(index, stored, queries, k)


def test_search_equals_brute_force_after_upserts_replacements_and_removals(filled):
    index, stored = filled
    rng = np.random.default_rng(2)
    for step in range(200):
        action = rng.random()
        if action < 0.4:  # replace an existing object's vector
            object_id = str(rng.choice(sorted(stored)))
            stored[object_id] = unit_vectors(rng, 1)[0]
            assert index.upsert(stored[object_id], meta(object_id)) is True
        elif action < 0.7 and len(stored) > 5:
            object_id = str(rng.choice(sorted(stored)))
            del stored[object_id]
            assert index.remove(object_id) is True
        else:
            object_id = f"new-{step}"
            stored[object_id] = unit_vectors(rng, 1)[0]
            assert index.upsert(stored[object_id], meta(object_id)) is False
    queries = np.vstack([unit_vectors(rng, 5), stored[sorted(stored)[0]][None, :]])

    assert len(index) == len(stored)
    for k in (1, 10, len(stored)):
        assert_matches_oracle(index, stored, queries, k)


def test_an_id_is_never_stored_twice(filled):
    index, _ = filled
    rng = np.random.default_rng(3)
    before = len(index)
    for _ in range(5):
        assert index.upsert(unit_vectors(rng, 1)[0], meta("obj-007", title="again")) is True

    assert len(index) == before
    everything = index.search(unit_vectors(rng, 3), 1000)
    for hits in everything:
        ids = [h.object_id for h in hits]
        assert len(ids) == len(set(ids)) == before
    assert index.get("obj-007").title == "again"


def test_replacing_an_object_moves_it_to_its_new_vector(filled):
    index, stored = filled
    target = stored["obj-050"]

    index.upsert(target, meta("obj-001"))

    top = index.search(target[None, :], 2)[0]
    assert {h.object_id for h in top} == {"obj-001", "obj-050"}
    assert top[0].score == pytest.approx(1.0, abs=1e-5) and top[1].score == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(index.vector("obj-001"), target, atol=1e-6)


def test_removed_objects_are_gone_and_removing_twice_says_so(filled):
    index, stored = filled

    assert index.remove("obj-010") is True
    assert index.remove("obj-010") is False
    assert index.get("obj-010") is None and index.vector("obj-010") is None and "obj-010" not in index
    hits = index.search(stored["obj-010"][None, :], len(index))[0]
    assert "obj-010" not in {h.object_id for h in hits}


def test_an_empty_index_answers_empty_lists():
    index = VectorIndex(D)

    assert index.search(unit_vectors(np.random.default_rng(0), 3), 5) == [[], [], []]


def test_list_pages_metadata_sorted_by_id(filled):
    index, _ = filled

    page, total = index.page(offset=10, limit=5)

    assert total == 120
    assert [m.object_id for m in page] == [f"obj-{i:03d}" for i in range(10, 15)]
    assert index.page(offset=118, limit=5)[0][-1].object_id == "obj-119"


def test_update_metadata_keeps_the_vector(filled):
    index, stored = filled

    index.update_metadata(meta("obj-004", title="Renamed"))

    assert index.get("obj-004").title == "Renamed"
    np.testing.assert_allclose(index.vector("obj-004"), stored["obj-004"], atol=1e-6)
    with pytest.raises(KeyError):
        index.update_metadata(meta("absent"))


@pytest.mark.parametrize(
    "vectors, message",
    [
        pytest.param(np.ones((1, D + 1), np.float32) / np.sqrt(D + 1), "shape", id="dimension"),
        pytest.param(np.full((1, D), 0.5, np.float32), "L2-normalised", id="not-normalised"),
        pytest.param(np.zeros((1, D), np.float32), "L2-normalised", id="zero"),
        pytest.param(np.full((1, D), np.nan, np.float32), "NaN", id="nan"),
    ],
)
def test_rejects_vectors_breaking_the_contract(vectors, message):
    index = VectorIndex(D)

    with pytest.raises(ValueError, match=message):
        check_vectors(vectors, D)
    with pytest.raises(ValueError, match=message):
        index.search(vectors, 1)
    with pytest.raises(ValueError):
        index.upsert(vectors, meta("a"))
    assert len(index) == 0


def test_search_needs_a_matrix_of_queries_not_a_single_row():
    with pytest.raises(ValueError, match="shape"):
        VectorIndex(D).search(np.ones(D, np.float32) / 4, 1)


def test_accepts_float64_rows_within_the_norm_tolerance():
    row = unit_vectors(np.random.default_rng(0), 1).astype(np.float64) * 1.0005

    checked = check_vectors(row, D)

    assert checked.dtype == np.float32 and checked.flags.c_contiguous


def test_save_and_load_round_trip_everything(filled, tmp_path):
    index, stored = filled
    path = tmp_path / "search.npz"
    index.remove("obj-000")
    del stored["obj-000"]

    index.save(path)
    loaded = VectorIndex.load(path)

    assert len(loaded) == len(stored) and loaded.dimension == D and loaded.model == "fake"
    assert loaded.page(0, 1000) == index.page(0, 1000)
    for object_id, vector in stored.items():
        np.testing.assert_allclose(loaded.vector(object_id), vector, atol=1e-6)
    assert_matches_oracle(loaded, stored, unit_vectors(np.random.default_rng(4), 5), 7)
    # new ids after a load never reuse a label of an existing object
    extra = unit_vectors(np.random.default_rng(5), 1)[0]
    loaded.upsert(extra, meta("after-load"))
    stored["after-load"] = extra
    assert_matches_oracle(loaded, stored, np.vstack([extra, stored["obj-001"]]), 3)


def test_a_crash_mid_save_leaves_the_previous_snapshot_loadable(filled, tmp_path, monkeypatch):
    index, _ = filled
    path = tmp_path / "search.npz"
    index.save(path)
    index.remove("obj-001")
    index.upsert(unit_vectors(np.random.default_rng(6), 1)[0], meta("obj-999"))

    def power_cut(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError):
        index.save(path)
    monkeypatch.undo()

    previous = VectorIndex.load(path)
    assert len(previous) == 120
    assert "obj-001" in previous and "obj-999" not in previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search.npz"]


def _write_npz(path, **arrays):
    np.savez(path, **arrays)


def test_corrupt_or_foreign_files_raise_snapshot_error(filled, tmp_path):
    index, _ = filled
    good = tmp_path / "good.npz"
    index.save(good)
    data = good.read_bytes()
    cases = {
        "random.npz": np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes(),
        "truncated.npz": data[: len(data) // 2],
        "empty.npz": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    with np.load(good) as arrays:
        _write_npz(tmp_path / "no-index.npz", state=arrays["state"])
        _write_npz(tmp_path / "bad-format.npz", state=np.frombuffer(b'{"format": 99}', np.uint8), index=arrays["index"])
        bad_json = np.frombuffer(b"{not json", np.uint8)
        _write_npz(tmp_path / "bad-json.npz", state=bad_json, index=arrays["index"])

    for name in [*cases, "no-index.npz", "bad-format.npz", "bad-json.npz"]:
        with pytest.raises(SnapshotError):
            VectorIndex.load(tmp_path / name)


def test_an_inconsistent_snapshot_is_refused(tmp_path):
    rng = np.random.default_rng(7)
    small, big = VectorIndex(D), VectorIndex(D)
    for i, vector in enumerate(unit_vectors(rng, 3)):
        small.upsert(vector, meta(f"o{i}"))
        big.upsert(vector, meta(f"o{i}"))
    big.upsert(unit_vectors(rng, 1)[0], meta("o3"))
    small.save(tmp_path / "small.npz")
    big.save(tmp_path / "big.npz")
    with np.load(tmp_path / "small.npz") as s, np.load(tmp_path / "big.npz") as b:
        _write_npz(tmp_path / "mixed.npz", state=s["state"], index=b["index"])

    with pytest.raises(SnapshotError, match="inconsistent"):
        VectorIndex.load(tmp_path / "mixed.npz")


def test_a_snapshot_with_an_invalid_catalogue_entry_is_refused(filled, tmp_path):
    index, _ = filled
    index.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as arrays:
        state = json.loads(bytes(arrays["state"]))
        first = next(iter(state["metadata"]))
        state["metadata"][first]["title"] = 7
        payload = np.frombuffer(json.dumps(state).encode(), np.uint8)
        _write_npz(tmp_path / "bad-entry.npz", state=payload, index=arrays["index"])

    with pytest.raises(SnapshotError, match="invalid catalogue entry"):
        VectorIndex.load(tmp_path / "bad-entry.npz")


def test_catalogue_entries_read_back_equal_after_a_save_load_and_a_change(filled, tmp_path):
    index, _ = filled
    index.save(tmp_path / "s.npz")
    loaded = VectorIndex.load(tmp_path / "s.npz")
    ids = [m.object_id for m in index.page(0, 1000)[0]]
    assert [loaded.get(i) for i in ids] == [index.get(i) for i in ids]
    changed = ObjectMetadata(object_id=ids[0], title="Nouveau titre", extra={"salle": "Ré"})
    loaded.update_metadata(changed)
    assert loaded.get(ids[0]) == changed
    assert loaded.search(np.asarray([loaded.vector(ids[0])]), 1)[0][0].metadata == changed


def test_loading_a_missing_file_raises_snapshot_error(tmp_path):
    with pytest.raises(SnapshotError):
        VectorIndex.load(tmp_path / "absent.npz")


def test_ivf_kind_is_exact_until_trained_then_trains_once_and_finds_exact_duplicates(tmp_path):
    rng = np.random.default_rng(8)
    vectors = unit_vectors(rng, 80)
    index = VectorIndex(D, kind="ivf", ivf_lists=4, ivf_probe=1, ivf_train_factor=5)
    stored = {}
    for i, vector in enumerate(vectors[:19]):
        index.upsert(vector, meta(f"v{i}"))
        stored[f"v{i}"] = vector
    assert not isinstance(index._index, faiss.IndexIVF)  # 19 < 5 x 4: still exact
    assert_matches_oracle(index, stored, unit_vectors(rng, 4), 5)

    index.upsert(vectors[19], meta("v19"))
    trained = index._index
    assert isinstance(trained, faiss.IndexIVF) and trained.is_trained and trained.nlist == 4
    for i, vector in enumerate(vectors[20:], start=20):
        index.upsert(vector, meta(f"v{i}"))
    assert index._index is trained  # trained once, later vectors added to the same lists

    index.upsert(vectors[0], meta("v0"))  # replace and remove still work on the IVF structure
    index.remove("v1")
    assert len(index) == 79
    expected = [f"v{i}" for i in range(80) if i != 1]
    top = index.search(np.vstack([vectors[i] for i in range(80) if i != 1]), 1)
    assert [hits[0].object_id for hits in top] == expected
    assert all(hits[0].score == pytest.approx(1.0, abs=1e-5) for hits in top)
    np.testing.assert_allclose(index.vector("v7"), vectors[7], atol=1e-6)  # stored vectors stay retrievable

    index.save(tmp_path / "ivf.npz")
    loaded = VectorIndex.load(tmp_path / "ivf.npz")
    assert isinstance(loaded._index, faiss.IndexIVF) and loaded._index.nprobe == 1
    assert loaded.kind == "ivf" and len(loaded) == 79
    assert loaded.search(vectors[5][None, :], 1)[0][0].object_id == "v5"
    np.testing.assert_allclose(loaded.vector("v5"), vectors[5], atol=1e-6)
    assert loaded.remove("v5") and "v5" not in {h.object_id for h in loaded.search(vectors[5][None, :], 3)[0]}


def test_dimension_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        VectorIndex(0)
