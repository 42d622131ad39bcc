"""Collecting ``/identify`` answers for a labelled set (shared by ``evaluate`` and ``calibrate``): the data options,
the labelled photos, snapshots, a local stack when no gateway is given, HTTP, and the answers as saved in reports."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec

from services.collection.layout import DECISION_FILE
from services.common.schemas import IdentifyResponse
from services.decision.evidence import decode_rows
from services.decision.metrics import Answer, LabelledPhoto
from tools.cli.dataset import Dataset, choose_excluded, labelled_photos, link_collection, read_labels
from tools.cli.identify import identify_file
from tools.cli.local_stack import SERVICES, LocalStack

RETRIES_429 = 8
"""Retries of a request the gateway rate-limited (pauses 0.1 s, 0.2 s, ... at most 5 s each)."""


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The options ``evaluate`` and ``calibrate`` share: where the labelled set is, which gateway, where work goes."""
    parser.add_argument("--data", type=Path, help="labelled set: objects/, objects.csv, pictures/, labels.csv")
    parser.add_argument("--collection", type=Path, help="reference images (default <data>/objects)")
    parser.add_argument("--catalogue", type=Path, help="catalogue CSV (default <data>/objects.csv)")
    parser.add_argument("--photos", type=Path, help="visitor photos (default <data>/pictures)")
    parser.add_argument("--labels", type=Path, help="labels CSV (default <data>/labels.csv)")
    parser.add_argument(
        "--relabel",
        type=Path,
        help="label corrections: a CSV in the labels' format whose rows replace those of the same photos",
    )
    parser.add_argument("--url", default=None, help="a running gateway; without it a local stack is started")
    parser.add_argument("--workdir", type=Path, default=None, help="where snapshots and logs go (default: temporary)")
    parser.add_argument("--snapshot", type=Path, default=None, help="the full snapshot (default <workdir>/snapshot)")
    parser.add_argument("--k", type=int, default=None, help="candidates per photo (default: the gateway's)")


