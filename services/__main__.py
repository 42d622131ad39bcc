"""``python -m services``: run a service, probe its health, or print its image's build arguments.

The container images run ``python -m services run`` and check ``python -m services health``; the service is the one
named on the command line, else ``$ARTWORK_MATCHER_SERVICE`` (set by the image from its ``SERVICE`` build
argument). ``build-args`` prints the ``--build-arg`` options of a service's Dockerfile for ``docker build``::

    docker build -f services/Dockerfile $(python3 -m services build-args search) -t artwork-matcher-search .

Standard library only until a service is started, so the health probe is cheap.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import urllib.request
from collections.abc import Mapping

from services.common.topology import LOOPBACK, SERVICES, ServiceFacts, facts

SERVICE_VARIABLE = "ARTWORK_MATCHER_SERVICE"
"""Names the image's service for ``run`` and ``health`` when the command line does not."""
HEALTH_TIMEOUT_S = 4.0
"""One probe's time limit, seconds (the images' HEALTHCHECK allows 5)."""


def health_url(service: ServiceFacts, environ: Mapping[str, str]) -> str:
    """The loopback URL of the service's health path at the port it is configured with (else its declared one)."""
    port = environ.get(service.env("port"), "").strip()
    return service.url(LOOPBACK, int(port) if port else None) + service.health_path


def probe(url: str) -> int:
    """0 when ``url`` answers 2xx within the time limit, else 1 (the reason on stderr)."""
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S):
            return 0
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services", description=(__doc__ or "").split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command, text in (("run", "start the service"), ("health", "exit 0 when the service answers healthy")):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("service", nargs="?", choices=list(SERVICES), help=f"default: ${SERVICE_VARIABLE}")
    sub = commands.add_parser("build-args", help="print the --build-arg options of the service's Dockerfile")
    sub.add_argument("service", choices=list(SERVICES))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and do what it says; the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    name = args.service or os.environ.get(SERVICE_VARIABLE, "")
    if not name:
        parser.error(f"name the service or set {SERVICE_VARIABLE} (one of {', '.join(SERVICES)})")
    try:
        service = facts(name)
    except ValueError as exc:
        parser.error(f"{SERVICE_VARIABLE}: {exc}")
    if args.command == "build-args":
        print(" ".join(f"--build-arg {key}={value}" for key, value in service.build_args().items()))
        return 0
    if args.command == "health":
        try:
            url = health_url(service, os.environ)
        except ValueError:
            parser.error(f"{service.env('port')} must be a whole number, got {os.environ[service.env('port')]!r}")
        return probe(url)
    runpy.run_module(service.module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
