"""Entry point of the ``artwork-matcher`` command."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from services.collection.layout import default_snapshot_dir
from services.collection.report_file import CollectionReport, Flag
from services.common.topology import SERVICES
from tools.cli.local_stack import DEFAULT_PORTS


def _add_build(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    index = sub.add_parser("index", help="manage the collection snapshot")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    build = index_sub.add_parser(
        "build",
        help="index a folder of reference images (only new or changed files) with the EMBEDDINGS_* model settings",
    )
    build.add_argument("directory", type=Path, help="folder of images; the file stem is the object id")
    build.add_argument("--catalogue", type=Path, help="CSV with object_id,title,artist,date,room,...")
    build.add_argument(
        "--snapshot", type=Path, default=None, help=f"snapshot directory (default {default_snapshot_dir()})"
    )
    build.add_argument("--prune", action="store_true", help="remove objects whose image file is gone")
    build.add_argument("--batch-size", type=int, default=16, help="images embedded in one model call")
    build.add_argument("--workers", type=int, default=None, help="threads decoding and extracting (default: CPUs)")
    build.add_argument(
        "--checkpoint-every",
        type=int,
        default=256,
        help="save every N images (a stopped build resumes)",
    )
    build.add_argument(
        "--no-report",
        action="store_true",
        help="do not refresh the collection report (near-duplicate pairs, ...) after a build that changed it",
    )
    build.set_defaults(func=_cmd_build)
    from tools.cli.doctor import add_index_parser

    add_index_parser(index_sub)


def _cmd_build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from services.collection.local import DeferredEmbedder
    from services.common.errors import ConfigurationError
    from services.common.runtime import limit_threads, reuse_large_blocks
    from tools.cli.build import build_collection, refresh_report

    limit_threads(2)
    reuse_large_blocks()
    snapshot = args.snapshot or default_snapshot_dir()
    bars: list[tqdm] = []

    def progress(total: int) -> Callable[[int], bool | None]:
        bar = tqdm(total=total, unit="image", desc="indexing")
        bars.append(bar)
        update: Callable[[int], bool | None] = bar.update
        return update

    try:
        report = build_collection(
            args.directory,
            snapshot,
            DeferredEmbedder(),  # the EMBEDDINGS_* settings, exactly as the embeddings service reads them; the
            # build loads it while it extracts the first references' features
            catalogue=args.catalogue,
            prune=args.prune,
            batch_size=args.batch_size,
            progress=progress,
            workers=args.workers,
            checkpoint_every=args.checkpoint_every,
        )
    except ConfigurationError as exc:  # an unusable model, or a snapshot of another model
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for bar in bars:
            bar.close()
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(
        f"snapshot {snapshot}: {report.total} objects "
        f"({len(report.added)} added, {len(report.updated)} updated, {len(report.metadata_only)} metadata updated, "
        f"{report.unchanged} unchanged, {len(report.removed)} removed)"
    )
    print(
        f"indexed {report.indexed} artworks in {report.seconds:.1f} s ({report.rate:.1f} artworks/s, "
        f"{report.checkpoints} checkpoints saved on the way)"
    )
    if not args.no_report:
        _print_refreshed(refresh_report(snapshot, report))
    return 0


def _print_refreshed(collection: CollectionReport | None) -> None:
    """One line on the collection report ``index build`` refreshed, if it did."""
    if collection is not None:
        pairs = sum(p.flag is Flag.NEAR_DUPLICATE for p in collection.pairs)
        print(
            f"collection report refreshed in {collection.seconds:.1f} s: {pairs} near-duplicate pairs "
            "(`artwork-matcher index doctor` words it)"
        )


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="start the four services as local processes")
    serve.add_argument(
        "--snapshot", type=Path, default=None, help=f"snapshot directory (default {default_snapshot_dir()})"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface of the gateway (backends stay on loopback)")
    for name, port in DEFAULT_PORTS.items():
        serve.add_argument(f"--{name}-port", type=int, default=port)
    serve.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for health")
    serve.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from tools.cli.local_stack import LocalStack, StackError

    ports = {name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS}
    stack = LocalStack(args.snapshot or default_snapshot_dir(), ports=ports, host=args.host, throttle=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        took = stack.start(args.timeout)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"artwork-matcher is up after {took:.1f} s (snapshot {stack.snapshot})")
    for name in SERVICES:
        print(f"  {name:<10} {stack.url(name)}")
    print("Ctrl-C stops it.")
    try:
        while not stop.wait(1.0):
            dead = stack.dead()
            if dead:
                print(f"error: {', '.join(dead)} exited; stopping", file=sys.stderr)
                return 1
    finally:
        stack.stop()
        print("stopped")
    return 0


def _add_identify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ident = sub.add_parser("identify", help="identify photos with a running stack")
    ident.add_argument("photos", nargs="+", type=Path)
    ident.add_argument("--url", default=SERVICES["gateway"].url(), help="gateway base URL")
    ident.add_argument("--k", type=int, default=None, help="candidates to verify")
    ident.add_argument("--threshold", type=float, default=None, help="least confidence of an answer")
    ident.add_argument("--no-geometric", action="store_true", help="embedding-only answers")
    ident.add_argument("--json", action="store_true", help="print each full answer as JSON")
    ident.set_defaults(func=_cmd_identify)


def _cmd_identify(args: argparse.Namespace) -> int:
    from tools.cli import identify

    return identify.run(
        args.url,
        args.photos,
        sys.stdout,
        as_json=args.json,
        k=args.k,
        threshold=args.threshold,
        geometric_verification=False if args.no_geometric else None,
    )


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="build a demo collection, start the stack, identify photo-like variants")
    demo.add_argument("--workdir", type=Path, default=None, help="where to keep the demo (default: a temporary dir)")
    demo.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from tools.cli.demo import run_demo

    return run_demo(args.workdir)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(prog="artwork-matcher", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_build(sub)
    _add_serve(sub)
    _add_identify(sub)
    _add_demo(sub)
    for module in ("evaluate", "calibrate", "infra"):
        try:
            plugin = __import__(f"tools.cli.{module}", fromlist=["add_parser"])
        except ImportError:
            continue
        plugin.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return int(args.func(args))


def entry(argv: list[str] | None = None) -> int:
    """The ``artwork-matcher`` command: :func:`main`, then ready to exit without the interpreter's last garbage
    collections, which walk every object torch and timm made (``index build``, ``demo``, ``evaluate``) for a second
    after the work is done (measured: importing timm, then exiting, 1.2 s → 0.2 s). Files are closed and ``atexit``
    handlers still run; only the cyclic garbage of a process about to end is left to the system."""
    code = main(argv)
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(entry())
