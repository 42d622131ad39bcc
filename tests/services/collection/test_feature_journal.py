"""A mapped feature store saves a few changes as a journal beside its file instead of rewriting every reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import services.collection.features as store_module
from services.collection.features import FeatureFileWatch, FeatureStore, file_signature, journal_path
from tests.services.collection.test_features import assert_same, features


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "features.npz"
    store = FeatureStore(extractor="x")
    for i in range(10):
        store.put(f"ref{i}", features(i))
    store.save(path)
    return path


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
def test_a_few_changes_go_to_the_journal_and_every_load_applies_them(base: Path, mapped: bool) -> None:
    before = file_signature(base)
    store = FeatureStore.load(base, mapped=True)
    store.put("new", features(20))
    store.put("ref3", features(21))  # replaces a reference of the base
    store.remove("ref5")
    version = store.save(base)

    assert file_signature(base) == before and journal_path(base).is_file()  # the base was not rewritten
    loaded = FeatureStore.load(base, mapped=mapped)
    assert loaded.version == version and "ref5" not in loaded and len(loaded) == 10
    assert sorted(loaded.ids()) == sorted([f"ref{i}" for i in range(10) if i != 5] + ["new"])
    assert_same(loaded.get("new"), features(20))
    assert_same(loaded.get("ref3"), features(21))
    assert_same(loaded.get("ref4"), features(4))
    assert loaded.keypoints_total() == 10 * 7


def test_past_its_share_the_journal_is_folded_into_a_rewritten_base(base: Path, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "JOURNAL_MIN", 2)
    store = FeatureStore.load(base, mapped=True)
    store.put("a", features(30))
    store.save(base)
    assert journal_path(base).is_file()
    store.put("b", features(31))
    store.put("c", features(32))  # three changes over a base of ten: more than max(2, 2 %)
    before = file_signature(base)
    store.save(base)
    assert file_signature(base) != before and not journal_path(base).exists()
    again = FeatureStore.load(base)
    assert {"a", "b", "c"} <= set(again.ids()) and len(again) == 13
    store.put("d", features(33))  # the store now maps the new base: the next change is journaled again
    store.save(base)
    assert journal_path(base).is_file() and "d" in FeatureStore.load(base, mapped=True)


def test_a_journal_left_by_an_interrupted_fold_is_ignored(base: Path, tmp_path: Path) -> None:
    store = FeatureStore.load(base, mapped=True)
    store.put("kept", features(40))
    store.save(base)
    stale = tmp_path / "stale.delta"
    shutil.copy(journal_path(base), stale)
    full = FeatureStore.load(base)  # not mapped: its save rewrites the base and deletes the journal
    full.remove("kept")
    full.save(base)
    shutil.copy(stale, journal_path(base))  # as if the crash came before the journal was deleted

    loaded = FeatureStore.load(base, mapped=True)
    assert "kept" not in loaded and len(loaded) == 10  # the journal names the older base


def test_a_replica_picks_up_a_journal_only_change(base: Path) -> None:
    watch = FeatureFileWatch(base)
    watch.mark_written()
    assert not watch.reload_if_replaced(lambda: None)
    writer = FeatureStore.load(base, mapped=True)
    writer.put("new", features(50))
    writer.save(base)
    loads: list[int] = []
    assert watch.reload_if_replaced(lambda: loads.append(1)) and loads == [1]


def test_a_corrupt_journal_is_refused_naming_it(base: Path) -> None:
    journal_path(base).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(store_module.FeatureStoreError, match="delta"):
        FeatureStore.load(base)
