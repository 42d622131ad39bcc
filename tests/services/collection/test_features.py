"""Behaviour of the reference feature store: mapping semantics, versions, atomic and validated persistence."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from services.collection import features as store_module
from services.collection.features import (
    DESCRIPTOR_SIZE,
    FeatureSet,
    FeatureStore,
    FeatureStoreError,
    OutdatedFeatures,
    file_signature,
)


def features(seed: int, n: int = 7, width: int = 64, height: int = 48) -> FeatureSet:
    rng = np.random.default_rng(seed)
    keypoints = np.column_stack([rng.uniform(0, width, n), rng.uniform(0, height, n)]).astype(np.float32)
    return FeatureSet(keypoints, rng.integers(0, 256, (n, DESCRIPTOR_SIZE), dtype=np.uint8), width, height)


def assert_same(a: FeatureSet | None, b: FeatureSet | None) -> None:
    assert a is not None and b is not None
    assert np.array_equal(a.keypoints, b.keypoints) and a.keypoints.dtype == b.keypoints.dtype
    assert np.array_equal(a.descriptors, b.descriptors) and a.descriptors.dtype == b.descriptors.dtype
    assert (a.width, a.height) == (b.width, b.height)


@pytest.fixture
def filled() -> FeatureStore:
    store = FeatureStore()
    store.put("mcv_bbdd_00001", features(1))
    store.put("estense_019", features(2, n=0, width=300, height=400))
    store.put("pd_starry_night", features(3, n=50))
    return store


def test_put_get_replace_remove_and_membership():
    store = FeatureStore()
    assert len(store) == 0 and store.get("a") is None and "a" not in store and store.version == 0

    store.put("a", features(1))
    store.put("b", features(2))
    store.put("a", features(3))

    assert store.ids() == ["a", "b"] and len(store) == 2 and "a" in store
    assert_same(store.get("a"), features(3))
    assert store.version == 3
    assert store.remove("a") is True
    assert store.remove("a") is False
    assert store.ids() == ["b"] and "a" not in store and list(store) == ["b"]
    assert store.version == 4


@pytest.mark.parametrize("object_id, value", [("", features(1)), (7, features(1)), ("a", "not features")])
def test_put_rejects_bad_ids_and_values(object_id, value):
    with pytest.raises(ValueError):
        FeatureStore().put(object_id, value)


def test_save_and_load_round_trip(tmp_path: Path, filled: FeatureStore):
    path = tmp_path / "features.npz"
    assert filled.save(path) == 3

    loaded = FeatureStore.load(path)

    assert loaded.ids() == filled.ids()
    for object_id in filled.ids():
        assert_same(loaded.get(object_id), filled.get(object_id))
    assert loaded.version == filled.version == 3
    assert loaded.saved_at == filled.saved_at and loaded.saved_at is not None
    assert [p.name for p in tmp_path.iterdir()] == ["features.npz"]


def test_empty_store_round_trips(tmp_path: Path):
    FeatureStore().save(tmp_path / "empty.npz")
    loaded = FeatureStore.load(tmp_path / "empty.npz")
    assert len(loaded) == 0 and loaded.version == 0


def test_load_or_empty_on_a_missing_file_is_empty(tmp_path: Path):
    store = FeatureStore.load_or_empty(tmp_path / "absent" / "features.npz")
    assert len(store) == 0 and store.saved_at is None
    with pytest.raises(FileNotFoundError):
        FeatureStore.load(tmp_path / "absent.npz")


@pytest.mark.parametrize("failure", ["replace", "write"])
def test_crash_mid_save_leaves_the_previous_file_loadable(tmp_path, filled, monkeypatch, failure):
    path = tmp_path / "features.npz"
    filled.save(path)
    before = file_signature(path)
    filled.put("new_object", features(9))
    filled.remove("mcv_bbdd_00001")

    def crash(*args, **kwargs):
        if failure == "write":
            args[0].write(b"PK\x03\x04 half a zip")
        raise OSError("simulated crash")

    if failure == "replace":
        monkeypatch.setattr(os, "replace", crash)
    else:
        monkeypatch.setattr(store_module, "_write_streamed", crash)
    with pytest.raises(OSError, match="simulated crash"):
        filled.save(path)
    monkeypatch.undo()

    previous = FeatureStore.load(path)
    assert previous.ids() == ["mcv_bbdd_00001", "estense_019", "pd_starry_night"] and previous.version == 3
    assert_same(previous.get("mcv_bbdd_00001"), features(1))
    assert file_signature(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["features.npz"]


def test_file_signature_tells_a_replica_a_newer_file_exists(tmp_path, filled):
    path = tmp_path / "features.npz"
    assert file_signature(path) is None
    filled.save(path)
    first = file_signature(path)
    filled.put("another", features(4))
    filled.save(path)
    assert first is not None and file_signature(path) != first
    assert FeatureStore.load(path).version == 4


def _write_arrays(path: Path, **overrides: np.ndarray) -> None:
    arrays = {
        "header": _header(),
        "keypoints": np.zeros((2, 2), np.float32),
        "descriptors": np.zeros((2, DESCRIPTOR_SIZE), np.uint8),
        "offsets": np.array([0, 2], np.int64),
        "sizes": np.array([[10, 10]], np.int64),
    }
    np.savez(path, **(arrays | overrides))


def _header(**fields: object) -> np.ndarray:
    header = {
        "format": store_module.FORMAT,
        "format_version": store_module.FORMAT_VERSION,
        "version": 1,
        "saved_at": 0.0,
        "ids": ["a"],
    }
    return np.frombuffer(json.dumps(header | fields).encode(), np.uint8)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"offsets": np.array([0, 3], np.int64)}, "offsets"),
        ({"offsets": np.array([0, 1, 2], np.int64)}, "offsets"),
        ({"sizes": np.array([[0, 10]], np.int64)}, "width"),
        ({"descriptors": np.zeros((2, 31), np.uint8)}, "descriptors"),
        ({"keypoints": np.zeros((2, 2), np.float64)}, "keypoints"),
        ({"header": _header(format="something else")}, "format"),
        ({"header": _header(format_version=99)}, "format version"),
        ({"header": _header(ids=["a", "a"])}, "distinct"),
        ({"header": np.frombuffer(b"{not json", np.uint8)}, "corrupt"),
        ({"header": np.array(["pickled?"], dtype=object)}, "unreadable"),
    ],
)
@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
def test_inconsistent_file_raises_a_clear_error_naming_it(tmp_path, overrides, message, mapped):
    path = tmp_path / "bad.npz"
    _write_arrays(path, **overrides)
    with pytest.raises(FeatureStoreError, match=message) as caught:
        FeatureStore.load(path, mapped=mapped)
    assert str(path) in str(caught.value)


def test_a_file_of_an_older_format_says_to_extract_the_features_again(tmp_path):
    path = tmp_path / "orb.npz"
    _write_arrays(path, header=_header(format_version=1), descriptors=np.zeros((2, 32), np.uint8))

    with pytest.raises(OutdatedFeatures, match="index build") as caught:
        FeatureStore.load(path)
    assert str(path) in str(caught.value) and "format version 1" in str(caught.value)


def test_the_extractor_stamp_survives_a_save(tmp_path):
    store = FeatureStore({"a": features(5)}, extractor="rootsift-v1:test")
    store.save(tmp_path / "f.npz")

    assert FeatureStore.load(tmp_path / "f.npz").extractor == "rootsift-v1:test"


def test_a_reader_refuses_features_of_another_extractor_and_stamps_unstamped_ones(tmp_path):
    FeatureStore({"a": features(5)}, extractor="orb-v0:old").save(tmp_path / "old.npz")
    FeatureStore({"a": features(5)}).save(tmp_path / "unstamped.npz")

    with pytest.raises(OutdatedFeatures, match="orb-v0:old"):
        FeatureStore.load(tmp_path / "old.npz", extractor="rootsift-v1:test")
    assert FeatureStore.load(tmp_path / "unstamped.npz", extractor="rootsift-v1:test").extractor == "rootsift-v1:test"
    assert FeatureStore.load_or_empty(tmp_path / "none.npz", extractor="rootsift-v1:test").extractor == (
        "rootsift-v1:test"
    )


def test_well_formed_file_written_by_hand_loads(tmp_path):
    _write_arrays(tmp_path / "ok.npz")
    assert FeatureStore.load(tmp_path / "ok.npz").ids() == ["a"]


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a zip", "truncate"])
def test_unreadable_file_raises_feature_store_error(tmp_path, filled, content):
    path = tmp_path / "features.npz"
    if content == "truncate":
        filled.save(path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)

    with pytest.raises(FeatureStoreError, match=r"features\.npz"):
        FeatureStore.load(path)
    with pytest.raises(ValueError):  # load_or_empty never hides a corrupt file behind an empty store
        FeatureStore.load_or_empty(path)


def test_npz_missing_arrays_is_not_a_feature_file(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(FeatureStoreError, match="not a feature file"):
        FeatureStore.load(tmp_path / "other.npz")


def test_concurrent_writers_and_readers_see_consistent_state(tmp_path):
    store = FeatureStore()
    shared = features(0)
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        for i in range(200):
            store.put(f"w{worker}-{i}", shared)
            if i % 2:
                store.remove(f"w{worker}-{i - 1}")

    def reader() -> None:
        try:
            for _ in range(400):
                for object_id in store.ids():
                    value = store.get(object_id)
                    assert value is None or value is shared
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)] + [
        threading.Thread(target=reader) for _ in range(2)
    ]
    saver = threading.Thread(target=lambda: [store.save(tmp_path / "f.npz") for _ in range(5)])
    for thread in [*threads, saver]:
        thread.start()
    for thread in [*threads, saver]:
        thread.join()

    assert not errors
    assert len(store) == 4 * 100 and store.version == 4 * (200 + 100)
    assert len(FeatureStore.load(tmp_path / "f.npz")) <= 4 * 200


def test_a_mapped_store_reads_features_from_the_file_and_keeps_changes_until_saved_again(tmp_path, filled):
    path = tmp_path / "features.npz"
    filled.save(path)
    mapped = FeatureStore.load(path, mapped=True)
    assert mapped.ids() == filled.ids() and mapped.version == filled.version
    for object_id in filled.ids():
        assert_same(mapped.get(object_id), filled.get(object_id))
    assert not mapped.get("estense_019").descriptors.flags.owndata  # a view of the mapped file, not a copy

    mapped.put("new_object", features(9))
    mapped.put("estense_019", features(5))  # replaces a mapped reference
    assert mapped.remove("mcv_bbdd_00001") and not mapped.remove("mcv_bbdd_00001")
    assert mapped.ids() == ["pd_starry_night", "new_object", "estense_019"] and len(mapped) == 3
    assert "mcv_bbdd_00001" not in mapped and mapped.get("mcv_bbdd_00001") is None
    assert_same(mapped.get("estense_019"), features(5))

    version = mapped.save(path)  # streamed into a new file, then mapped again
    again = FeatureStore.load(path)
    assert again.version == version and again.ids() == mapped.ids()
    for object_id in again.ids():
        assert_same(again.get(object_id), mapped.get(object_id))
    assert_same(mapped.get("new_object"), features(9))


def test_a_truncated_file_is_refused_when_mapped(tmp_path, filled):
    path = tmp_path / "features.npz"
    filled.save(path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(FeatureStoreError, match=r"features\.npz"):
        FeatureStore.load(path, mapped=True)
