r"""The CPU floor of one ``POST /identify``, step by step, and the most that floor lets this machine serve.

``bench/identify_latency.py`` measures the four services over HTTP; this bench takes everything else away. It runs
every step of a recognition in this one process, one thread each (OpenCV, FAISS, BLAS and ONNX Runtime are set to
one thread), with the services' own functions and default settings, over real photos and a snapshot made by
``index build``: no HTTP, no JSON, no queues, no waiting, no second request. A step's cost is the CPU time the
process spent in it (``time.process_time``), which other work on a shared machine inflates far less than elapsed
time. The sum over the steps is a lower bound of what ``/identify`` costs, and from it the ceilings follow: at most
``cores × 1000 / sum`` photos a second, and at best ``sum / cores`` milliseconds for one photo even if every step
could be split evenly over the cores (most cannot).

Steps, in the order ``/identify`` runs them (the service that runs each in brackets):

- ``upload``: decode the sent photo (at a reduced JPEG scale where possible), downscale it to ``query_max_side``,
  re-encode it as JPEG for the backends and propose the regions to embed (gateway);
- ``embed``: decode that JPEG, crop the regions and embed them in one ONNX Runtime pass (embeddings);
- ``search``: each region's top ``k`` over the collection, and the scores of the references voted for (search);
- ``decode``: decode that JPEG again (geometric);
- ``extract``: the query's RootSIFT features after CLAHE (geometric);
- ``vote``: the local-feature shortlist, the query's descriptors against every reference descriptor (geometric);
- ``locate``: the framed paintings located in the photo (geometric);
- ``verify``: the candidates, the embedding's top ``k`` then the voted references, each matched and its homography
  estimated (geometric).

The closer looks at located paintings that no verified answer explains (a minority of photos) are not counted, so
the floor is a little lower than the real work. ``--variant key=value,...`` (fields of
:class:`~services.geometric.verify.VerifyParams`) repeats the geometric steps with other query settings, for
example ``max_side=640,n_features=1000``; its references stay the snapshot's. Each photo goes through the defaults
and then every variant before the next photo, so a machine whose speed drifts during the run (a shared host) shifts
them alike.

    .venv/bin/artwork-matcher index build ../shared/data/museum-dev/objects \
        --catalogue ../shared/data/museum-dev/objects.csv --snapshot /tmp/dev-snap
    .venv/bin/python -m bench.stage_costs --snapshot /tmp/dev-snap \
        --photos ../shared/data/museum-dev/pictures --limit 60 [--variant max_side=640,n_features=1000]
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    # One BLAS and OpenMP thread, set before numpy and FAISS load them, so that every step runs on one core (only
    # when run as the bench: importing this module leaves the environment of the importer alone).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import faiss
import numpy as np
import torch

from bench.geometric_separation import parse_variant
from services.collection.layout import Snapshot
from services.common.images import decode_image, resize_max_side, to_array, to_jpeg
from services.embeddings.model import TimmEmbedder
from services.embeddings.pipeline import crop_regions
from services.gateway.pipeline import merge_hits
from services.gateway.regions import propose_regions
from services.gateway.settings import GatewaySettings
from services.geometric.localise import locate_paintings
from services.geometric.references import References
from services.geometric.retrieval import Vote
from services.geometric.verify import VerifyParams, extract_features
from services.search.app import hit_to_wire
from services.search.live_index import LiveIndex

T = TypeVar("T")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
FRONT_STEPS = ("upload", "embed", "search")
"""The steps a ``--variant`` does not change: measured once, with the defaults."""


@dataclass
class Costs:
    """Milliseconds of CPU per step, one value per photo, in the order the steps first ran."""

    steps: dict[str, list[float]] = field(default_factory=dict)
    candidates: list[int] = field(default_factory=list)
    keypoints: list[int] = field(default_factory=list)

    def timed(self, step: str, work: Callable[[], T]) -> T:
        """Run ``work`` and add the CPU time it took to ``step``."""
        started = time.process_time()
        result = work()
        self.steps.setdefault(step, []).append((time.process_time() - started) * 1000)
        return result


def _untimed(step: str, work: Callable[[], T]) -> T:
    """Run ``work`` without timing it (the same signature as :meth:`Costs.timed`)."""
    return work()


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values`` by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def ceilings(total_ms: float, cores: int) -> tuple[float, float]:
    """What a CPU floor of ``total_ms`` per photo allows on ``cores`` cores: (most photos a second, least
    milliseconds for one photo with its work split evenly over the cores)."""
    if total_ms <= 0:
        raise ValueError(f"a photo's CPU floor must be positive, got {total_ms} ms")
    return cores * 1000.0 / total_ms, total_ms / cores


def report(costs: Costs, cores: int, title: str) -> str:
    """The per-step table, the sum of the means and the ceilings it implies, as printable text."""
    lines = [title, f"{'step':<9}{'p50':>8}{'mean':>8}{'p95':>8}  (ms of CPU per photo, one thread)"]
    for step, values in costs.steps.items():
        mean = statistics.fmean(values)
        lines.append(f"{step:<9}{percentile(values, 0.5):8.1f}{mean:8.1f}{percentile(values, 0.95):8.1f}")
    total = sum(statistics.fmean(v) for v in costs.steps.values())
    rate, latency = ceilings(total, cores)
    lines.append(f"{'sum':<9}{'':>8}{total:8.1f}")
    if costs.candidates:
        lines.append(
            f"per photo: {statistics.fmean(costs.keypoints):.0f} query keypoints, "
            f"{statistics.fmean(costs.candidates):.1f} candidates verified"
        )
    lines.append(
        f"ceiling on {cores} cores: {rate:.1f} photos/s at most; {latency:.0f} ms for one photo at best "
        "(its work split evenly over the cores)"
    )
    return "\n".join(lines)


class Floor:
    """The services' state, loaded once: the snapshot's vectors and features and the embedding model."""

    def __init__(self, snapshot: Path, gateway: GatewaySettings) -> None:
        """Load the snapshot's search index, its reference features (with the vote index) and the model."""
        layout = Snapshot(snapshot)
        self.gateway = gateway
        self.search = LiveIndex(layout.search_file, autosave=False)
        if not self.search.load():
            raise SystemExit(f"{layout.search_file} is missing: make the snapshot with 'artwork-matcher index build'")
        self.references = References(layout.features_file, autosave=False)
        self.references.load()
        faiss.omp_set_num_threads(1)  # the vote index was built on every core; queries are measured on one
        self.embedder = TimmEmbedder(threads=1)
        self.embedder.load()

    def run(self, photo: bytes, costs: Costs, params: VerifyParams, *, front: bool) -> None:
        """One photo through every step, timed into ``costs``; without ``front`` the upload, embed and search steps
        run untimed (a variant changes only the geometric steps)."""
        settings = self.gateway
        front_step = costs.timed if front else _untimed
        jpeg, regions = front_step("upload", lambda: self._upload(photo))
        vectors = front_step("embed", lambda: self._embed(jpeg, regions))
        pixels = costs.timed("decode", lambda: to_array(decode_image(jpeg)))
        query = costs.timed("extract", lambda: extract_features(pixels, params))
        votes = costs.timed("vote", lambda: self.references.shortlist(query, settings.shortlist))
        ids = front_step("search", lambda: self._search(vectors, votes))
        costs.timed("locate", lambda: locate_paintings(pixels))
        costs.timed("verify", lambda: self.references.verify(query, ids))
        costs.candidates.append(len(ids))
        costs.keypoints.append(len(query))

    def _upload(self, photo: bytes) -> tuple[bytes, list[list[float]]]:
        side = self.gateway.query_max_side
        image = resize_max_side(decode_image(photo, max_side=side), side)
        return to_jpeg(image), propose_regions(image, self.gateway.max_regions)

    def _embed(self, jpeg: bytes, regions: list[list[float]]) -> np.ndarray:
        return self.embedder.embed(crop_regions(decode_image(jpeg), regions))

    def _search(self, vectors: np.ndarray, votes: list[Vote]) -> list[str]:
        """The candidates the gateway verifies, merged as it merges them (:func:`merge_hits`): the best ``k``
        artworks over the regions, then the voted ones the search service scores."""
        k = self.gateway.default_k
        rows = [[hit_to_wire(hit) for hit in row] for row in self.search.search(vectors, k)]
        voted = [vote.object_id for vote in votes]
        included = [hit_to_wire(hit) for hit in self.search.score(vectors, voted)]
        return [c.object_id for c in merge_hits(rows, k, included, {v.object_id: v.votes for v in votes})]


