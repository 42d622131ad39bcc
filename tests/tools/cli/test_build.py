"""Incremental collection builds: only new or changed images are embedded, every indexed object has features."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from services.collection.features import FORMAT, FeatureStore
from services.collection.local import LocalFeatures
from services.collection.stamp import ModelMismatch
from services.collection.vectors import VectorIndex
from services.common.errors import ConfigurationError
from services.geometric.verify import VerifyParams
from tests.services.fakes import FakeEmbedder, encode, textured
from tools.cli import build as build_module
from tools.cli.build import build_collection, check_snapshot, sha256_file
from tools.cli.main import main


@pytest.fixture
def source(tmp_path) -> Path:
    folder = tmp_path / "source"
    folder.mkdir()
    (folder / "alpha.jpg").write_bytes(encode(textured(30, (160, 120))))
    (folder / "beta.PNG").write_bytes(encode(textured(31, (120, 160)), "PNG"))
    (folder / "gamma.webp").write_bytes(encode(textured(32, (160, 120)), "WEBP", quality=90))
    return folder


@pytest.fixture
def snapshot(tmp_path) -> Path:
    return tmp_path / "snapshot"


def write_catalogue(path: Path, title_of_alpha: str = "Alpha") -> Path:
    path.write_text(f"object_id,title,artist,medium\nalpha,{title_of_alpha},Anne,oil\nbeta,Beta,Bob,\n")
    return path


def assert_consistent(snapshot: Path) -> tuple[VectorIndex, FeatureStore]:
    """Every object of the index has reference features and a copied image, and nothing else has features."""
    index = VectorIndex.load(snapshot / "search.npz")
    store = FeatureStore.load(snapshot / "features.npz")
    ids = {m.object_id for m in index.page(0, 10_000)[0]}
    assert ids == set(store.ids())
    assert check_snapshot(snapshot) == (len(ids), len(ids))
    for object_id in ids:
        meta = index.get(object_id)
        assert (snapshot / "images" / meta.image_file).is_file()
        assert len(store.get(object_id)) > 50
    return index, store


def test_first_build_adds_every_image_with_vectors_features_and_images(source, snapshot, tmp_path):
    embedder = FakeEmbedder()

    report = build_collection(source, snapshot, embedder, catalogue=write_catalogue(tmp_path / "c.csv"))

    assert sorted(report.added) == ["alpha", "beta", "gamma"] and report.total == 3
    assert report.updated == [] and report.unchanged == 0 and report.problems == []
    index, _ = assert_consistent(snapshot)
    alpha = index.get("alpha")
    assert (alpha.title, alpha.artist, alpha.extra) == ("Alpha", "Anne", {"medium": "oil"})
    assert alpha.source_sha256 == sha256_file(source / "alpha.jpg") and alpha.image_file == "alpha.jpg"
    assert index.get("beta").image_file == "beta.png"
    assert index.get("gamma").title == ""  # not in the catalogue
    assert index.model == "fake-thumbnail" and index.dimension == embedder.dimension
    assert (snapshot / "images" / "alpha.jpg").read_bytes() == (source / "alpha.jpg").read_bytes()


def test_a_rebuild_of_an_unchanged_folder_embeds_nothing(source, snapshot):
    build_collection(source, snapshot, FakeEmbedder())
    embedder = FakeEmbedder()

    report = build_collection(source, snapshot, embedder)

    assert report.unchanged == 3 and report.added == report.updated == report.metadata_only == []
    assert embedder.calls == []
    assert report.total == 3
    assert_consistent(snapshot)


def test_a_changed_file_is_embedded_again(source, snapshot):
    build_collection(source, snapshot, FakeEmbedder())
    before = VectorIndex.load(snapshot / "search.npz").vector("beta")
    (source / "beta.PNG").write_bytes(encode(textured(77, (120, 160)), "PNG"))
    embedder = FakeEmbedder()

    report = build_collection(source, snapshot, embedder)

    assert report.updated == ["beta"] and report.unchanged == 2 and report.added == []
    assert embedder.calls == [1]
    index, _ = assert_consistent(snapshot)
    assert not np.allclose(index.vector("beta"), before)
    assert index.get("beta").source_sha256 == sha256_file(source / "beta.PNG")
    assert (snapshot / "images" / "beta.png").read_bytes() == (source / "beta.PNG").read_bytes()


def test_a_catalogue_change_updates_metadata_only(source, snapshot, tmp_path):
    build_collection(source, snapshot, FakeEmbedder(), catalogue=write_catalogue(tmp_path / "c.csv"))
    vector = VectorIndex.load(snapshot / "search.npz").vector("alpha")
    embedder = FakeEmbedder()

    report = build_collection(
        source, snapshot, embedder, catalogue=write_catalogue(tmp_path / "c.csv", title_of_alpha="Alpha Renamed")
    )

    assert report.metadata_only == ["alpha"] and report.unchanged == 2
    assert report.added == report.updated == [] and embedder.calls == []
    index, _ = assert_consistent(snapshot)
    alpha = index.get("alpha")
    assert alpha.title == "Alpha Renamed" and alpha.image_file == "alpha.jpg"
    assert alpha.source_sha256 == sha256_file(source / "alpha.jpg")
    np.testing.assert_array_equal(index.vector("alpha"), vector)


def test_a_missing_file_is_kept_without_prune_and_removed_with_it(source, snapshot):
    build_collection(source, snapshot, FakeEmbedder())
    (source / "gamma.webp").unlink()

    kept = build_collection(source, snapshot, FakeEmbedder())
    assert kept.removed == [] and kept.total == 3

    pruned = build_collection(source, snapshot, FakeEmbedder(), prune=True)

    assert pruned.removed == ["gamma"] and pruned.total == 2
    index, store = assert_consistent(snapshot)
    assert "gamma" not in index and "gamma" not in store
    assert not (snapshot / "images" / "gamma.webp").exists()


def test_a_file_that_changes_format_leaves_no_stale_image_copy(source, snapshot):
    build_collection(source, snapshot, FakeEmbedder())
    (source / "alpha.jpg").unlink()
    (source / "alpha.png").write_bytes(encode(textured(78, (160, 120)), "PNG"))

    report = build_collection(source, snapshot, FakeEmbedder())

    assert report.updated == ["alpha"]
    assert sorted(p.name for p in (snapshot / "images").glob("alpha.*")) == ["alpha.png"]
    assert_consistent(snapshot)


def test_an_unreadable_image_is_reported_and_skipped(source, snapshot):
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (source / "bad name.jpg").write_bytes(b"x")

    report = build_collection(source, snapshot, FakeEmbedder())

    assert sorted(report.added) == ["alpha", "beta", "gamma"]
    assert any(p.startswith("broken.jpg:") and p.endswith("skipped") for p in report.problems)
    assert any(p.startswith("bad name.jpg:") for p in report.problems)
    index, _ = assert_consistent(snapshot)
    assert "broken" not in index


def test_unreadable_images_are_reported_in_the_folders_order_whatever_decodes_first(source, snapshot):
    for name in ("a-broken.jpg", "delta-broken.jpg", "zeta-broken.jpg"):
        (source / name).write_bytes(b"\xff\xd8\xff not really a jpeg")

    report = build_collection(source, snapshot, FakeEmbedder(), batch_size=1, workers=3)

    assert [p.split(":")[0] for p in report.problems] == ["a-broken.jpg", "delta-broken.jpg", "zeta-broken.jpg"]
    assert sorted(report.added) == ["alpha", "beta", "gamma"]


def test_small_batches_give_the_same_collection(source, snapshot, tmp_path):
    embedder = FakeEmbedder()
    ticks: list[int] = []

    def progress(total: int):
        ticks.append(-total)
        return ticks.append

    report = build_collection(source, snapshot, embedder, batch_size=2, progress=progress)

    assert sorted(report.added) == ["alpha", "beta", "gamma"]
    assert embedder.calls == [2, 1]
    assert ticks == [-3, 2, 1]
    one_batch = tmp_path / "one-batch"
    build_collection(source, one_batch, FakeEmbedder())
    a, b = VectorIndex.load(snapshot / "search.npz"), VectorIndex.load(one_batch / "search.npz")
    for object_id in ("alpha", "beta", "gamma"):
        np.testing.assert_allclose(a.vector(object_id), b.vector(object_id), atol=1e-6)


def test_a_snapshot_of_another_model_is_refused(source, snapshot):
    build_collection(source, snapshot, FakeEmbedder("model-a"))

    with pytest.raises(ModelMismatch, match="model-a"):
        build_collection(source, snapshot, FakeEmbedder("model-b"))


def test_lost_features_are_rebuilt_for_every_indexed_object(source, snapshot):
    build_collection(source, snapshot, FakeEmbedder())
    (snapshot / "features.npz").unlink()

    report = build_collection(source, snapshot, FakeEmbedder())

    assert sorted(report.updated) == ["alpha", "beta", "gamma"]
    assert_consistent(snapshot)


def test_features_of_another_extractor_are_extracted_again_and_stamped(source, snapshot):
    build_collection(source, snapshot, FakeEmbedder())
    old = FeatureStore.load(snapshot / "features.npz")
    stale = FeatureStore({i: f for i in old.ids() if (f := old.get(i)) is not None}, extractor="orb-v0:old")
    stale.save(snapshot / "features.npz")

    report = build_collection(source, snapshot, FakeEmbedder())

    assert sorted(report.updated) == ["alpha", "beta", "gamma"]
    _, store = assert_consistent(snapshot)
    assert store.extractor == VerifyParams().extractor_stamp()


def test_a_feature_file_of_an_older_format_is_extracted_again(source, snapshot):
    build_collection(source, snapshot, FakeEmbedder())
    header = {"format": FORMAT, "format_version": 1, "version": 1, "saved_at": 0.0, "ids": ["alpha"]}
    np.savez(
        snapshot / "features.npz",
        header=np.frombuffer(json.dumps(header).encode(), np.uint8),
        keypoints=np.zeros((2, 2), np.float32),
        descriptors=np.zeros((2, 32), np.uint8),
        offsets=np.array([0, 2], np.int64),
        sizes=np.array([[10, 10]], np.int64),
    )

    report = build_collection(source, snapshot, FakeEmbedder())

    assert sorted(report.updated) == ["alpha", "beta", "gamma"]
    assert_consistent(snapshot)


def test_an_empty_folder_builds_an_empty_feature_file_and_no_index(tmp_path, snapshot):
    (tmp_path / "empty").mkdir()

    report = build_collection(tmp_path / "empty", snapshot, FakeEmbedder())

    assert report.total == 0 and report.added == []
    assert len(FeatureStore.load(snapshot / "features.npz")) == 0
    assert not (snapshot / "search.npz").exists()


def fake_models(monkeypatch) -> list[str]:
    """Make ``index build`` load a :class:`FakeEmbedder` named by the EMBEDDINGS_* settings it read; returns the
    names it was asked for."""
    from services.embeddings.model import TimmEmbedder

    asked: list[str] = []

    def from_settings(cls, settings):
        asked.append(settings.model_name)
        return FakeEmbedder(settings.model_name)

    monkeypatch.setattr(TimmEmbedder, "from_settings", classmethod(from_settings))
    return asked


def test_index_build_embeds_with_the_embeddings_services_model_settings(source, snapshot, monkeypatch, capsys):
    asked = fake_models(monkeypatch)
    monkeypatch.setenv("EMBEDDINGS_MODEL_NAME", "model-a")

    assert main(["index", "build", str(source), "--snapshot", str(snapshot)]) == 0

    assert asked == ["model-a"]
    assert VectorIndex.load(snapshot / "search.npz").model == "model-a"
    assert "3 objects" in capsys.readouterr().out


def test_index_build_refuses_a_snapshot_of_another_model_with_a_clear_error(source, snapshot, monkeypatch, capsys):
    fake_models(monkeypatch)
    build_collection(source, snapshot, FakeEmbedder("model-a"))
    monkeypatch.setenv("EMBEDDINGS_MODEL_NAME", "model-b")

    assert main(["index", "build", str(source), "--snapshot", str(snapshot)]) == 2

    error = capsys.readouterr().err
    assert error.startswith("error: snapshot") and "'model-a'" in error and "'model-b'" in error
    assert VectorIndex.load(snapshot / "search.npz").model == "model-a"  # untouched


def test_index_build_reports_an_unusable_model_setting(source, snapshot, monkeypatch, capsys):
    monkeypatch.setenv("EMBEDDINGS_MODEL_NAME", "resnet18")  # not the default, and no EMBEDDINGS_WEIGHTS_PATH

    assert main(["index", "build", str(source), "--snapshot", str(snapshot)]) == 2

    assert "'resnet18' needs weights_path" in capsys.readouterr().err
    assert not snapshot.exists()


class _Interrupt(Exception):
    """Stands for a build stopped by Ctrl-C or a crash."""


def test_an_interrupted_build_resumes_from_its_last_checkpoint(source, snapshot):
    class Stopping(FakeEmbedder):
        def embed(self, images):
            if len(self.calls) == 2:  # the third batch never finishes
                raise _Interrupt
            return super().embed(images)

    (source / "delta.jpg").write_bytes(encode(textured(33, (160, 120))))
    with pytest.raises(_Interrupt):
        build_collection(source, snapshot, Stopping(), batch_size=1, checkpoint_every=2)
    index, _ = assert_consistent(snapshot)  # the checkpoint after two images is a whole snapshot
    assert len(index) == 2

    embedder = FakeEmbedder()
    report = build_collection(source, snapshot, embedder, batch_size=1, checkpoint_every=2)

    assert report.unchanged == 2 and len(report.added) == 2 and embedder.calls == [1, 1]
    assert report.total == 4 and report.checkpoints == 0 and report.rate > 0
    assert_consistent(snapshot)


def test_parallel_workers_store_features_in_the_batch_order_whatever_finishes_first(source, snapshot, tmp_path):
    build_collection(source, snapshot, FakeEmbedder(), workers=3)
    build_collection(source, tmp_path / "one-worker", FakeEmbedder(), workers=1)
    many, one = (
        FeatureStore.load(snapshot / "features.npz"),
        FeatureStore.load(tmp_path / "one-worker" / "features.npz"),
    )
    assert many.ids() == one.ids() == ["alpha", "beta", "gamma"]
    for object_id in many.ids():
        np.testing.assert_array_equal(many.get(object_id).descriptors, one.get(object_id).descriptors)


@pytest.fixture
def counted_extractions(monkeypatch) -> threading.Event:
    """Set once a reference's features have been extracted; ``LocalFeatures.extract`` counts its calls."""
    extracted = threading.Event()
    real = LocalFeatures.extract
    LocalFeatures.calls = 0  # type: ignore[attr-defined]

    def extract(self, reference):
        result = real(self, reference)
        LocalFeatures.calls += 1  # type: ignore[attr-defined]
        extracted.set()
        return result

    monkeypatch.setattr(LocalFeatures, "extract", extract)
    yield extracted
    del LocalFeatures.calls  # type: ignore[attr-defined]


