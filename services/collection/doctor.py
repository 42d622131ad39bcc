"""The collection report's analysis: what in a snapshot will make visitors' photos hard to answer.

Four kinds of finding:

* **near-duplicates**: two references of the same picture (the same painting catalogued twice, or a reference and
  a crop of it). Each artwork's nearest neighbours by embedding are verified against it with the geometric
  service's own check (RootSIFT matches, a plausible homography with inliers on the painting, not on the frame), in
  both directions; a pair that verifies is a near-duplicate. A photo of either is then answered with both, or with
  the wrong one.
* **confusable artworks**: two different artworks whose embeddings sit at or above a cosine similarity (by default
  0.8, where museum-dev's closest distinct pairs begin: same frame and mount, same series, same palette). Local
  features usually tell them apart; when a photo cannot be verified the embedding's answer may be the other one.
* **references hard to verify**: too few local features (flat colour fields, tiny or blurred images), or an image
  whose shorter side is below a minimum; and artworks without stored features or image.
* **catalogue gaps**: no title, no artist.

:func:`examine` is pure (arrays and mappings in, a :class:`~services.collection.report_file.CollectionReport` out);
:func:`examine_snapshot` reads a snapshot through this package (FAISS for the vectors, OpenCV for verification: the
command line's dependencies).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
from PIL import Image

from services.collection.features import FeatureSet, FeatureStore
from services.collection.images import ImageStore
from services.collection.layout import Snapshot
from services.collection.report_file import (
    PAIR_FLAGS,
    ArtworkFinding,
    CollectionReport,
    Flag,
    PairFinding,
    Thresholds,
)
from services.common.schemas import ObjectMetadata

PairVerifier = Callable[[FeatureSet, FeatureSet], tuple[bool, int]]
"""Verifies a query feature set against a reference one: (verified, inliers)."""

_BLOCK = 1024
"""Rows of the similarity matrix computed at a time (memory stays O(block × N), not O(N²))."""


@dataclass(frozen=True)
class CollectionContents:
    """What the analysis reads of a snapshot.

    Attributes:
        ids: object ids, row ``i`` of ``vectors`` is ``ids[i]``'s.
        vectors: (N, D) float32 embeddings, L2-normalised rows.
        metadata: catalogue entry per id.
        features: stored reference features per id (ids without any are missing).
        image_sizes: (width, height) of each id's stored reference image, None when it has none.
    """

    ids: list[str]
    vectors: np.ndarray
    metadata: Mapping[str, ObjectMetadata]
    features: Mapping[str, FeatureSet]
    image_sizes: Mapping[str, tuple[int, int] | None]

    def __post_init__(self) -> None:
        vectors = self.vectors
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2 or vectors.shape[0] != len(self.ids):
            raise ValueError(
                f"vectors must be ({len(self.ids)}, D), one row per id; got {getattr(vectors, 'shape', None)}"
            )
        if vectors.dtype != np.float32:
            raise ValueError(f"vectors must be float32, got {vectors.dtype}")


def nearest_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` most similar other rows by inner product: (N, k) indices and similarities, best first.

    Rows beyond ``N - 1`` neighbours are padded with index -1 and similarity -inf.
    """
    n = vectors.shape[0]
    k = max(0, min(k, n - 1))
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    if k == 0:
        return indices, scores
    for start in range(0, n, _BLOCK):
        block = vectors[start : start + _BLOCK] @ vectors.T
        rows = np.arange(block.shape[0])
        block[rows, rows + start] = -np.inf  # never one's own neighbour
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        indices[start : start + len(rows)] = np.take_along_axis(part, order, axis=1)
        scores[start : start + len(rows)] = np.take_along_axis(part_scores, order, axis=1)
    return indices, scores


def find_pairs(contents: CollectionContents, verify: PairVerifier, thresholds: Thresholds) -> list[PairFinding]:
    """Near-duplicate and confusable pairs among each artwork's nearest neighbours (see the module's docstring)."""
    indices, scores = nearest_neighbours(contents.vectors, thresholds.neighbours)
    candidates: dict[tuple[int, int], float] = {}
    for i, (row, row_scores) in enumerate(zip(indices, scores, strict=True)):
        for j, score in zip(row, row_scores, strict=True):
            if j >= 0 and score >= thresholds.near_duplicate_min_similarity:
                candidates[(min(i, int(j)), max(i, int(j)))] = float(score)
    pairs = []
    for (i, j), similarity in sorted(candidates.items()):
        a, b = contents.ids[i], contents.ids[j]
        verified, inliers = _verify_both_ways(contents.features.get(a), contents.features.get(b), verify)
        if verified:
            pairs.append(PairFinding(Flag.NEAR_DUPLICATE, a, b, round(similarity, 4), inliers))
        elif similarity >= thresholds.confusable_similarity:
            pairs.append(PairFinding(Flag.CONFUSABLE, a, b, round(similarity, 4), inliers))
    return sorted(pairs, key=lambda p: (p.flag is not Flag.NEAR_DUPLICATE, -p.similarity, p.a, p.b))


def _verify_both_ways(a: FeatureSet | None, b: FeatureSet | None, verify: PairVerifier) -> tuple[bool, int]:
    """Whether either reference verifies against the other (a crop verifies one way only), and the most inliers."""
    if a is None or b is None or len(a) == 0 or len(b) == 0:
        return False, 0
    forward, backward = verify(a, b), verify(b, a)
    return forward[0] or backward[0], max(forward[1], backward[1])


