"""``artwork-matcher index build``: index a folder of reference images into a snapshot, incrementally.

Each new or changed image goes through the collection's recipe (:mod:`services.collection.recipe`) with in-process
implementations (:mod:`services.collection.local`); the snapshot's files are read and written through the collection
package, so the services read exactly what this writes.

Throughput: the build is CPU-bound (on museum-dev, 60 % of its CPU time is the references' SIFT), so it keeps every
core busy. Images are read, decoded and prepared a batch at a time on a pool of threads, which then extract the
batch's local features (OpenCV releases the GIL); up to :data:`LOOKAHEAD_BATCHES` batches run ahead of the one being
embedded (one model call a batch, on its own thread) and stored, in the batches' order, so the snapshot does not
depend on thread timing and memory stays bounded by the lookahead, not the collection. The model is loaded on a
thread of its own while the first batches' features are extracted (a
:class:`~services.collection.local.DeferredEmbedder` imports torch and timm only then). Every ``checkpoint_every``
images the snapshot is saved, so an interrupted build resumes where it stopped: the next run finds those images
indexed with their features and skips them.

After a build that changed the snapshot (or when it has no report yet), :func:`refresh_report` runs ``index doctor``'s
analysis and saves ``report.json``: its near-duplicate pairs are what ``/identify`` answers together when a photo
cannot tell them apart. It costs a share of the indexing (museum-dev's 396 artworks: about 2.7 s against 12 s of
indexing on two cores); ``index build --no-report`` leaves it to a later ``index doctor``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from PIL import Image

from services.collection.features import FeatureSet, FeatureStore
from services.collection.images import ImageStore
from services.collection.layout import Snapshot
from services.collection.local import ImageEmbedder, LocalEmbedder, LocalFeatures, model_stamp
from services.collection.recipe import Reference, ReferenceRecipe, prepare_reference
from services.collection.report_file import CollectionReport, ReportFileError, read_report, write_report
from services.collection.sources import SourceImage, read_catalogue, scan_images
from services.collection.stamp import ensure_same_model
from services.collection.vectors import VectorIndex
from services.common.errors import ServiceError
from services.common.images import decode_image
from services.common.schemas import ObjectMetadata

Progress = Callable[[int], object]
Todo = tuple[SourceImage, str, ObjectMetadata]
"""A source image to (re)index, its SHA-256 and its catalogue fields."""


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
    seconds: float = 0.0
    checkpoints: int = 0

    @property
    def indexed(self) -> int:
        """Images embedded and extracted by this build (added or updated)."""
        return len(self.added) + len(self.updated)

    @property
    def rate(self) -> float:
        """Images indexed per second of the build (0 when it indexed none)."""
        return self.indexed / self.seconds if self.seconds > 0 and self.indexed else 0.0


@dataclass
class _Build:
    """The open snapshot of one build: its index (None until the first vector), feature extraction into its feature
    store, and its images."""

    layout: Snapshot
    index: VectorIndex | None
    features: LocalFeatures
    images: ImageStore
    report: BuildReport


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
    embedder: ImageEmbedder,
    *,
    catalogue: Path | None = None,
    prune: bool = False,
    batch_size: int = 16,
    progress: Callable[[int], Progress] | None = None,
    workers: int | None = None,
    checkpoint_every: int = 256,
) -> BuildReport:
    """Index ``source`` into ``snapshot``: only new or changed files are embedded and get features extracted.

    Features are saved before the index, so every object the index names has features, even if the build is
    interrupted between the two writes. Both files are written atomically, at the end and every
    ``checkpoint_every`` indexed images; ``workers`` threads (default: the CPU count) decode and extract.

    Raises:
        ModelMismatch: the snapshot's vectors come from another model than ``embedder``.
        ConfigurationError: ``embedder`` failed to load (raised before anything is saved).
    """
    started = time.perf_counter()
    report = BuildReport()
    sources, report.problems = scan_images(source)
    layout = Snapshot(Path(snapshot))
    index, features = _open_index(layout, embedder), LocalFeatures.open(layout.features_file)
    build = _Build(layout, index, features, ImageStore(layout.images_dir), report)
    todo = _plan(build, sources, read_catalogue(catalogue))
    tick = progress(len(todo)) if progress else (lambda n: None)
    recipe = ReferenceRecipe(LocalEmbedder(embedder), features)
    with (
        ThreadPoolExecutor(max(1, workers or os.cpu_count() or 1), thread_name_prefix="build") as pool,
        ThreadPoolExecutor(1, thread_name_prefix="build-model") as loader,
    ):
        loading = loader.submit(embedder.load) if todo else None
        batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        asyncio.run(_index_batches(build, recipe, batches, embedder, pool, loading, tick, checkpoint_every))
    removed = _prune(build, {item.object_id for item in sources}) if prune else []
    _save(build)
    for object_id in removed:  # only once the saved index no longer names them
        build.images.delete(object_id)
    report.seconds = time.perf_counter() - started
    return report


LOOKAHEAD_BATCHES = 2
"""Batches whose images are decoded and whose features are extracted ahead of the one being embedded and stored.
Extraction does not wait for the model: while it loads (4 s on two cores, imports included) the pool extracts the
first batches' features. At most this many batches of pictures at the reference size (1024 px) are held besides the
one being stored. On museum-dev (2 cores) 2 and 4 built equally fast; 4 held 100 MB more at the peak."""


async def _index_batches(
    build: _Build,
    recipe: ReferenceRecipe,
    batches: Sequence[Sequence[Todo]],
    embedder: ImageEmbedder,
    pool: Executor,
    loading: Future[None] | None,
    tick: Progress,
    checkpoint_every: int,
) -> None:
    """Extract up to :data:`LOOKAHEAD_BATCHES` batches ahead on ``pool``; embed and store the batches in order,
    saving a checkpoint every ``checkpoint_every`` stored images. ``loading`` is the model being loaded (its error,
    such as weights that do not fit, is raised before the first embedding)."""
    ahead: deque[asyncio.Task[_Extracted]] = deque()
    since_checkpoint = 0

    async def store_next() -> None:
        nonlocal loading, since_checkpoint
        size, problems, extracted = await ahead.popleft()
        build.report.problems.extend(problems)  # in the batches' order, whatever finished first
        if loading is not None:
            await asyncio.wrap_future(loading)
            loading = None
        await _store_batch(build, recipe, extracted, embedder)
        tick(size)
        since_checkpoint += size
        if since_checkpoint >= checkpoint_every and ahead:  # not after the last batch: the build saves then
            _save(build)
            build.report.checkpoints += 1
            since_checkpoint = 0

    for batch in batches:
        ahead.append(asyncio.create_task(_extract_batch(build, batch, pool)))
        if len(ahead) > LOOKAHEAD_BATCHES:
            await store_next()
    while ahead:
        await store_next()


def _save(build: _Build) -> None:
    """Write the features, then the index (so every object the index names has features), atomically."""
    build.layout.root.mkdir(parents=True, exist_ok=True)
    build.features.store.save(build.layout.features_file)
    if build.index is not None:
        build.index.save(build.layout.search_file)
        build.report.total = len(build.index)


def _open_index(layout: Snapshot, embedder: ImageEmbedder) -> VectorIndex | None:
    """The snapshot's vector index (None when it has none yet), refused when another model made its vectors."""
    if not layout.search_file.exists():
        return None
    index = VectorIndex.load(layout.search_file)
    if index.model:  # vectors added through the API before any build carry no model name
        embedder.load()  # its stamp is known once loaded
        ensure_same_model(index.stamp, model_stamp(embedder), snapshot=layout.root, who="this build")
    return index


