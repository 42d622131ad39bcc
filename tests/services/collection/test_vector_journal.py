"""The search index saves a few changes as a journal beside its file instead of rewriting the whole index."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import services.collection.vector_journal as journal_module
from services.collection.vector_journal import journal_path
from services.collection.vectors import SnapshotError, VectorIndex
from services.common.atomic import file_signature
from services.common.schemas import ObjectMetadata

D = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, D)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, np.ndarray]:
    vectors = unit(np.random.default_rng(0), 20)
    index = VectorIndex(D)
    index.add_many(vectors, [ObjectMetadata(object_id=f"o{i}", title=f"T{i}") for i in range(20)])
    path = tmp_path / "search.npz"
    index.save(path)
    return path, vectors


def test_a_few_changes_are_journaled_and_a_load_replays_them(saved: tuple[Path, np.ndarray]) -> None:
    path, vectors = saved
    before = file_signature(path)
    index = VectorIndex.load(path)
    new = unit(np.random.default_rng(1), 2)
    index.upsert(new[0], ObjectMetadata(object_id="new", title="New"))
    index.upsert(new[1], ObjectMetadata(object_id="o3", title="Replaced"))
    index.remove("o5")
    index.update_metadata(ObjectMetadata(object_id="o7", title="Renamed"))
    version = index.save(path)

    assert file_signature(path) == before and journal_path(path).is_file()  # the file was not rewritten
    loaded = VectorIndex.load(path)
    assert loaded.version == version and len(loaded) == 20 and "o5" not in loaded
    assert loaded.get("o7").title == "Renamed" and loaded.get("o3").title == "Replaced"
    np.testing.assert_allclose(loaded.vector("new"), new[0], atol=1e-6)
    np.testing.assert_allclose(loaded.vector("o3"), new[1], atol=1e-6)
    assert loaded.search(new[:1], 1)[0][0].object_id == "new"
    assert loaded.search(vectors[9:10], 1)[0][0].object_id == "o9"

    loaded.remove("new")  # a replayed journal keeps its changes: the next small save holds all of them
    loaded.save(path)
    again = VectorIndex.load(path)
    assert "new" not in again and again.get("o3").title == "Replaced" and "o5" not in again


def test_past_its_share_the_journal_is_folded_into_a_rewritten_file(saved, monkeypatch) -> None:
    path, _ = saved
    monkeypatch.setattr(journal_module, "JOURNAL_MIN", 2)
    index = VectorIndex.load(path)
    extra = unit(np.random.default_rng(2), 3)
    for i, vector in enumerate(extra):
        index.upsert(vector, ObjectMetadata(object_id=f"x{i}"))
    before = file_signature(path)
    index.save(path)
    assert file_signature(path) != before and not journal_path(path).exists()
    assert len(VectorIndex.load(path)) == 23


def test_a_journal_naming_an_older_file_is_ignored(saved, tmp_path: Path) -> None:
    path, _ = saved
    index = VectorIndex.load(path)
    index.upsert(unit(np.random.default_rng(3), 1)[0], ObjectMetadata(object_id="kept"))
    index.save(path)
    stale = tmp_path / "stale"
    shutil.copy(journal_path(path), stale)
    whole = VectorIndex.load(path)
    whole.add_many(unit(np.random.default_rng(4), 1), [ObjectMetadata(object_id="bulk")])  # forces a rewrite
    whole.remove("kept")
    whole.save(path)
    shutil.copy(stale, journal_path(path))  # as if the crash came before the journal was deleted
    loaded = VectorIndex.load(path)
    assert "kept" not in loaded and "bulk" in loaded


def test_a_file_replaced_by_another_writer_is_not_journaled_over(saved) -> None:
    path, _ = saved
    ours = VectorIndex.load(path)
    other = VectorIndex.load(path)
    other.add_many(unit(np.random.default_rng(5), 1), [ObjectMetadata(object_id="theirs")])
    other.save(path)  # rewritten: our journal would name a file that is gone
    ours.upsert(unit(np.random.default_rng(6), 1)[0], ObjectMetadata(object_id="ours"))
    ours.save(path)
    assert not journal_path(path).exists() and "ours" in VectorIndex.load(path)


def test_a_corrupt_journal_is_refused_naming_it(saved) -> None:
    path, _ = saved
    journal_path(path).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(SnapshotError, match="journal"):
        VectorIndex.load(path)


def test_a_file_without_an_id_is_rewritten_once_then_journaled(saved) -> None:
    path, _ = saved
    index = VectorIndex.load(path)
    index.journal.base_id = ""  # as loaded from a file written before journals
    index.upsert(unit(np.random.default_rng(7), 1)[0], ObjectMetadata(object_id="first"))
    index.save(path)
    assert not journal_path(path).exists() and "first" in VectorIndex.load(path)
    index.upsert(unit(np.random.default_rng(8), 1)[0], ObjectMetadata(object_id="second"))
    index.save(path)
    assert journal_path(path).exists() and "second" in VectorIndex.load(path)