def test_features_are_extracted_while_the_model_loads(source, snapshot, counted_extractions):
    class SlowLoading(FakeEmbedder):
        saw_features = False

        def load(self):
            # a build that waited for the model before extracting would keep this waiting for the whole timeout
            self.saw_features = counted_extractions.wait(timeout=30)
            super().load()

    embedder = SlowLoading()
    build_collection(source, snapshot, embedder, batch_size=1)

    assert embedder.saw_features and embedder.loaded
    assert_consistent(snapshot)


def test_extraction_runs_at_most_the_lookahead_ahead_of_the_stored_batches(
    source, snapshot, monkeypatch, counted_extractions
):
    for seed in range(34, 39):
        (source / f"extra{seed}.jpg").write_bytes(encode(textured(seed, (160, 120))))
    monkeypatch.setattr(build_module, "LOOKAHEAD_BATCHES", 1)
    seen: list[int] = []

    class Counting(FakeEmbedder):
        def embed(self, images):
            seen.append(LocalFeatures.calls)  # type: ignore[attr-defined]
            return super().embed(images)

    report = build_collection(source, snapshot, Counting(), batch_size=2)

    assert len(report.added) == 8 and len(seen) == 4
    for stored, extracted in enumerate(seen):  # before embedding batch k, at most batches k and k + 1 are extracted
        assert extracted <= 2 * (stored + 2)
    assert_consistent(snapshot)


def test_a_model_that_fails_to_load_stops_the_build_before_anything_is_saved(source, snapshot):
    class Broken(FakeEmbedder):
        def load(self):
            raise ConfigurationError("the weights do not fit the model")

    with pytest.raises(ConfigurationError, match="do not fit"):
        build_collection(source, snapshot, Broken())
    assert not snapshot.exists()
