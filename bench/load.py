r"""Load test of ``POST /identify`` with real photos: fixed concurrency for a fixed time, loopback only.

Starts the four services with ``LocalStack`` on free ports (per-client rate limit off, as for every tool that
replays photos from one address) over an existing snapshot, or drives a running gateway on this machine
(``--url``; start it with ``GATEWAY_RATE_LIMIT_PER_MINUTE=0`` or the bench is throttled). Sends the photos of a
folder round-robin from ``--concurrency`` workers: first ``--warmup`` seconds not counted, then ``--duration``
seconds measured. Prints throughput, latency percentiles, status counts, connection errors and each service's
resident memory at start, after the warm-up and at the end; exits 1 when a bar is missed (any 5xx, any
connection error, a service's memory more than ``--rss-tolerance`` above its post-warm-up value).

    .venv/bin/artwork-matcher index build ../shared/data/museum-dev/objects \
        --catalogue ../shared/data/museum-dev/objects.csv --snapshot /tmp/load-snap
    .venv/bin/python bench/load.py --snapshot /tmp/load-snap --concurrency 8 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import psutil

from services.collection.images import IMAGE_SUFFIXES
from services.collection.layout import SEARCH_FILE
from tools.cli.local_stack import SERVICES, LocalStack

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "museum-dev" / "pictures"


@dataclass
class Tally:
    """What one phase of the run saw."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    connection_errors: Counter[str] = field(default_factory=Counter)


def check_loopback(url: str) -> None:
    """Refuse any target that is not on this machine's loopback interface."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to load {url}: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pids: dict[str, int]) -> dict[str, float]:
    """Resident memory of each service process (and its children), MiB."""
    sizes = {}
    for name, pid in pids.items():
        try:
            process = psutil.Process(pid)
            total = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
        except psutil.Error:
            sizes[name] = float("nan")
            continue
        sizes[name] = total / 2**20
    return sizes


async def worker(
    client: httpx.AsyncClient, url: str, photos: list[tuple[str, bytes]], start: int, until: float, tally: Tally
) -> None:
    """Send photos to ``url`` one after another until ``until`` (monotonic time), starting at photo ``start``, and
    count each answer's status, latency and connection error in ``tally``.
    """
    n = start
    while time.monotonic() < until:
        name, data = photos[n % len(photos)]
        n += 1
        sent = time.perf_counter()
        try:
            response = await client.post(url, files={"image": (name, data, "image/jpeg")})
        except httpx.TransportError as exc:
            tally.connection_errors[type(exc).__name__] += 1
            continue
        tally.latencies_ms.append((time.perf_counter() - sent) * 1000)
        tally.statuses[str(response.status_code)] += 1


async def phase(url: str, photos: list[tuple[str, bytes]], concurrency: int, seconds: float) -> tuple[Tally, float]:
    """``concurrency`` workers sending photos for ``seconds``; the tally and the wall time it took."""
    tally = Tally()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        started = time.monotonic()
        until = started + seconds
        step = max(1, len(photos) // concurrency)
        await asyncio.gather(*(worker(client, url, photos, i * step, until, tally) for i in range(concurrency)))
        return tally, time.monotonic() - started


def report(tally: Tally, wall_s: float, rss: dict[str, dict[str, float]], tolerance: float) -> bool:
    """Print the figures; True when every bar is met."""
    answered = sum(tally.statuses.values())
    latencies = np.array(tally.latencies_ms) if tally.latencies_ms else np.zeros(1)
    p50, p90, p95, p99 = np.percentile(latencies, [50, 90, 95, 99])
    print(f"requests       {answered} answered in {wall_s:.1f} s: {answered / wall_s:.2f} per second")
    print(f"latency ms     p50 {p50:.0f}  p90 {p90:.0f}  p95 {p95:.0f}  p99 {p99:.0f}  max {latencies.max():.0f}")
    print(f"status counts  {dict(sorted(tally.statuses.items()))}")
    print(f"conn. errors   {sum(tally.connection_errors.values())} {dict(tally.connection_errors)}")
    print(f"{'RSS MiB':<14} {'start':>8} {'warmed':>8} {'end':>8} {'end/warmed':>11}")
    grown = []
    for name in rss["start"]:
        start, warmed, end = rss["start"][name], rss["warmed"][name], rss["end"][name]
        ratio = end / warmed if warmed else float("nan")
        grown += [name] if not ratio <= 1 + tolerance else []
        print(f"  {name:<12} {start:8.0f} {warmed:8.0f} {end:8.0f} {ratio:10.1%}")
    server_errors = sum(count for status, count in tally.statuses.items() if status.startswith("5"))
    ok = server_errors == 0 and not tally.connection_errors and not grown and answered > 0
    print(
        f"bars           5xx {server_errors} (0), connection errors {sum(tally.connection_errors.values())} (0), "
        f"RSS over +{tolerance:.0%}: {', '.join(grown) or 'none'} -> {'PASS' if ok else 'FAIL'}"
    )
    return ok


def main() -> int:
    """Load a gateway (a local stack started here, or ``--url``) and print the figures; 0 when every bar is met."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--snapshot", type=Path, help="start a local stack over this snapshot (index build first)")
    target.add_argument("--url", help="a running gateway on loopback, e.g. http://127.0.0.1:8000")
    parser.add_argument("--pid", action="append", default=[], metavar="NAME=PID", help="with --url: processes to watch")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of photos sent round-robin")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds sent first and not measured")
    parser.add_argument("--rss-tolerance", type=float, default=0.10, help="allowed memory growth after warm-up")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 64 or not 0 < args.duration <= 3600 or not 0 <= args.warmup <= 600:
        raise SystemExit("concurrency must be 1-64, duration 0-3600 s and warm-up 0-600 s")
    photos = [(p.name, p.read_bytes()) for p in sorted(args.photos.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not photos:
        raise SystemExit(f"no photos in {args.photos}")

    stack: LocalStack | None = None
    if args.snapshot is not None:
        if not (args.snapshot / SEARCH_FILE).exists():
            raise SystemExit(f"{args.snapshot} holds no index; run `artwork-matcher index build ... --snapshot` first")
        stack = LocalStack(
            args.snapshot, ports={n: free_port() for n in SERVICES}, log_dir=args.snapshot.parent / "load-logs"
        )
        print(f"stack healthy after {stack.start(timeout_s=300):.1f} s (logs in {stack.log_dir})")
        url = stack.url("gateway")
        pids = {name: stack.processes[name].pid for name in SERVICES}
    else:
        url = args.url.rstrip("/")
        pids = {name: int(pid) for name, pid in (item.split("=", 1) for item in args.pid)}
    check_loopback(url)
    print(
        f"{len(photos)} photos from {args.photos}; concurrency {args.concurrency}, warm-up {args.warmup:g} s, "
        f"measured {args.duration:g} s against {url}"
    )
    try:
        rss = {"start": rss_mib(pids)}
        if args.warmup:
            warm, _ = asyncio.run(phase(url + "/identify", photos, args.concurrency, args.warmup))
            print(f"warm-up        {sum(warm.statuses.values())} answered {dict(warm.statuses)}")
        rss["warmed"] = rss_mib(pids)
        tally, wall_s = asyncio.run(phase(url + "/identify", photos, args.concurrency, args.duration))
        rss["end"] = rss_mib(pids)
    finally:
        if stack is not None:
            stack.stop()
    return 0 if report(tally, wall_s, rss, args.rss_tolerance) else 1


if __name__ == "__main__":
    sys.exit(main())
