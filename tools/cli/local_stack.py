"""Running the four services as local processes: the embedded default, also used by tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.collection.stamp import ModelMismatch, ModelStamp, check_model
from services.common.topology import LOOPBACK, START_ORDER, service_environment
from services.common.topology import SERVICES as FACTS

SERVICES = START_ORDER
"""The services in the order they are started (each after the services it calls); stopped in reverse."""
DEFAULT_PORTS = {name: service.port for name, service in FACTS.items()}
"""Each service's declared port (``services/common/topology.py``)."""
_ALL_INTERFACES = ("0.0.0.0", "::")


class StackError(RuntimeError):
    """A service did not start or died."""


@dataclass
class LocalStack:
    """The four services as child processes on one host.

    Args:
        snapshot: the collection snapshot directory every service reads.
        ports: port per service (default: each one's declared port, :data:`DEFAULT_PORTS`).
        host: interface for the gateway; the internal services always listen on loopback.
        env: extra environment for every service (e.g. ``GATEWAY_API_KEY``).
        log_dir: where each service's output goes (``<name>.log``); None inherits this process's stderr.
        throttle: keep the gateway's per-client rate limit on ``/identify`` (``serve`` does); tools and tests that
            replay many photos from one address turn it off (``GATEWAY_RATE_LIMIT_PER_MINUTE=0``) unless ``env``
            sets it.
    """

    snapshot: Path
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    host: str = "127.0.0.1"
    env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    throttle: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        """Base URL of one service."""
        host = self.host if name == "gateway" and self.host not in _ALL_INTERFACES else LOOPBACK
        return FACTS[name].url(host, self.ports[name])

    def _environment(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
        host = self.host if name == "gateway" else LOOPBACK
        env.update(service_environment(name, host=host, snapshot_dir=str(self.snapshot), ports=self.ports))
        if name == "gateway" and not self.throttle:
            env["GATEWAY_RATE_LIMIT_PER_MINUTE"] = "0"
        env.update(self.env)
        return env

    def start_service(self, name: str) -> None:
        """Start (or restart) one service process."""
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", FACTS[name].module],
            env=self._environment(name),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )

    def start(self, timeout_s: float = 120.0) -> float:
        """Start every service and wait until all are healthy; returns the seconds it took."""
        started = time.perf_counter()
        for name in SERVICES:
            self.start_service(name)
        try:
            failure: StackError | None = None
            try:
                self.wait_healthy(SERVICES, timeout_s)
            except StackError as exc:  # the gateway exits at start-up when it finds the models differ
                failure = exc
            problem = self.model_problem()
            if problem is not None:
                raise StackError(problem) from failure
            if failure is not None:
                raise failure
        except BaseException:
            self.stop()
            raise
        return time.perf_counter() - started

    def model_problem(self) -> str | None:
        """Why the embeddings service cannot serve the snapshot (it runs another model than the one that built the
        snapshot's vectors), or None: the models agree, the snapshot records none, or the service cannot tell."""
        try:
            response = httpx.get(self.url("embeddings") + "/info", timeout=5.0)
            serving = ModelStamp.from_info(response.json()) if response.status_code == 200 else None
            if serving is not None:
                check_model(self.snapshot, serving, who="the embeddings service")
        except ModelMismatch as exc:
            return str(exc)
        except (httpx.HTTPError, ValueError):  # not answering, or not JSON; a corrupt snapshot fails in search
            return None
        return None

    def wait_healthy(self, names: tuple[str, ...] | list[str], timeout_s: float) -> None:
        """Poll ``/health`` of ``names`` until each answers healthy."""
        deadline = time.monotonic() + timeout_s
        pending = list(names)
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for name in list(pending):
                    process = self.processes.get(name)
                    if process is not None and process.poll() is not None:
                        raise StackError(f"{name} exited with code {process.returncode} during start-up")
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        response = client.get(self.url(name) + FACTS[name].health_path)
                        if response.status_code == 200 and response.json().get("status") == "healthy":
                            pending.remove(name)
                if pending and time.monotonic() > deadline:
                    raise StackError(f"not healthy after {timeout_s:g} s: {', '.join(pending)}")
                if pending:
                    time.sleep(0.2)

    def stop_service(self, name: str, *, kill: bool = False, timeout_s: float = 10.0) -> None:
        """Stop one service: SIGTERM (or SIGKILL), then wait; escalate to SIGKILL on timeout."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """Stop every service, the gateway first."""
        for name in reversed(SERVICES):
            self.stop_service(name)

    def dead(self) -> list[str]:
        """Services whose process has exited."""
        return [name for name, p in self.processes.items() if p.poll() is not None]

    @contextlib.contextmanager
    def running(self, timeout_s: float = 120.0) -> Iterator[LocalStack]:
        """Start, yield, always stop."""
        self.start(timeout_s)
        try:
            yield self
        finally:
            self.stop()
