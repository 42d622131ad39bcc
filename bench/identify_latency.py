r"""The benchmark of ``POST /identify``: where the time goes, what it costs, and how far it is from brute force.

Builds (or reuses) a snapshot of a collection folder and starts the four services with ``LocalStack`` (the same
processes as ``artwork-matcher serve``), then, over real HTTP on loopback:

1. sends every photo of a folder once, one at a time, and prints each stage's latency (p50/p95/p99/max: embedding,
   search, geometric, the gateway's total and the round trip seen by the client) and the CPU time each service
   spent per photo (user + system, from the processes' own counters);
2. for each ``--concurrency`` level (1, 4 and 8 by default) sends photos round-robin from that many workers for
   ``--seconds`` and prints photos per second, latency percentiles, status counts and CPU time per photo;
3. after the stack has stopped, on the same machine and the same photos (``--baseline-photos`` of them, spread over
   the folder), the brute-force baseline: ORB features and RANSAC against every reference of the collection, one
   OpenCV thread. The ratio of its time per photo to ``/identify``'s p50 is comparable across machines.

    .venv/bin/python bench/identify_latency.py \
        --collection ../shared/data/museum-dev/objects --catalogue ../shared/data/museum-dev/objects.csv \
        --photos ../shared/data/museum-dev/pictures --labels ../shared/data/museum-dev/labels.csv \
        --snapshot /tmp/bench-snapshot

``--env NAME=VALUE`` passes settings to every service, to compare configurations back to back (for example
``--env EMBEDDINGS_RUNTIME=torch``). ``bench/load.py`` is the 60-second bar check (5xx, connection errors, memory).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import phase
from services.collection.images import IMAGE_SUFFIXES
from tools.cli.identify import identify_file
from tools.cli.local_stack import SERVICES, LocalStack

STAGES = ("embedding_ms", "search_ms", "geometric_ms", "total_ms")
COLUMNS = (*STAGES, "client_ms")
BASELINE_SIDE = 640
"""Longest side, pixels, of photos and references in the brute-force baseline."""
BASELINE_FEATURES = (1000, 500)
"""ORB keypoints of a photo and of a reference in the brute-force baseline."""


class CpuMeter:
    """CPU seconds (user + system) the service processes have used, read from their own counters."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}

    def read(self) -> dict[str, float]:
        """CPU seconds used so far by each service (its process and any children)."""
        used = {}
        for name, process in self.processes.items():
            family = [process, *process.children(recursive=True)]
            used[name] = sum(p.cpu_times().user + p.cpu_times().system for p in family)
        return used

    @staticmethod
    def per_photo_ms(before: dict[str, float], after: dict[str, float], photos: int) -> dict[str, float]:
        """Milliseconds of CPU per photo by service, and their ``all`` sum."""
        spent = {name: (after[name] - before[name]) * 1000 / max(photos, 1) for name in before}
        return {**spent, "all": sum(spent.values())}


def percentiles(values: list[float] | np.ndarray) -> tuple[float, float, float, float]:
    """p50, p95, p99 and max of ``values`` (zeros when empty)."""
    array = np.asarray(values, dtype=np.float64) if len(values) else np.zeros(1)
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return float(p50), float(p95), float(p99), float(array.max())


def cpu_line(cpu: dict[str, float]) -> str:
    """``CPU/photo 123 ms (embeddings 40, ...)``."""
    parts = ", ".join(f"{name} {cpu[name]:.0f}" for name in SERVICES)
    return f"CPU/photo {cpu['all']:.0f} ms ({parts})"


