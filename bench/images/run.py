"""Running the built images as containers here: health, HEALTHCHECK, user, photos identified through the gateway."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from services.common.topology import SERVICES, START_ORDER
from tools.cli.dataset import read_labels

from .commands import (
    APP_UID,
    SNAPSHOT_MOUNT,
    Buildah,
    container_env,
    healthcheck_argv,
    image_name,
    run_command,
)

# --- photos (pure) ------------------------------------------------------------------------------------------------


def pick_photos(labels: Mapping[str, frozenset[str]], count: int, seed: int) -> list[str]:
    """A seeded sample of ``count`` labelled photos (all of them when there are fewer)."""
    names = sorted(labels)
    return sorted(random.Random(seed).sample(names, min(count, len(names))))


def answered(body: Mapping[str, Any]) -> str | None:
    """The object id of an ``/identify`` answer's best match, None for "no match"."""
    match = body.get("match")
    return str(match["object_id"]) if match else None


def is_right(expected: frozenset[str], answer: str | None) -> bool:
    """Right: one of the artworks the photo shows (either one of two), or "no match" when it shows none."""
    return answer is None if not expected else answer in expected


# --- the run ------------------------------------------------------------------------------------------------------


@dataclass
class ServiceCheck:
    """What was checked of one running container."""

    service: str
    healthy_s: float | None = None
    healthcheck_rc: int | None = None
    uid: int | None = None

    def passed(self) -> bool:
        """Healthy, HEALTHCHECK exited 0, serving as the non-root user."""
        return self.healthy_s is not None and self.healthcheck_rc == 0 and self.uid == APP_UID


@dataclass
class RunReport:
    """The containers' checks and, when all four ran, the identified photos."""

    services: tuple[str, ...] = START_ORDER
    checks: dict[str, ServiceCheck] = field(default_factory=dict)
    answers: list[tuple[str, frozenset[str], str | None, float]] = field(default_factory=list)
    backends: str = "not checked"

    @property
    def whole_stack(self) -> bool:
        """All four services ran, so photos were identified through the gateway."""
        return set(self.services) == set(START_ORDER)

    def right(self) -> int:
        """How many photos were answered right."""
        return sum(is_right(expected, answer) for _, expected, answer, _ in self.answers)

    def passed(self, min_right: int) -> bool:
        """Every container passed its checks; with all four: healthy backends and enough right answers."""
        containers = set(self.checks) == set(self.services) and all(c.passed() for c in self.checks.values())
        if not self.whole_stack:
            return containers
        return containers and self.backends == "healthy" and self.right() >= min_right

    def summary(self) -> str:
        """Lines for people."""
        lines = []
        for c in self.checks.values():
            healthy = f"healthy after {c.healthy_s:.0f} s" if c.healthy_s is not None else "NOT healthy"
            lines.append(f"  {c.service:<11} {healthy}, HEALTHCHECK rc={c.healthcheck_rc}, uid={c.uid}")
        if not self.whole_stack:
            return "\n".join([*lines, "  no photos identified (not all four services ran)"])
        lines.append(f"  gateway /health?check_backends=true: {self.backends}")
        for photo, expected, answer, ms in self.answers:
            mark = "right" if is_right(expected, answer) else "WRONG"
            want = ";".join(sorted(expected)) or "no match"
            lines.append(f"  {mark}  {photo}: {answer or 'no match'} (labelled {want}) {ms:.0f} ms")
        lines.append(f"  {self.right()}/{len(self.answers)} photos right")
        return "\n".join(lines)


