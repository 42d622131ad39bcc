"""A real stack for integration tests: snapshot built from the museum photos, four service processes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.embeddings.model import TimmEmbedder
from tests.support import API_KEY, HELD_OUT, SMALL_COLLECTION, free_port
from tools.cli.build import build_collection
from tools.cli.local_stack import SERVICES, LocalStack


@pytest.fixture(scope="session")
def snapshot(museum_dev: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev collection minus :data:`HELD_OUT`, indexed with the real default model."""
    source = tmp_path_factory.mktemp("collection")
    for image in (museum_dev / "objects").iterdir():
        if image.stem != HELD_OUT:
            (source / image.name).symlink_to(image)
    target = tmp_path_factory.mktemp("snapshot")
    embedder = TimmEmbedder()
    embedder.load()
    report = build_collection(source, target, embedder, catalogue=museum_dev / "objects.csv")
    assert report.total == 395 and not report.problems
    return target


@pytest.fixture(scope="session")
def stack(snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The four services as processes on free loopback ports, stopped after the session."""
    logs = tmp_path_factory.mktemp("logs")
    local = LocalStack(
        snapshot,
        ports={name: free_port() for name in SERVICES},
        env={"GATEWAY_API_KEY": API_KEY, "SEARCH_RELOAD_INTERVAL_S": "1", "GEOMETRIC_RELOAD_INTERVAL_S": "1"},
        log_dir=logs,
    )
    with local.running(timeout_s=180):
        yield local


@pytest.fixture(scope="session")
def small_snapshot(museum_dev: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the first :data:`SMALL_COLLECTION` mcv artworks, real model: a template to copy, never serve."""
    source = tmp_path_factory.mktemp("small-collection")
    for image in sorted((museum_dev / "objects").glob("mcv_bbdd_*.jpg"))[:SMALL_COLLECTION]:
        (source / image.name).symlink_to(image)
    target = tmp_path_factory.mktemp("small-snapshot")
    embedder = TimmEmbedder()
    embedder.load()
    report = build_collection(source, target, embedder, catalogue=museum_dev / "objects.csv")
    assert report.total == SMALL_COLLECTION and not report.problems
    return target


@pytest.fixture(scope="module")
def own_snapshot(small_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the small snapshot that this module's stack may change freely."""
    target = tmp_path_factory.mktemp("own-snapshot") / "snapshot"
    shutil.copytree(small_snapshot, target)
    return target
