r"""Resident memory of the local stack: each service's RSS (and USS, what it alone holds) after start-up and after
answering photos, and the total against a bar.

Starts the four services with ``LocalStack`` on free ports over an existing snapshot, sends ``--photos-count`` photos
of a folder one at a time (every service then holds what serving needs: the model run once, the feature matchers
used, the allocators warmed), and prints the table. Exits 1 when the total RSS after the photos is above
``--bar-mib``.

    .venv/bin/artwork-matcher index build ../shared/data/museum-dev/objects \
        --catalogue ../shared/data/museum-dev/objects.csv --snapshot /tmp/mem-snap
    .venv/bin/python bench/memory.py --snapshot /tmp/mem-snap
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

import httpx
import psutil

from services.collection.images import IMAGE_SUFFIXES
from services.collection.layout import SEARCH_FILE
from tools.cli.local_stack import SERVICES, LocalStack

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "museum-dev" / "pictures"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_mib(pid: int) -> tuple[float, float]:
    """RSS and USS of a process and its children, MiB (USS: pages no other process shares)."""
    process = psutil.Process(pid)
    family = [process, *process.children(recursive=True)]
    rss = sum(p.memory_info().rss for p in family)
    uss = sum(p.memory_full_info().uss for p in family)
    return rss / 2**20, uss / 2**20


def measure(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    """``memory_mib`` of every service."""
    return {name: memory_mib(pid) for name, pid in pids.items()}


def send_photos(url: str, photos: list[Path]) -> dict[int, int]:
    """POST each photo to ``/identify`` once; the count of each status code."""
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=120.0) as client:
        for photo in photos:
            response = client.post(url + "/identify", files={"image": (photo.name, photo.read_bytes(), "image/jpeg")})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


def print_table(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> float:
    """The per-service table; returns the total RSS after the photos, MiB."""
    print(f"{'service':<12} {'RSS start':>10} {'RSS served':>11} {'USS served':>11}")
    for name in before:
        print(f"{name:<12} {before[name][0]:>10.0f} {after[name][0]:>11.0f} {after[name][1]:>11.0f}")
    total = sum(rss for rss, _ in after.values())
    print(
        f"{'total':<12} {sum(r for r, _ in before.values()):>10.0f} {total:>11.0f} "
        f"{sum(u for _, u in after.values()):>11.0f}"
    )
    return total


def main() -> int:
    """Start the stack, measure, send photos, measure again, print; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshot", type=Path, required=True, help="snapshot directory (index build first)")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of photos to send")
    parser.add_argument("--photos-count", type=int, default=20, help="photos sent before the second measurement")
    parser.add_argument("--bar-mib", type=float, default=1536.0, help="largest total RSS that passes, MiB")
    args = parser.parse_args()
    if not (args.snapshot / SEARCH_FILE).exists():
        raise SystemExit(f"{args.snapshot} holds no index; run `artwork-matcher index build ... --snapshot` first")
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.photos_count]
    stack = LocalStack(args.snapshot, ports={n: free_port() for n in SERVICES}, log_dir=args.snapshot.parent / "logs")
    print(f"stack healthy after {stack.start(timeout_s=300):.1f} s")
    try:
        pids = {name: stack.processes[name].pid for name in SERVICES}
        before = measure(pids)
        statuses = send_photos(stack.url("gateway"), photos)
        print(f"{len(photos)} photos answered: {statuses}")
        after = measure(pids)
    finally:
        stack.stop()
    total = print_table(before, after)
    verdict = "PASS" if total <= args.bar_mib else "FAIL"
    print(f"total RSS {total:.0f} MiB, bar {args.bar_mib:.0f} MiB -> {verdict}")
    return 0 if total <= args.bar_mib else 1


if __name__ == "__main__":
    sys.exit(main())
