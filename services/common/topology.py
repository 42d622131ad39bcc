"""Facts about each service, declared once: name, port, environment prefix, health path, image, callers.

Everything that starts, wires, builds or deploys a service reads them from here: the services' settings defaults,
the local stack (``tools/cli/local_stack.py``), the Pulumi program (``components/``), the image builds
(``components/images.py``, ``bench/images``) and the container images' command and health check
(``python -m services``). Standard library only, so the Pulumi program and the image builds can import it without
any service's dependencies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

LOOPBACK = "127.0.0.1"
"""Where backends listen when they share a host with their caller."""
HEALTH_PATH = "/health"
"""The path every service answers its health on."""


@dataclasses.dataclass(frozen=True)
class ServiceFacts:
    """What every other part of the project may assume about one service."""

    name: str
    """Service name: the package ``services.<name>``, the ``pyproject.toml`` extra and the ECS service."""
    port: int
    """TCP port it listens on unless configured otherwise; the container port in AWS."""
    health_path: str = HEALTH_PATH
    """Path answering 200 while the service is healthy (image HEALTHCHECK, ECS task, load balancer)."""
    start_period_s: int = 60
    """Seconds after start during which failed health checks do not count (loading the model or the index)."""
    reads_snapshot: bool = True
    """Whether it reads the collection snapshot (``<PREFIX>SNAPSHOT_DIR``; the EFS mount in AWS)."""
    calls: tuple[str, ...] = ()
    """The services it calls, each given to it as ``<PREFIX><BACKEND>_URL``."""
    dockerfile: str = "services/Dockerfile"
    """Its Dockerfile, relative to the repository root (the build context)."""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"service name must be a lower-case identifier, got {self.name!r}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"{self.name}: port must lie in 1..65535, got {self.port}")
        if not self.health_path.startswith("/"):
            raise ValueError(f"{self.name}: health path must start with '/', got {self.health_path!r}")

    @property
    def env_prefix(self) -> str:
        """Prefix of its settings' environment variables, e.g. ``SEARCH_``."""
        return f"{self.name.upper()}_"

    @property
    def module(self) -> str:
        """The module ``python -m`` runs."""
        return f"services.{self.name}"

    def env(self, setting: str) -> str:
        """The environment variable of one of its settings: ``env("snapshot_dir")`` is ``SEARCH_SNAPSHOT_DIR``."""
        return self.env_prefix + setting.upper()

    def url(self, host: str = LOOPBACK, port: int | None = None) -> str:
        """Its base URL on ``host`` at ``port`` (default: its declared port)."""
        return f"http://{host}:{self.port if port is None else port}"

    def build_args(self) -> dict[str, str]:
        """The build arguments its Dockerfile declares: ``SERVICE`` (package and extra), ``ENV_PREFIX``, ``PORT``."""
        return {"SERVICE": self.name, "ENV_PREFIX": self.env_prefix, "PORT": str(self.port)}


SERVICES: Mapping[str, ServiceFacts] = MappingProxyType(
    {
        facts.name: facts
        for facts in (
            ServiceFacts("gateway", 8000, calls=("embeddings", "search", "geometric")),
            ServiceFacts(
                "embeddings",
                8001,
                start_period_s=120,
                reads_snapshot=False,
                dockerfile="services/embeddings/Dockerfile",
            ),
            ServiceFacts("search", 8002),
            ServiceFacts("geometric", 8003),
        )
    }
)
"""Every service by name, the public entry point first (the order of deployment)."""


def _start_order(services: Mapping[str, ServiceFacts]) -> tuple[str, ...]:
    """Names ordered so that every service comes after the services it calls."""
    ordered: list[str] = []
    while len(ordered) < len(services):
        ready = [s.name for s in services.values() if s.name not in ordered and set(s.calls) <= set(ordered)]
        if not ready:
            raise ValueError(f"services call each other in a cycle: {sorted(set(services) - set(ordered))}")
        ordered.extend(ready)
    return tuple(ordered)


START_ORDER: tuple[str, ...] = _start_order(SERVICES)
"""Service names, each after the services it calls: the order to start them in (stop in reverse)."""


def facts(name: str) -> ServiceFacts:
    """The facts of one service.

    Raises:
        ValueError: ``name`` is not a service; the message lists the services.
    """
    try:
        return SERVICES[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; the services are {', '.join(SERVICES)}") from None


def service_environment(
    name: str,
    *,
    host: str,
    snapshot_dir: str,
    ports: Mapping[str, int] | None = None,
    backend_domain: str | None = None,
) -> dict[str, str]:
    """The environment that places one service: where it listens, where it finds the snapshot and its backends.

    The one builder of these variables for every way of running the services (local processes, containers here,
    ECS tasks); each caller adds what only it needs (thread limits, log level, rate limits...).

    Args:
        name: The service.
        host: Interface it listens on (``<PREFIX>HOST``).
        snapshot_dir: The collection snapshot as the service sees it; set only for services that read it.
        ports: Port per service where it differs from the declared one (its own ``<PREFIX>PORT`` and its
            backends' URLs).
        backend_domain: None: backends listen on loopback; else each is reached as ``<backend>.<backend_domain>``
            (service discovery).

    Returns:
        ``<PREFIX>HOST``, ``<PREFIX>PORT``, ``<PREFIX>SNAPSHOT_DIR`` when it reads the snapshot, and
        ``<PREFIX><BACKEND>_URL`` for every service it calls.

    Raises:
        ValueError: ``name`` is not a service.
    """
    service = facts(name)
    chosen = dict(ports or {})
    env = {service.env("host"): host, service.env("port"): str(chosen.get(name, service.port))}
    if service.reads_snapshot:
        env[service.env("snapshot_dir")] = snapshot_dir
    for backend in map(facts, service.calls):
        backend_host = LOOPBACK if backend_domain is None else f"{backend.name}.{backend_domain}"
        env[service.env(f"{backend.name}_url")] = backend.url(backend_host, chosen.get(backend.name))
    return env