def _plan(build: _Build, sources: Sequence[SourceImage], rows: dict[str, ObjectMetadata]) -> list[Todo]:
    """The images to embed (new, changed, or without features); catalogue-only changes are applied here."""
    todo: list[Todo] = []
    for item in sources:
        sha = sha256_file(item.path)
        meta = rows.get(item.object_id, ObjectMetadata(object_id=item.object_id))
        old = build.index.get(item.object_id) if build.index is not None else None
        if build.index is None or old is None or old.source_sha256 != sha or item.object_id not in build.features.store:
            todo.append((item, sha, meta))
        elif not _same_catalogue(old, meta):
            build.index.update_metadata(_with_source(meta, old.image_file or "", sha))
            build.report.metadata_only.append(item.object_id)
        else:
            build.report.unchanged += 1
    return todo


_Extracted = tuple[int, list[str], list[tuple[Todo, Reference, FeatureSet]]]
"""A batch ready to embed and store: its size, why images of it were skipped, and each decodable image's entry,
prepared reference and local features."""


async def _extract_batch(build: _Build, batch: Sequence[Todo], pool: Executor) -> _Extracted:
    """Steps 1 and 3 of the recipe for a batch, on ``pool``: each image read, decoded and prepared (an unreadable
    one is reported and skipped), then every reference's features extracted, in the batch's order."""
    loop = asyncio.get_running_loop()
    results = await asyncio.gather(*(loop.run_in_executor(pool, _prepare, entry) for entry in batch))
    prepared, problems = [], []
    for entry, result in zip(batch, results, strict=True):
        if isinstance(result, str):
            problems.append(result)
        else:
            prepared.append((entry, result))
    features = await build.features.extract_many([reference for _, reference in prepared], pool)
    return len(batch), problems, [(entry, ref, found) for (entry, ref), found in zip(prepared, features, strict=True)]