def artwork_flags(
    object_id: str, contents: CollectionContents, thresholds: Thresholds
) -> tuple[list[Flag], dict[str, str]]:
    """The single-artwork flags of ``object_id`` (references hard to verify, catalogue gaps) with a sentence each."""
    flags: dict[Flag, str] = {}
    features = contents.features.get(object_id)
    if features is None:
        flags[Flag.NO_FEATURES] = "no stored reference features: photos of it can only be matched by the embedding"
    elif len(features) < thresholds.min_keypoints:
        flags[Flag.FEW_KEYPOINTS] = (
            f"{len(features)} reference keypoints (fewer than {thresholds.min_keypoints}): photos of it may not verify"
        )
    size = contents.image_sizes.get(object_id)
    if size is None:
        flags[Flag.NO_IMAGE] = "no reference image"
    elif min(size) < thresholds.min_side:
        flags[Flag.TOO_SMALL] = (
            f"reference image {size[0]} × {size[1]} px (shorter side under {thresholds.min_side} px): "
            "upload a larger one"
        )
    meta = contents.metadata.get(object_id)
    if meta is None or not meta.title.strip():
        flags[Flag.MISSING_TITLE] = "no title in the catalogue"
    if meta is None or not meta.artist.strip():
        flags[Flag.MISSING_ARTIST] = "no artist in the catalogue"
    return list(flags), {flag.value: text for flag, text in flags.items()}


def examine(
    contents: CollectionContents,
    verify: PairVerifier,
    thresholds: Thresholds | None = None,
    *,
    now: datetime | None = None,
) -> CollectionReport:
    """The collection report of ``contents``: flagged artworks (by id), flagged pairs and the counts per flag."""
    started = time.perf_counter()
    thresholds = thresholds or Thresholds()
    pairs = find_pairs(contents, verify, thresholds)
    related: dict[str, dict[Flag, list[PairFinding]]] = {}
    for pair in pairs:
        for one in (pair.a, pair.b):
            related.setdefault(one, {}).setdefault(pair.flag, []).append(pair)
    findings = []
    for object_id in sorted(contents.ids):
        flags, details = artwork_flags(object_id, contents, thresholds)
        mine = related.get(object_id, {})
        for flag in PAIR_FLAGS:
            if flag in mine:
                others = [p.b if p.a == object_id else p.a for p in mine[flag]]
                flags.insert(0, flag)
                details[flag.value] = _pair_sentence(flag, others, mine[flag])
        if flags:
            others_all = sorted({p.b if p.a == object_id else p.a for group in mine.values() for p in group})
            meta = contents.metadata.get(object_id)
            findings.append(ArtworkFinding(object_id, meta.title if meta else "", flags, details, others_all))
    counts = {flag.value: sum(flag in f.flags for f in findings) for flag in Flag}
    return CollectionReport(
        generated_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        objects=len(contents.ids),
        thresholds=thresholds,
        counts=counts,
        artworks=findings,
        pairs=pairs,
        seconds=round(time.perf_counter() - started, 3),
    )


def _pair_sentence(flag: Flag, others: list[str], pairs: list[PairFinding]) -> str:
    """A curator's sentence for a pair flag."""
    best = max(p.similarity for p in pairs)
    if flag is Flag.NEAR_DUPLICATE:
        return f"shows the same picture as {', '.join(others)}: keep one, or tell them apart in the catalogue"
    return (
        f"looks like {', '.join(others)} to the embedding (similarity {best:.2f}): photos of it may need a closer shot"
    )


def examine_snapshot(root: Path, thresholds: Thresholds | None = None) -> CollectionReport:
    """Read the snapshot at ``root`` through this package and examine it (imports FAISS and OpenCV).

    Raises:
        FileNotFoundError: the snapshot has no vector index.
    """
    from services.collection.vectors import VectorIndex
    from services.geometric.verify import VerifyParams, verify_pair

    started = time.perf_counter()
    snapshot = Snapshot(Path(root))
    if not snapshot.search_file.is_file():
        raise FileNotFoundError(
            f"{snapshot.search_file} not found: build the snapshot with `artwork-matcher index build`"
        )
    index = VectorIndex.load(snapshot.search_file)
    metadata, _ = index.page(0, max(1, len(index)))
    ids = [meta.object_id for meta in metadata]
    vectors = np.zeros((len(ids), index.dimension), np.float32)
    for row, object_id in enumerate(ids):
        vector = index.vector(object_id)
        if vector is None:  # removed by another process between the page and now: examine it as missing
            raise RuntimeError(f"{object_id} left the index while it was read; run the report again")
        vectors[row] = vector
    store = FeatureStore.load(snapshot.features_file) if snapshot.features_file.is_file() else FeatureStore()
    images = ImageStore(snapshot.images_dir)
    params = VerifyParams()

    def verify(query: FeatureSet, reference: FeatureSet) -> tuple[bool, int]:
        result = verify_pair(query, reference, params)
        return result.verified, result.inliers

    contents = CollectionContents(
        ids=ids,
        vectors=vectors,
        metadata={meta.object_id: meta for meta in metadata},
        features=dict(store.items()),
        image_sizes={object_id: _image_size(images, object_id) for object_id in ids},
    )
    report = examine(contents, verify, thresholds)
    return _with_seconds(report, time.perf_counter() - started)


def _image_size(images: ImageStore, object_id: str) -> tuple[int, int] | None:
    """The stored reference image's size (its header only), None when it is missing or unreadable."""
    path = images.find(object_id)
    if path is None:
        return None
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, Image.DecompressionBombError):
        return None


def _with_seconds(report: CollectionReport, seconds: float) -> CollectionReport:
    """The report with the whole run's duration (reading the snapshot included)."""
    return msgspec.structs.replace(report, seconds=round(seconds, 3))
