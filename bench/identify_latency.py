"""Benchmark ``POST /identify`` over real HTTP against the four local services.

Builds (or reuses) a snapshot of a collection folder, starts the stack with ``LocalStack`` (the same processes as
``artwork-matcher serve``), reports how long it took to become healthy, then sends every photo of a folder once,
sequentially, and prints latency percentiles per stage.

    .venv/bin/python bench/identify_latency.py \
        --collection ../shared/data/museum-dev/objects --catalogue ../shared/data/museum-dev/objects.csv \
        --photos ../shared/data/museum-dev/pictures
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
import numpy as np

from services.collection.images import IMAGE_SUFFIXES
from tools.cli.identify import identify_file
from tools.cli.local_stack import LocalStack

STAGES = ("embedding_ms", "search_ms", "geometric_ms", "total_ms")
COLUMNS = (*STAGES, "client_ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--catalogue", type=Path)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--snapshot", type=Path, help="reuse or build this snapshot (default: a temporary one)")
    parser.add_argument("--limit", type=int, default=0, help="send at most this many photos (0: all)")
    parser.add_argument("--warmup", type=int, default=3, help="photos sent first and not counted")
    args = parser.parse_args()

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
    if args.limit:
        photos = photos[: args.limit]
    stack = LocalStack(snapshot, log_dir=snapshot.parent / "bench-logs")
    healthy_s = stack.start()
    print(f"stack healthy {healthy_s:.1f} s after start")
    rows: list[list[float]] = []
    statuses: dict[str, int] = {}
    try:
        with httpx.Client(timeout=60) as client:
            url = stack.url("gateway")
            for photo in photos[: args.warmup]:
                identify_file(client, url, photo)
            for photo in photos:
                sent = time.perf_counter()
                try:
                    timing = msgspec.structs.asdict(identify_file(client, url, photo).timing)
                    timing["client_ms"] = (time.perf_counter() - sent) * 1000
                except RuntimeError as exc:
                    statuses[str(exc).split()[0]] = statuses.get(str(exc).split()[0], 0) + 1
                    continue
                statuses["200"] = statuses.get("200", 0) + 1
                rows.append([timing[s] for s in COLUMNS])
    finally:
        stack.stop()
    table = np.array(rows)
    print(f"{len(rows)} photos, status counts {statuses}")
    print(
        f"{'stage':<14}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  (ms; client_ms is the round trip seen by the client)"
    )
    for i, stage in enumerate(COLUMNS):
        p50, p95, p99 = np.percentile(table[:, i], [50, 95, 99])
        print(f"{stage:<14}{p50:8.0f}{p95:8.0f}{p99:8.0f}{table[:, i].max():8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