def sequential(url: str, photos: list[Path], warmup: int, meter: CpuMeter) -> float:
    """Send each photo once, one at a time; print the stage table and CPU per photo; return the client p50."""
    rows: list[list[float]] = []
    statuses: dict[str, int] = {}
    with httpx.Client(timeout=60) as client:
        for photo in photos[:warmup]:
            identify_file(client, url, photo)
        before = meter.read()
        for photo in photos:
            sent = time.perf_counter()
            try:
                timing = msgspec.structs.asdict(identify_file(client, url, photo).timing)
            except RuntimeError as exc:
                status = str(exc).split()[0]
                statuses[status] = statuses.get(status, 0) + 1
                continue
            timing["client_ms"] = (time.perf_counter() - sent) * 1000
            statuses["200"] = statuses.get("200", 0) + 1
            rows.append([timing[s] for s in COLUMNS])
        cpu = CpuMeter.per_photo_ms(before, meter.read(), len(photos))
    table = np.array(rows).reshape(-1, len(COLUMNS))
    print(f"\none at a time: {len(rows)} photos, status counts {statuses}; {cpu_line(cpu)}")
    print(
        f"{'stage':<14}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  (ms; client_ms is the round trip seen by the client)"
    )
    for i, stage in enumerate(COLUMNS):
        p50, p95, p99, top = percentiles(table[:, i])
        print(f"{stage:<14}{p50:8.0f}{p95:8.0f}{p99:8.0f}{top:8.0f}")
    return percentiles(table[:, COLUMNS.index("client_ms")])[0]


def throughput(url: str, photos: list[Path], levels: list[int], seconds: float, meter: CpuMeter) -> None:
    """For each concurrency level: photos per second, latency percentiles, statuses and CPU per photo."""
    data = [(p.name, p.read_bytes()) for p in photos]
    print(f"\n{'concurrency':<12}{'photos/s':>9}{'p50':>7}{'p95':>7}{'p99':>7}  statuses, CPU per photo (ms)")
    for level in levels:
        asyncio.run(phase(url + "/identify", data, level, min(3.0, seconds)))  # reach the steady state first
        before = meter.read()
        tally, wall_s = asyncio.run(phase(url + "/identify", data, level, seconds))
        answered = sum(tally.statuses.values())
        cpu = CpuMeter.per_photo_ms(before, meter.read(), answered)
        p50, p95, p99, _ = percentiles(tally.latencies_ms)
        errors = sum(tally.connection_errors.values())
        print(
            f"{level:<12}{answered / wall_s:9.2f}{p50:7.0f}{p95:7.0f}{p99:7.0f}  {dict(tally.statuses)}"
            f"{f' connection errors {errors}' if errors else ''}, {cpu_line(cpu)}"
        )


@dataclass
class Baseline:
    """What the brute-force baseline measured."""

    ms_per_photo: list[float]
    index_s: float
    references: int
    labelled: int
    labelled_right: int


def brute_force(references: list[Path], photos: list[Path], labels: dict[str, set[str]]) -> Baseline:
    """ORB + RANSAC of each photo against every reference; the best by inliers is its answer.

    References are described once beforehand (``index_s``, not counted per photo); each photo's time covers its
    decoding, its features, ratio-test matching against every reference and RANSAC wherever 8 matches survive.
    """
    import cv2

    cv2.setNumThreads(1)
    query_orb, reference_orb = (cv2.ORB.create(nfeatures=n) for n in BASELINE_FEATURES)
    started = time.perf_counter()
    described = [(path.stem, *_orb(reference_orb, path)) for path in references]
    described = [(stem, points, descriptors) for stem, points, descriptors in described if descriptors is not None]
    index_s = time.perf_counter() - started
    matcher: Any = cv2.BFMatcher(cv2.NORM_HAMMING)
    timings, labelled, right = [], 0, 0
    for photo in photos:
        started = time.perf_counter()
        points, descriptors = _orb(query_orb, photo)
        best, best_inliers = "", 0
        for stem, ref_points, ref_descriptors in described if descriptors is not None else []:
            pairs = [p for p in matcher.knnMatch(descriptors, ref_descriptors, k=2) if len(p) == 2]
            good = [m for m, n in pairs if m.distance < 0.8 * n.distance]
            if len(good) < 8:
                continue
            source = points[[m.queryIdx for m in good]]
            target = ref_points[[m.trainIdx for m in good]]
            _, mask = cv2.findHomography(source, target, method=cv2.RANSAC, ransacReprojThreshold=5.0)
            inliers = int(mask.sum()) if mask is not None else 0
            if inliers > best_inliers:
                best, best_inliers = stem, inliers
        timings.append((time.perf_counter() - started) * 1000)
        if labels.get(photo.name):
            labelled += 1
            right += best in labels[photo.name]
    return Baseline(timings, index_s, len(described), labelled, right)


