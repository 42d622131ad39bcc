r"""The collection at scale: synthetic snapshots of 10 k, 100 k or 1 M artworks made from the dev set's real vectors and
features plus generated ones, served by the real search and geometric services.

For each size the bench writes a snapshot (once; kept in ``--workdir`` and reused), starts the search service and
then the geometric service on it (each alone, so start-up is measured without the other competing) and prints:
start-up time, resident memory per service after start and after the queries, search latency p50/p99 over HTTP
one query at a time (and as the service measured it, without HTTP and JSON), recall@10 of the answers against
exact search over every stored vector (computed here, by brute force over the regenerated vectors), the time to add
and to remove one artwork in each service (an add is saved before it is answered), and the snapshot's size.

Generated vectors are convex mixtures of three real ones plus Gaussian noise, L2-normalised: they lie where real
embeddings lie, clustered, not uniform noise (uniform 1280-d noise has no neighbours worth finding). A generated
reference's features are those of a real reference, rows shuffled (or, capped at ``--keypoints`` per reference to
bound the feature file at a million, a random subset of them; uncapped, ~67 KB each) and every descriptor shifted by
a per-reference offset (distinct references, real keypoint counts). Queries are stored vectors plus noise, like a
visitor's photo of a known artwork.

    .venv/bin/artwork-matcher index build ../shared/data/museum-dev/objects \
        --catalogue ../shared/data/museum-dev/objects.csv --snapshot /tmp/dev-snap
    .venv/bin/python -m bench.scale --dev-snapshot /tmp/dev-snap --workdir /tmp/scale --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import numpy as np

from bench.load import free_port
from bench.memory import memory_mib
from services.collection.compressed import recall_at
from services.collection.features import FeatureSet, FeatureStore
from services.collection.layout import Snapshot
from services.collection.vectors import COMPRESS_ABOVE, VectorIndex
from services.common.schemas import ObjectMetadata
from tools.cli.local_stack import SERVICES, LocalStack

CHUNK = 10_000
"""Generated vectors made, added and compared per step (bounds the bench's memory)."""
QUERIES = 300
NOISE = 0.35
"""Gaussian noise per component relative to a unit vector's average component (mixtures and queries)."""


class Real:
    """The dev snapshot's vectors, metadata and features."""

    def __init__(self, snapshot: Path) -> None:
        """Read the dev snapshot."""
        layout = Snapshot(snapshot)
        index = VectorIndex.load(layout.search_file)
        self.metadata = index.page(0, len(index))[0]
        vectors = [index.vector(m.object_id) for m in self.metadata]
        self.vectors = np.vstack([v for v in vectors if v is not None]).astype(np.float32)
        self.stamp = index.stamp
        store = FeatureStore.load(layout.features_file)
        self.extractor = store.extractor
        self.features = [store.get(m.object_id) or FeatureSet.empty(1, 1) for m in self.metadata]


def generated(real: Real, start: int, count: int, seed: int = 0) -> np.ndarray:
    """Generated vectors ``start`` .. ``start + count`` (deterministic: the same rows whatever the chunking)."""
    rows = []
    for chunk_start in range(start - start % CHUNK, start + count, CHUNK):
        rng = np.random.default_rng((seed, chunk_start))
        parents = rng.integers(0, len(real.vectors), size=(CHUNK, 3))
        weights = rng.dirichlet((1.0, 1.0, 1.0), size=CHUNK).astype(np.float32)
        mixed = weights[:, :1] * real.vectors[parents[:, 0]]
        for k in (1, 2):
            mixed += weights[:, k : k + 1] * real.vectors[parents[:, k]]
        dimension = real.vectors.shape[1]
        mixed += rng.normal(scale=NOISE / np.sqrt(dimension), size=mixed.shape).astype(np.float32)
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        lo, hi = max(start, chunk_start) - chunk_start, min(start + count, chunk_start + CHUNK) - chunk_start
        rows.append(mixed[lo:hi])
    return np.vstack(rows) if rows else np.zeros((0, real.vectors.shape[1]), np.float32)


def synthetic_id(i: int) -> str:
    """Object id of generated artwork ``i``."""
    return f"syn_{i:07d}"


class SyntheticFeatures(Mapping[str, FeatureSet]):
    """Real references' features followed by generated ones, each made when asked (never all in memory)."""

    def __init__(self, real: Real, generated_count: int, keypoints: int | None) -> None:
        """``generated_count`` generated references after the real ones; ``keypoints`` caps each one's count."""
        self.real, self.count, self.keypoints = real, generated_count, keypoints
        self._real = {m.object_id: f for m, f in zip(real.metadata, real.features, strict=True)}

    def __getitem__(self, object_id: str) -> FeatureSet:
        if object_id in self._real:
            return self._cap(self._real[object_id])
        i = int(object_id.removeprefix("syn_"))
        base = self.real.features[i % len(self.real.features)]
        rng = np.random.default_rng(i)
        count = len(base) if self.keypoints is None else min(len(base), self.keypoints)
        order = rng.choice(len(base), count, replace=False) if count else np.zeros(0, np.int64)
        shift = rng.integers(-12, 13, size=base.descriptors.shape[1]).astype(np.int16)
        descriptors = np.clip(base.descriptors[order].astype(np.int16) + shift, 0, 255).astype(np.uint8)
        return FeatureSet(base.keypoints[order], descriptors, base.width, base.height)

    def _cap(self, features: FeatureSet) -> FeatureSet:
        if self.keypoints is None or len(features) <= self.keypoints:
            return features
        n = self.keypoints
        return FeatureSet(features.keypoints[:n], features.descriptors[:n], features.width, features.height)

    def __iter__(self) -> Iterator[str]:
        yield from self._real
        yield from (synthetic_id(i) for i in range(self.count))

    def __len__(self) -> int:
        return len(self._real) + self.count


def build(real: Real, size: int, folder: Path, keypoints: int | None) -> float:
    """Write the snapshot of ``size`` artworks into ``folder`` (kept when already made); the seconds it took."""
    marker = folder / "scale.json"
    recipe = {"size": size, "keypoints": keypoints, "real": len(real.vectors), "noise": NOISE, "chunk": CHUNK, "v": 2}
    if marker.is_file() and json.loads(marker.read_text()) == recipe:
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    count = size - len(real.vectors)
    index = VectorIndex(
        real.vectors.shape[1],
        kind="auto",
        expected_size=size,
        model=real.stamp.model,
        preprocessing=real.stamp.preprocessing,
    )
    if size >= COMPRESS_ABOVE:
        index.compress(np.vstack([real.vectors, generated(real, 0, min(count, 5 * CHUNK))]))
    index.add_many(real.vectors, list(real.metadata))
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        index.add_many(
            generated(real, start, n),
            [ObjectMetadata(object_id=synthetic_id(i), title=f"Synthetic {i}") for i in range(start, start + n)],
        )
    layout = Snapshot(folder)
    index.save(layout.search_file)
    del index
    FeatureStore.write(layout.features_file, SyntheticFeatures(real, count, keypoints), extractor=real.extractor)
    marker.write_text(json.dumps(recipe))
    return time.perf_counter() - started


def queries(real: Real, size: int, seed: int = 1) -> tuple[np.ndarray, list[str]]:
    """Query vectors (stored vectors plus noise) and the id each one was made from."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, size, QUERIES).tolist()
    chunks: dict[int, np.ndarray] = {}  # each needed chunk of generated vectors made once
    for pick in picks:
        start = (pick - len(real.vectors)) // CHUNK * CHUNK
        if pick >= len(real.vectors) and start not in chunks:
            chunks[start] = generated(real, start, min(CHUNK, size - len(real.vectors) - start))
    rows, ids = [], []
    for pick in picks:
        if pick < len(real.vectors):
            rows.append(real.vectors[pick])
            ids.append(real.metadata[pick].object_id)
        else:
            i = pick - len(real.vectors)
            rows.append(chunks[i // CHUNK * CHUNK][i % CHUNK])
            ids.append(synthetic_id(i))
    noisy = np.vstack(rows) + rng.normal(scale=NOISE / np.sqrt(real.vectors.shape[1]), size=(QUERIES, rows[0].size))
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return noisy.astype(np.float32), ids


def exact_top10(real: Real, size: int, vectors: np.ndarray) -> list[list[str]]:
    """The exact top-10 ids of each query over every stored vector (brute force, a chunk at a time)."""
    scores = vectors @ real.vectors.T
    best_ids = np.array([[m.object_id for m in real.metadata]] * len(vectors), dtype=object)
    best = scores
    for start in range(0, size - len(real.vectors), CHUNK):
        n = min(CHUNK, size - len(real.vectors) - start)
        chunk_scores = vectors @ generated(real, start, n).T
        ids = np.array([synthetic_id(i) for i in range(start, start + n)], dtype=object)
        merged = np.hstack([best, chunk_scores])
        merged_ids = np.hstack([best_ids, np.broadcast_to(ids, (len(vectors), n))])
        keep = np.argsort(-merged, axis=1)[:, :10]
        best = np.take_along_axis(merged, keep, axis=1)
        best_ids = np.take_along_axis(merged_ids, keep, axis=1)
    order = np.argsort(-best, axis=1)[:, :10]
    top: list[list[str]] = np.take_along_axis(best_ids, order, axis=1).tolist()
    return top


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    return float(np.quantile(np.asarray(values), q))


def start(stack: LocalStack, name: str) -> float:
    """Start one service and wait until healthy; the seconds it took."""
    started = time.perf_counter()
    stack.start_service(name)
    stack.wait_healthy([name], 1800)
    return time.perf_counter() - started


def measure_search(stack: LocalStack, real: Real, size: int) -> dict[str, float]:
    """Latency, recall@10 and add/remove time of the search service."""
    vectors, _ = queries(real, size)
    url = stack.url("search")
    latencies, served, answers = [], [], []
    with httpx.Client(timeout=120.0) as client:
        for vector in vectors:
            sent = time.perf_counter()
            response = client.post(url + "/search", json={"vectors": [vector.tolist()], "k": 10})
            latencies.append((time.perf_counter() - sent) * 1000)
            response.raise_for_status()
            answers.append([hit["object_id"] for hit in response.json()["results"][0]])
            served.append(float(response.json()["processing_time_ms"]))
        new = generated(real, size, 1)[0].tolist()
        sent = time.perf_counter()
        body = {"vector": new, "metadata": {"object_id": "scale_new", "title": "new"}}
        client.put(url + "/objects/scale_new", json=body).raise_for_status()
        added = time.perf_counter() - sent
        sent = time.perf_counter()
        client.delete(url + "/objects/scale_new").raise_for_status()
        removed = time.perf_counter() - sent
    truth = exact_top10(real, size, vectors)
    names = sorted({i for row in truth + answers for i in row})
    code = {name: n for n, name in enumerate(names)}
    found = np.array([[code[i] for i in row] + [-1] * (10 - len(row)) for row in answers])
    recall = recall_at(found, np.array([[code[i] for i in row] for row in truth]))
    return {
        "search_p50_ms": statistics.median(latencies),
        "search_p99_ms": percentile(latencies, 0.99),
        "search_served_p50_ms": statistics.median(served),
        "search_served_p99_ms": percentile(served, 0.99),
        "recall_at_10": recall,
        "search_add_s": added,
        "search_remove_s": removed,
    }


def measure_geometric(stack: LocalStack, photo: Path) -> dict[str, float]:
    """Add and remove time of one reference (its features extracted from ``photo``, then saved)."""
    url = stack.url("geometric")
    image = base64.b64encode(photo.read_bytes()).decode("ascii")
    with httpx.Client(timeout=600.0) as client:
        sent = time.perf_counter()
        client.put(url + "/references/scale_new", json={"image": image}).raise_for_status()
        added = time.perf_counter() - sent
        sent = time.perf_counter()
        client.delete(url + "/references/scale_new").raise_for_status()
        removed = time.perf_counter() - sent
    return {"geometric_add_s": added, "geometric_remove_s": removed}


def run_size(real: Real, size: int, workdir: Path, keypoints: int | None, photo: Path) -> dict[str, float]:
    """Build (or reuse) and measure one size."""
    folder = workdir / f"n{size}"
    row: dict[str, float] = {"size": size, "build_s": build(real, size, folder, keypoints)}
    row["snapshot_mb"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    stack = LocalStack(folder, ports={n: free_port() for n in SERVICES}, log_dir=workdir / "logs")
    try:
        for name in ("search", "geometric"):
            row[f"{name}_start_s"] = start(stack, name)
            row[f"{name}_rss_start_mb"] = memory_mib(stack.processes[name].pid)[0]
        row |= measure_search(stack, real, size)
        row |= measure_geometric(stack, photo)
        for name in ("search", "geometric"):
            row[f"{name}_rss_end_mb"] = memory_mib(stack.processes[name].pid)[0]
    finally:
        stack.stop()
    return row


COLUMNS = (
    ("size", "{:>9.0f}"),
    ("search_p50_ms", "{:>6.2f}"),
    ("search_p99_ms", "{:>6.2f}"),
    ("search_served_p50_ms", "{:>6.2f}"),
    ("search_served_p99_ms", "{:>6.2f}"),
    ("recall_at_10", "{:>6.3f}"),
    ("search_rss_end_mb", "{:>7.0f}"),
    ("geometric_rss_end_mb", "{:>7.0f}"),
    ("search_start_s", "{:>6.1f}"),
    ("geometric_start_s", "{:>6.1f}"),
    ("search_add_s", "{:>6.3f}"),
    ("search_remove_s", "{:>6.3f}"),
    ("geometric_add_s", "{:>6.2f}"),
    ("geometric_remove_s", "{:>6.2f}"),
    ("snapshot_mb", "{:>8.0f}"),
)


def print_rows(rows: list[dict[str, float]]) -> None:
    """The table: one row per size."""
    print(" | ".join(name for name, _ in COLUMNS))
    for row in rows:
        print(" | ".join(fmt.format(row.get(name, float("nan"))) for name, fmt in COLUMNS))


def main() -> int:
    """Parse the options, run every size, print the table (and write it as JSON with ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-snapshot", type=Path, required=True, help="a snapshot of the dev collection")
    parser.add_argument("--workdir", type=Path, required=True, help="where the synthetic snapshots are kept")
    parser.add_argument("--sizes", default="10000", help="comma-separated artworks counts, e.g. 10000,100000,1000000")
    parser.add_argument("--keypoints", type=int, default=None, help="cap on each reference's keypoints")
    parser.add_argument("--photo", type=Path, default=None, help="image added as a reference (default: a dev one)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    real = Real(args.dev_snapshot)
    if any(size <= len(real.vectors) for size in sizes):
        raise SystemExit(f"every size must exceed the dev set's {len(real.vectors)} artworks")
    photo = args.photo or next(iter(sorted(Snapshot(args.dev_snapshot).images_dir.iterdir())))
    rows = []
    for size in sizes:
        rows.append(run_size(real, size, args.workdir, args.keypoints, photo))
        print(json.dumps(rows[-1]), flush=True)
    print_rows(rows)
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