def photos_in(folder: Path, limit: int) -> list[Path]:
    """Up to ``limit`` photos of ``folder``, spread evenly over its sorted files."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise SystemExit(f"no photos ({', '.join(PHOTO_SUFFIXES)}) in {folder}")
    step = max(1, len(files) // max(1, limit))
    return files[::step][:limit]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the default pipeline's floor, then each ``--variant``'s geometric steps, and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshot", type=Path, required=True, help="a snapshot made by 'index build'")
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=60, help="photos, spread over the folder")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)), help="for the ceilings")
    parser.add_argument("--variant", action="append", default=[], help="comma-separated VerifyParams overrides")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    floor = Floor(args.snapshot, GatewaySettings())
    photos = [p.read_bytes() for p in photos_in(args.photos, args.limit)]
    runs = [("defaults", VerifyParams(), True)]
    runs += [(text, dataclasses.replace(VerifyParams(), **parse_variant(text)), False) for text in args.variant]
    floor.run(photos[0], Costs(), VerifyParams(), front=True)  # warm-up: first-call allocations, lazy imports
    measured = [Costs() for _ in runs]
    for photo in photos:  # photo by photo, every run in turn: a machine that speeds up or slows down meanwhile
        for (_, params, front), costs in zip(runs, measured, strict=True):  # shifts them all alike
            floor.run(photo, costs, params, front=front)
    defaults = measured[0]
    for (title, _, front), costs in zip(runs, measured, strict=True):
        heading = f"{title}: {len(photos)} photos from {args.photos}"
        if not front:
            heading += " (upload, embed and search: the defaults' figures)"
            costs.steps = {step: defaults.steps[step] for step in FRONT_STEPS} | costs.steps
        print(report(costs, args.cores, heading), end="\n\n")


if __name__ == "__main__":
    main()