def _orb(orb: Any, path: Path) -> tuple[np.ndarray, Any]:
    """Keypoint positions ``(N, 2)`` float32 and ORB descriptors (None: no keypoint) of an image at
    :data:`BASELINE_SIDE` pixels."""
    import cv2

    grey: Any = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise SystemExit(f"cannot read {path}")
    scale = BASELINE_SIDE / max(grey.shape)
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    keypoints, descriptors = orb.detectAndCompute(grey, None)
    return np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2), descriptors


def read_labels(path: Path | None) -> dict[str, set[str]]:
    """Photo name → the stems of the references it shows (``labels.csv``: picture, ``;``-separated paintings)."""
    if path is None:
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return {row[0]: {Path(p).stem for p in row[1].replace("|", ";").split(";") if p} for row in rows if row}


def spread(items: list[Path], count: int) -> list[Path]:
    """``count`` items evenly spread over ``items`` (all of them when ``count`` is 0 or larger)."""
    if count <= 0 or count >= len(items):
        return list(items)
    return [items[int(i * len(items) / count)] for i in range(count)]


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--catalogue", type=Path)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--labels", type=Path, help="labels.csv, to check the brute-force baseline's answers")
    parser.add_argument("--snapshot", type=Path, help="reuse or build this snapshot (default: a temporary one)")
    parser.add_argument("--limit", type=int, default=0, help="send at most this many photos one at a time (0: all)")
    parser.add_argument("--warmup", type=int, default=3, help="photos sent first and not counted")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 4, 8], help="levels of the throughput runs")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per concurrency level")
    parser.add_argument("--baseline-photos", type=int, default=20, help="photos for the brute-force baseline (0: none)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="setting for every service")
    args = parser.parse_args()
    if any(not 1 <= c <= 64 for c in args.concurrency) or not 0 < args.seconds <= 600:
        parser.error("concurrency levels must be 1-64 and --seconds 0-600")
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    return args


def main() -> int:
    """Run the benchmark; see the module docstring."""
    args = parse_args()
    snapshot = args.snapshot or Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    from services.collection.local import load_embedder
    from tools.cli.build import build_collection

    embedder = load_embedder()
    started = time.perf_counter()
    report = build_collection(args.collection, snapshot, embedder, catalogue=args.catalogue)
    print(
        f"snapshot: {report.total} objects ({len(report.added)} indexed now) in {time.perf_counter() - started:.1f} s"
    )
    del embedder

    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    env = dict(item.split("=", 1) for item in args.env)
    stack = LocalStack(snapshot, log_dir=snapshot.parent / f"{snapshot.name}-logs", env=env)
    print(f"stack healthy {stack.start():.1f} s after start{f' with {env}' if env else ''}")
    try:
        url = stack.url("gateway")
        meter = CpuMeter({name: stack.processes[name].pid for name in SERVICES})
        p50 = sequential(url, photos[: args.limit] if args.limit else photos, args.warmup, meter)
        if args.concurrency:
            throughput(url, photos, args.concurrency, args.seconds, meter)
    finally:
        stack.stop()
    if args.baseline_photos:
        references = sorted(p for p in args.collection.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        baseline = brute_force(references, spread(photos, args.baseline_photos), read_labels(args.labels))
        b50, b95, _, _ = percentiles(baseline.ms_per_photo)
        right = f", right on {baseline.labelled_right}/{baseline.labelled} labelled" if baseline.labelled else ""
        print(
            f"\nbrute force (ORB {BASELINE_FEATURES[0]}/{BASELINE_FEATURES[1]} at {BASELINE_SIDE} px + RANSAC against"
            f" all {baseline.references} references, one thread; references described in {baseline.index_s:.1f} s):"
            f" {len(baseline.ms_per_photo)} photos, p50 {b50:.0f} ms, p95 {b95:.0f} ms{right}"
        )
        print(f"ratio          brute-force p50 / /identify p50 = {b50:.0f} / {p50:.0f} = {b50 / p50:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
