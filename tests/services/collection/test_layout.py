"""Where a snapshot's parts live: one directory, fixed names, a documented default location."""

from __future__ import annotations

from pathlib import Path

from services.collection.layout import Snapshot, default_snapshot_dir


def test_a_snapshot_names_its_four_parts_inside_its_directory(tmp_path):
    snapshot = Snapshot(tmp_path)

    assert snapshot.search_file == tmp_path / "search.npz"
    assert snapshot.features_file == tmp_path / "features.npz"
    assert snapshot.images_dir == tmp_path / "images"
    assert snapshot.decision_file == tmp_path / "decision.json"
    assert not any(tmp_path.iterdir())  # naming the paths creates nothing


def test_the_default_snapshot_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ARTWORK_MATCHER_SNAPSHOT", str(tmp_path / "explicit"))
    assert default_snapshot_dir() == tmp_path / "explicit"

    monkeypatch.delenv("ARTWORK_MATCHER_SNAPSHOT")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_snapshot_dir() == tmp_path / "data" / "artwork-matcher" / "snapshot"

    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_snapshot_dir() == Path(tmp_path / "home" / ".local" / "share" / "artwork-matcher" / "snapshot")