def listening_pid(port: int) -> int | None:
    """The process listening on a TCP port of this machine, if any."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            pid: int | None = conn.pid
            return pid
    return None


class Containers:
    """The working containers, their serving processes and logs; all removed by :meth:`stop`."""

    def __init__(self, buildah: Buildah, args: argparse.Namespace, snapshot: Path) -> None:
        self.buildah, self.args, self.snapshot = buildah, args, snapshot
        self.names: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[IO[bytes]] = []

    def start(self, service: str) -> None:
        """Create the working container from the image and run the image's CMD in it."""
        name = f"artwork-matcher-{service}-check"
        self.buildah.succeeds("rm", name)
        self.buildah.output("from", "--pull=never", "--name", name, image_name(service, self.args.tag))
        self.names[service] = name
        config = self.buildah.image_config(image_name(service, self.args.tag))
        env = container_env(service)
        command = run_command(self.buildah, name, config["Cmd"], env=env, volume=f"{self.snapshot}:{SNAPSHOT_MOUNT}")
        log = open(self.args.workdir / "logs" / f"run-{service}.log", "wb")  # noqa: SIM115 - closed by stop()
        self.logs.append(log)
        self.processes[service] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_healthy(self, service: str, timeout_s: float) -> float | None:
        """Seconds until ``/health`` answered 200, None when it did not in time or the container exited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if self.processes[service].poll() is not None:
                return None
            try:
                if httpx.get(SERVICES[service].url() + SERVICES[service].health_path, timeout=2).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(1)
        return None

    def healthcheck(self, service: str) -> int:
        """Exit status of the image's HEALTHCHECK command run inside the container."""
        config = self.buildah.image_config(image_name(service, self.args.tag))
        env = container_env(service)
        command = run_command(
            self.buildah,
            self.names[service],
            healthcheck_argv(config),
            env=env,
            volume=f"{self.snapshot}:{SNAPSHOT_MOUNT}",
        )
        timeout = (config["Healthcheck"].get("Timeout") or 30e9) / 1e9 + 10
        return subprocess.run(command, capture_output=True, timeout=timeout).returncode

    def serving_uid(self, service: str) -> int | None:
        """Real uid of the process listening on the service's port, if it is this container's."""
        pid = listening_pid(SERVICES[service].port)
        ours = {p.pid for p in psutil.Process(self.processes[service].pid).children(recursive=True)}
        return psutil.Process(pid).uids().real if pid in ours else None

    def stop(self) -> None:
        """Stop every serving process (its process group, the one started here) and remove the containers."""
        for process in self.processes.values():
            children = psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            for child in children:
                with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                    child.kill()
        for name in self.names.values():
            self.buildah.succeeds("rm", name)
        for log in self.logs:
            log.close()


def run_containers(buildah: Buildah, args: argparse.Namespace, snapshot: Path) -> RunReport:
    """Start the containers over a writable copy of the snapshot, check them, identify photos when all four run,
    remove them."""
    busy = [f"{s.name}:{s.port}" for s in SERVICES.values() if listening_pid(s.port) is not None]
    if busy:
        raise SystemExit(f"ports already in use ({', '.join(busy)}); stop what listens there and run again")
    live = args.workdir / "snapshot-live"
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(snapshot, live)
    for path in [live, *live.rglob("*")]:
        os.chown(path, APP_UID, APP_UID)
    report = RunReport(services=tuple(s for s in START_ORDER if s in args.services))
    containers = Containers(buildah, args, live)
    try:
        for service in report.services:
            containers.start(service)
            check = report.checks[service] = ServiceCheck(service)
            check.healthy_s = containers.wait_healthy(service, timeout_s=300)
            if check.healthy_s is None:
                print(f"{service} did not become healthy; see {args.workdir}/logs/run-{service}.log", flush=True)
                return report
            check.healthcheck_rc = containers.healthcheck(service)
            check.uid = containers.serving_uid(service)
            print(
                f"{service}: healthy in {check.healthy_s:.0f} s, HEALTHCHECK rc={check.healthcheck_rc}, uid={check.uid}"
            )
        if report.whole_stack:
            identify(args, report)
    finally:
        containers.stop()
    return report


def identify(args: argparse.Namespace, report: RunReport) -> None:
    """Ask the containerised gateway about a sample of labelled photos."""
    gateway = SERVICES["gateway"]
    with httpx.Client(base_url=gateway.url(), timeout=60) as client:
        health = client.get(gateway.health_path, params={"check_backends": "true"})
        report.backends = str(health.json().get("status"))
        labels = read_labels(args.data / "labels.csv")
        for photo in pick_photos(labels, args.photos, args.seed):
            start = time.monotonic()
            content = (args.data / "pictures" / photo).read_bytes()
            response = client.post("/identify", files={"image": (photo, content, "image/jpeg")})
            ms = 1000 * (time.monotonic() - start)
            response.raise_for_status()
            report.answers.append((photo, labels[photo], answered(response.json()), ms))
