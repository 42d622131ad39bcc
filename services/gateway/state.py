"""The gateway's request state: one typed object holding what the handlers use, opened and closed by the lifespan.

Handlers receive :class:`GatewayState` through Litestar's dependency injection (the ``gateway`` parameter) rather
than reading names off an untyped state bag. :func:`open_gateway` builds it for one lifespan: the backend clients
it makes are closed when the lifespan ends, whether it ended normally or start-up failed half-way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from prometheus_client import Counter, Gauge
from pydantic import SecretStr

from services.collection.images import ImageStore
from services.common.errors import NotReady
from services.common.observability import ServiceMetrics
from services.decision.duplicates import NearDuplicates
from services.gateway.clients import BackendClient, CircuitBreaker, EmbeddingsClient, GeometricClient, SearchClient
from services.gateway.collection import CollectionManager
from services.gateway.looks import PaintingLooks
from services.gateway.pipeline import IdentifyPipeline
from services.gateway.security import API_KEY_HEADER, AdmissionGate, RateLimiter, check_api_key
from services.gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from services.decision.rule import DecisionParams

C = TypeVar("C", bound=BackendClient)

STATE_KEY = "gateway"
"""Name of the :class:`GatewayState` on the app's state while the app runs, and of the injected parameter."""


@dataclass(frozen=True)
class GatewayMetrics:
    """The gateway's own Prometheus metrics (beside the request metrics every service has)."""

    registry: ServiceMetrics
    circuit_open: Gauge
    rate_limited: Counter
    answers: Counter

    @classmethod
    def create(cls) -> GatewayMetrics:
        """Register the gateway's metrics in a fresh registry (once per app: a registry refuses duplicates)."""
        registry = ServiceMetrics("gateway")
        return cls(
            registry=registry,
            circuit_open=registry.gauge(
                "gateway_circuit_open", "1 while a backend's circuit is open or half-open.", ["backend"]
            ),
            rate_limited=registry.counter("gateway_rate_limited", "/identify requests refused with 429."),
            answers=registry.counter("gateway_identify_answers", "/identify answers by outcome.", ["outcome"]),
        )

    def watch_circuits(self, clients: dict[str, BackendClient]) -> None:
        """Read each client's breaker into ``gateway_circuit_open`` (labelled by backend) at scrape time."""
        for name, client in clients.items():
            self.circuit_open.labels(name).set_function(_circuit_reading(client))


def _circuit_reading(client: BackendClient) -> Callable[[], float]:
    return lambda: float(client.breaker.state != "closed")


@dataclass(frozen=True)
class GatewayState:
    """Everything a gateway handler needs, for one run of the app."""

    settings: GatewaySettings
    embeddings: EmbeddingsClient
    search: SearchClient
    geometric: GeometricClient
    pipeline: IdentifyPipeline
    collection: CollectionManager
    images: ImageStore
    api_key: SecretStr | None
    """The admin key; None disables the admin endpoints."""
    limiter: RateLimiter
    metrics: GatewayMetrics
    admission: AdmissionGate
    """The bound on ``/identify`` requests answered at once."""

    @property
    def clients(self) -> dict[str, BackendClient]:
        """The backend clients by backend name."""
        return {"embeddings": self.embeddings, "search": self.search, "geometric": self.geometric}


@dataclass(frozen=True)
class GivenClients:
    """Backend clients handed to the app (test seams); a None is made, and closed, by each lifespan. Also the
    near-duplicate pairs ``/identify`` answers together (read from the snapshot's report by ``create_app``)."""

    embeddings: EmbeddingsClient | None = None
    search: SearchClient | None = None
    geometric: GeometricClient | None = None
    near_duplicates: NearDuplicates = field(default_factory=dict)


def _made_clients(
    settings: GatewaySettings, given: GivenClients, stack: contextlib.AsyncExitStack
) -> tuple[EmbeddingsClient, SearchClient, GeometricClient]:
    """The given clients, and new ones for the others, each new one's closing pushed on ``stack`` as it is made."""

    def breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(name, failures=settings.breaker_failures, reset_s=settings.breaker_reset_s)

    def owned(client: C) -> C:
        stack.push_async_callback(client.aclose)
        return client

    retries = settings.retries
    embeddings = given.embeddings or owned(
        EmbeddingsClient(
            settings.embeddings_url,
            timeout_s=settings.embeddings_timeout_s,
            retries=retries,
            breaker=breaker("embeddings"),
        )
    )
    search = given.search or owned(
        SearchClient(
            settings.search_url, timeout_s=settings.search_timeout_s, retries=retries, breaker=breaker("search")
        )
    )
    geometric = given.geometric or owned(
        GeometricClient(
            settings.geometric_url,
            timeout_s=settings.geometric_timeout_s,
            retries=retries,
            breaker=breaker("geometric"),
        )
    )
    return embeddings, search, geometric


@contextlib.asynccontextmanager
async def open_gateway(
    settings: GatewaySettings,
    *,
    api_key: SecretStr | None,
    params: DecisionParams,
    metrics: GatewayMetrics,
    given: GivenClients,
) -> AsyncIterator[GatewayState]:
    """The gateway's state for one lifespan; on exit (or a failure while building it) the clients it made are
    closed. Clients in ``given`` belong to the caller and are left open."""
    async with contextlib.AsyncExitStack() as stack:
        embeddings, search, geometric = _made_clients(settings, given, stack)
        images = ImageStore(settings.reference_images_dir)
        pipeline = IdentifyPipeline(
            embeddings,
            search,
            geometric,
            params,
            query_max_side=settings.query_max_side,
            max_regions=settings.max_regions,
            default_k=settings.default_k,
            fine_candidates=settings.fine_candidates,
            shortlist=settings.shortlist,
            looks=PaintingLooks(settings.painting_looks, settings.painting_shortlist, settings.painting_max_area),
            near_duplicates=given.near_duplicates,
        )
        state = GatewayState(
            settings=settings,
            embeddings=embeddings,
            search=search,
            geometric=geometric,
            pipeline=pipeline,
            collection=CollectionManager(embeddings, search, geometric, images),
            images=images,
            api_key=api_key,
            limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
            metrics=metrics,
            admission=AdmissionGate(settings.max_in_flight),
        )
        metrics.watch_circuits(state.clients)
        yield state


def provide_gateway(state: State) -> GatewayState:
    """Dependency provider: the running app's :class:`GatewayState`.

    Raises:
        NotReady: the app has not started (its lifespan has not run), or has shut down.
    """
    gateway = state.get(STATE_KEY)
    if not isinstance(gateway, GatewayState):
        raise NotReady("the gateway is not running: its lifespan has not started")
    return gateway


Gateway: TypeAlias = NamedDependency[GatewayState]
"""A handler parameter ``gateway: Gateway`` receives the running app's :class:`GatewayState`."""


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard of the admin routes: the request must carry the running gateway's admin key.

    Guards run before the handler reads the body, so an unauthorised upload is refused unread. Async, so that
    Litestar awaits it on the event loop rather than sending it to a worker thread.

    Raises:
        Forbidden: no admin key is configured.
        Unauthorized: the ``X-API-Key`` header is missing or wrong.
    """
    check_api_key(connection.headers.get(API_KEY_HEADER), provide_gateway(connection.app.state).api_key)