def load_set(
    args: argparse.Namespace, excluded_fraction: float = 0.0, seed: int = 0
) -> tuple[Dataset, list[LabelledPhoto], frozenset[str]]:
    """The dataset, its labelled photos (with a seeded share of artworks left out) and the left-out artworks."""
    dataset = Dataset.locate(
        args.data, collection=args.collection, catalogue=args.catalogue, photos=args.photos, labels=args.labels
    )
    labels = read_labels(dataset.labels)
    if args.relabel is not None:
        corrections = read_labels(args.relabel)
        unknown = sorted(set(corrections) - set(labels))
        if unknown:
            raise ValueError(f"{args.relabel}: corrects photos that are not labelled, e.g. {unknown[0]}")
        labels.update(corrections)
    missing = [name for name in labels if not (dataset.photos / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} labelled photos are not in {dataset.photos}, e.g. {missing[0]}")
    excluded = choose_excluded(dataset.object_ids(), excluded_fraction, seed) if excluded_fraction else frozenset()
    return dataset, labelled_photos(labels, excluded), excluded


@contextlib.contextmanager
def workdir(path: Path | None) -> Iterator[Path]:
    """``path`` (created), or a temporary folder removed afterwards."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="artwork-matcher-eval-") as tmp:
        yield Path(tmp)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _build(source: Path, snapshot: Path, dataset: Dataset, *, prune: bool) -> None:
    from services.collection.local import DeferredEmbedder
    from services.common.runtime import limit_threads, reuse_large_blocks
    from tools.cli.build import build_collection, refresh_report

    limit_threads(2)
    reuse_large_blocks()
    report = build_collection(source, snapshot, DeferredEmbedder(), catalogue=dataset.catalogue, prune=prune)
    for problem in report.problems:
        print(f"warning: {problem}")
    print(f"snapshot {snapshot}: {report.total} objects ({len(report.added)} added, {len(report.removed)} removed)")
    if refresh_report(snapshot, report) is not None:
        print(f"snapshot {snapshot}: collection report refreshed (near-duplicate pairs)")


def prepare_snapshot(dataset: Dataset, snapshot: Path, workdir: Path, excluded: frozenset[str]) -> Path:
    """The snapshot to evaluate: ``snapshot`` built (incrementally) from the whole collection, or with ``excluded``
    artworks left out, a pruned copy of it in ``workdir`` (its ``decision.json`` kept in step with the full one).
    """
    _build(dataset.collection, snapshot, dataset, prune=False)
    if not excluded:
        return snapshot
    key = hashlib.sha256("\n".join(sorted(excluded)).encode()).hexdigest()[:12]
    target = workdir / f"snapshot-without-{key}"
    if not target.exists():
        shutil.copytree(snapshot, target)
    (target / DECISION_FILE).unlink(missing_ok=True)
    if (snapshot / DECISION_FILE).exists():
        shutil.copyfile(snapshot / DECISION_FILE, target / DECISION_FILE)
    links = link_collection(dataset, excluded, workdir / f"collection-without-{key}")
    _build(links, target, dataset, prune=True)
    return target


@contextlib.contextmanager
def gateway(url: str | None, snapshot: Path | None, log_dir: Path) -> Iterator[str]:
    """``url`` as given, or a local stack on free ports serving ``snapshot`` for the duration."""
    if url:
        yield url.rstrip("/")
        return
    if snapshot is None:
        raise ValueError("a snapshot is needed to start a local stack")
    # the evaluation is the only client: per-client rate limiting would only slow it down
    env = {"GATEWAY_RATE_LIMIT_PER_MINUTE": "0"}
    stack = LocalStack(snapshot, ports={name: _free_port() for name in SERVICES}, env=env, log_dir=log_dir)
    print(f"starting the services on {snapshot} (logs in {log_dir})")
    with stack.running(timeout_s=300):
        yield stack.url("gateway")


def gateway_info(url: str) -> dict[str, Any]:
    """The gateway's ``/info`` (version, decision threshold, settings)."""
    response = httpx.get(f"{url}/info", timeout=10.0)
    response.raise_for_status()
    info: dict[str, Any] = response.json()
    return info


def to_answer(body: IdentifyResponse, request_ms: float) -> Answer:
    """An :class:`Answer` from a ``/identify`` answer and the measured round trip; near-duplicate partners are kept
    apart from the matches (see :mod:`services.decision.metrics`)."""
    matches = tuple((m.object_id, m.confidence) for m in body.matches if m.near_duplicate_of is None)
    partners = tuple((m.near_duplicate_of, m.object_id) for m in body.matches if m.near_duplicate_of is not None)
    timing = {k: float(v) for k, v in msgspec.structs.asdict(body.timing).items()}
    timing["request_ms"] = request_ms
    return Answer(
        matches=matches,
        candidates=tuple(body.debug.candidates),
        timing=timing,
        degraded=body.degraded,
        paintings=tuple(tuple(p.box) for p in body.debug.paintings),
        looked_closer=tuple(body.debug.looked_closer),
        near_duplicates=partners,
    )


def collect(
    url: str,
    photos_dir: Path,
    photos: Sequence[LabelledPhoto],
    *,
    geometric: bool,
    k: int | None = None,
    desc: str = "identify",
) -> list[Answer]:
    """Ask ``/identify`` about every photo, one at a time, at threshold 0; failures become error answers."""
    from tqdm import tqdm

    answers = []
    with httpx.Client(timeout=120.0) as client:
        for photo in tqdm(photos, desc=desc, unit="photo"):
            answers.append(_identify(client, url, photos_dir / photo.name, geometric=geometric, k=k))
    return answers


def _identify(client: httpx.Client, url: str, photo: Path, *, geometric: bool, k: int | None) -> Answer:
    """One photo's answer; a rate-limited request (429) is retried after a growing pause, up to ``RETRIES_429``."""
    for attempt in range(RETRIES_429 + 1):
        started = time.perf_counter()
        try:
            body = identify_file(client, url, photo, threshold=0.0, geometric_verification=geometric, k=k)
        except RuntimeError as exc:
            if str(exc).startswith("429 ") and attempt < RETRIES_429:
                time.sleep(min(0.1 * 2**attempt, 5.0))
                continue
            return Answer(error=f"{type(exc).__name__}: {exc}")
        except (OSError, ValueError, httpx.HTTPError) as exc:
            return Answer(error=f"{type(exc).__name__}: {exc}")
        return to_answer(body, (time.perf_counter() - started) * 1000)
    raise AssertionError("unreachable")


def answer_record(photo: LabelledPhoto, answer: Answer) -> dict[str, Any]:
    """One photo's answer as stored in ``report.json`` (and read back by ``calibrate --responses``)."""
    return {
        "photo": photo.name,
        "shown": sorted(photo.shown),
        "expected": sorted(photo.expected),
        "matches": [list(m) for m in answer.matches],
        "candidates": msgspec.to_builtins(list(answer.candidates)),
        "timing": dict(answer.timing),
        "error": answer.error,
        "degraded": answer.degraded,
        "paintings": [list(box) for box in answer.paintings],
        "looked_closer": list(answer.looked_closer),
        "near_duplicates": [list(pair) for pair in answer.near_duplicates],
    }


def from_record(record: dict[str, Any]) -> tuple[LabelledPhoto, Answer]:
    """Inverse of :func:`answer_record`; reads the records of older versions too (their candidate rows lack the
    fields added since, which take their defaults).

    Raises:
        ValueError: a candidate row that does not follow the ``CandidateEvidence`` contract.
    """
    photo = LabelledPhoto(record["photo"], frozenset(record["shown"]), frozenset(record["expected"]))
    answer = Answer(
        matches=tuple((str(o), float(c)) for o, c in record["matches"]),
        candidates=tuple(decode_rows(record["candidates"])),
        timing=record.get("timing") or {},
        error=record.get("error"),
        degraded=bool(record.get("degraded")),
        paintings=tuple(tuple(float(v) for v in box) for box in record.get("paintings") or ()),
        looked_closer=tuple(int(i) for i in record.get("looked_closer") or ()),
        near_duplicates=tuple((str(a), str(p)) for a, p in record.get("near_duplicates") or ()),
    )
    return photo, answer