def _prepare(entry: Todo) -> Reference | str:
    """Step 1 of the recipe for one source image, or the reason it is skipped."""
    try:
        image: Image.Image = decode_image(entry[0].path.read_bytes())
    except ServiceError as exc:
        return f"{entry[0].path.name}: {exc.message}; skipped"
    return prepare_reference(entry[0].object_id, image)


async def _store_batch(
    build: _Build, recipe: ReferenceRecipe, batch: Sequence[tuple[Todo, Reference, FeatureSet]], embedder: ImageEmbedder
) -> None:
    """Step 2 of the recipe for an extracted batch (one model call), then per reference, in order: features
    stored, image copied, vector added."""
    vectors = await recipe.embed([reference for _, reference, _ in batch])
    if batch and build.index is None:
        stamp = model_stamp(embedder)
        build.index = VectorIndex(int(vectors.shape[1]), model=stamp.model, preprocessing=stamp.preprocessing)
    for ((item, sha, meta), reference, features), vector in zip(batch, vectors, strict=True):
        build.features.store.put(reference.object_id, features)
        file_name = build.images.copy_from(item.object_id, item.path)
        assert build.index is not None  # made above
        replaced = build.index.upsert(vector, _with_source(meta, file_name, sha))
        (build.report.updated if replaced else build.report.added).append(item.object_id)


def _prune(build: _Build, present: set[str]) -> list[str]:
    """Remove from the index and the features every object whose source image is gone; returns their ids."""
    if build.index is None:
        return []
    gone = [meta.object_id for meta in build.index.page(0, len(build.index))[0] if meta.object_id not in present]
    for object_id in gone:
        build.index.remove(object_id)
        build.features.store.remove(object_id)
    build.report.removed.extend(gone)
    return gone


def refresh_report(snapshot: Path, built: BuildReport) -> CollectionReport | None:
    """Examine the snapshot as ``index doctor`` does and save ``report.json``, when ``built`` changed the snapshot
    or it has no report yet; the last report's thresholds are kept. None when the report was left as it was (or
    there is no index to examine). Imports FAISS and OpenCV."""
    from services.collection.doctor import examine_snapshot

    layout = Snapshot(Path(snapshot))
    changed = built.indexed or built.removed or built.metadata_only
    if not layout.search_file.is_file() or (not changed and layout.report_file.is_file()):
        return None
    try:
        last = read_report(layout.root)
    except ReportFileError:
        last = None
    report = examine_snapshot(layout.root, last.thresholds if last is not None else None)
    write_report(layout.root, report)
    return report


def check_snapshot(snapshot: Path) -> tuple[int, int]:
    """Object counts of the index and the feature store of a snapshot (for reports and tests)."""
    layout = Snapshot(Path(snapshot))
    return len(VectorIndex.load(layout.search_file)), len(FeatureStore.load(layout.features_file))
