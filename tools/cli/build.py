"""``artwork-matcher index build``: index a folder of reference images into a snapshot, incrementally."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from PIL import Image

from services.common.errors import ServiceError
from services.common.images import IMAGE_SUFFIXES, decode_image, resize_max_side, to_array
from services.common.paths import FEATURES_FILE, IMAGES_DIR, SEARCH_FILE
from services.common.schemas import ObjectMetadata
from services.embeddings.model import Embedder
from services.gateway.collection import REFERENCE_MAX_SIDE
from services.geometric.store import FeatureStore, OutdatedFeatures
from services.geometric.verify import VerifyParams, extract_features
from services.search.index import VectorIndex
from tools.cli.catalogue import SourceImage, read_catalogue, scan_images

log = logging.getLogger(__name__)
Progress = Callable[[int], object]


@dataclass
class BuildReport:
    """What a build did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    metadata_only: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    total: int = 0


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _with_source(meta: ObjectMetadata, image_file: str, sha: str) -> ObjectMetadata:
    return msgspec.structs.replace(meta, image_file=image_file, source_sha256=sha)


def _same_catalogue(a: ObjectMetadata, b: ObjectMetadata) -> bool:
    return (a.title, a.artist, a.date, a.room, a.extra) == (b.title, b.artist, b.date, b.room, b.extra)


def build_collection(
    source: Path,
    snapshot: Path,
    embedder: Embedder,
    *,
    catalogue: Path | None = None,
    prune: bool = False,
    batch_size: int = 16,
    params: VerifyParams | None = None,
    progress: Callable[[int], Progress] | None = None,
) -> BuildReport:
    """Index ``source`` into ``snapshot``: only new or changed files are embedded and get features extracted.

    Features are saved before the index, so every object the index names has features, even if the build is
    interrupted between the two writes. Both files are written atomically.
    """
    params = params or VerifyParams()
    report = BuildReport()
    images, report.problems = scan_images(source)
    rows = read_catalogue(catalogue)
    index_path, features_path = snapshot / SEARCH_FILE, snapshot / FEATURES_FILE
    index = VectorIndex.load(index_path) if index_path.exists() else None
    store = _feature_store(features_path, params)
    if index is not None and index.model and index.model != embedder.name:
        raise ServiceError(
            f"snapshot {snapshot} was built with model {index.model!r}, not {embedder.name!r}; "
            "use another --snapshot or delete it to rebuild"
        )
    todo: list[tuple[SourceImage, str, ObjectMetadata]] = []
    for item in images:
        sha = sha256_file(item.path)
        meta = rows.get(item.object_id, ObjectMetadata(object_id=item.object_id))
        old = index.get(item.object_id) if index is not None else None
        if old is not None and old.source_sha256 == sha and item.object_id in store:
            if not _same_catalogue(old, meta):
                index.update_metadata(_with_source(meta, old.image_file or "", sha))  # type: ignore[union-attr]
                report.metadata_only.append(item.object_id)
            else:
                report.unchanged += 1
            continue
        todo.append((item, sha, meta))
    tick = progress(len(todo)) if progress else (lambda n: None)
    images_dir = snapshot / IMAGES_DIR
    images_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        decoded = _decode_batch(batch, report)
        if not decoded:
            tick(len(batch))
            continue
        vectors = embedder.embed([image for _, image in decoded])
        if index is None:
            index = VectorIndex(int(vectors.shape[1]), model=embedder.name)
        for (entry, image), vector in zip(decoded, vectors, strict=True):
            item, sha, meta = entry
            store.put(item.object_id, extract_features(to_array(image), params, reference=True))
            file_name = f"{item.object_id}{item.path.suffix.lower()}"
            shutil.copyfile(item.path, images_dir / file_name)
            _remove_image_copies(images_dir, item.object_id, keep=file_name)
            replaced = index.upsert(vector, _with_source(meta, file_name, sha))
            (report.updated if replaced else report.added).append(item.object_id)
        tick(len(batch))
    if prune and index is not None:
        present = {i.object_id for i in images}
        for object_id in [o.object_id for o in index.page(0, len(index))[0] if o.object_id not in present]:
            index.remove(object_id)
            store.remove(object_id)
            report.removed.append(object_id)
    snapshot.mkdir(parents=True, exist_ok=True)
    store.save(features_path)
    if index is not None:
        index.save(index_path)
        report.total = len(index)
    for object_id in report.removed:  # only once the saved index no longer names them
        _remove_image_copies(images_dir, object_id)
    return report


def _feature_store(path: Path, params: VerifyParams) -> FeatureStore:
    """The snapshot's feature store, or an empty one when its features were made by another extractor (an older
    format or other settings): every reference is then processed again."""
    stamp = params.extractor_stamp()
    try:
        return FeatureStore.load_or_empty(path, extractor=stamp)
    except OutdatedFeatures as exc:
        log.warning("%s: extracting every reference's features again", exc)
        return FeatureStore(extractor=stamp)


def _remove_image_copies(images_dir: Path, object_id: str, keep: str | None = None) -> None:
    """Delete the copied images of ``object_id``, in every format, except the file named ``keep``."""
    for suffix in sorted(IMAGE_SUFFIXES):
        name = f"{object_id}{suffix}"
        if name != keep:
            (images_dir / name).unlink(missing_ok=True)


def _decode_batch(
    batch: Sequence[tuple[SourceImage, str, ObjectMetadata]], report: BuildReport
) -> list[tuple[tuple[SourceImage, str, ObjectMetadata], Image.Image]]:
    decoded = []
    for entry in batch:
        try:
            image = decode_image(entry[0].path.read_bytes())
        except ServiceError as exc:
            report.problems.append(f"{entry[0].path.name}: {exc.message}; skipped")
            continue
        decoded.append((entry, resize_max_side(image, REFERENCE_MAX_SIDE)))
    return decoded


def check_snapshot(snapshot: Path) -> tuple[int, int]:
    """Object counts of the index and the feature store of a snapshot (for reports and tests)."""
    index = VectorIndex.load(snapshot / SEARCH_FILE)
    store = FeatureStore.load(snapshot / FEATURES_FILE)
    return len(index), len(store)
