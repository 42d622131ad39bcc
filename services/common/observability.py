"""Request ids, one access-log line per request and Prometheus metrics, the same for every service.

:func:`services.common.http.build_app` wraps each app in :class:`ObserveMiddleware` (outermost, so unmatched
routes, CORS preflights and errors are seen too) and serves :class:`ServiceMetrics` at ``GET /metrics``.
The request id comes from the caller's ``X-Request-ID`` when it is well-formed, else a new one; it is kept in a
context variable that log records and the gateway's backend calls read, and returned as a response header.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REQUEST_ID_HEADER = "X-Request-ID"
"""Header carrying the request id in and out of every service."""

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Histogram buckets for request and inference durations, seconds."""

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
"""Media type of the ``/metrics`` text exposition."""

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ACCESS = logging.getLogger("services.access")

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def current_request_id() -> str | None:
    """The id of the request being handled in this context, or None outside a request."""
    return _REQUEST_ID.get()


def accept_request_id(value: str | None) -> str:
    """The caller's request id when it is safe to log and forward (letters, digits, ``._:-``, ≤ 128), else a new
    one; anything else could forge log lines or headers."""
    if value and _VALID_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every log record (``request_id``, None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the request id and keep the record."""
        record.request_id = _REQUEST_ID.get()
        return True


class ServiceMetrics:
    """The Prometheus metrics of one service, in a registry of its own (apps built in one process stay apart).

    Every service has ``http_requests_total{method,route,status}`` and
    ``http_request_duration_seconds{method,route}``; services add their own with :meth:`gauge`,
    :meth:`counter` and :meth:`histogram`. ``route`` is the route template (``/objects/{object_id}``), or
    ``unmatched`` for paths no route serves, so label values stay few.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by route and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to the end of the response, seconds.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A gauge in this service's registry."""
        return Gauge(name, documentation, labels, registry=self.registry)

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter in this service's registry (exposed with the ``_total`` suffix)."""
        return Counter(name, documentation, labels, registry=self.registry)

    def histogram(self, name: str, documentation: str, buckets: Sequence[float] = LATENCY_BUCKETS_S) -> Histogram:
        """A histogram in this service's registry."""
        return Histogram(name, documentation, buckets=buckets, registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)


class ObserveMiddleware:
    """Raw ASGI wrapper: request id in and out, metrics and one structured access-log line per HTTP request."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass one ASGI connection on; an HTTP request is timed, counted and logged under its request id."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), b"")
        request_id = accept_request_id(incoming.decode("latin-1"))
        token = _REQUEST_ID.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "")
            self.metrics.observe_request(method, route, status, seconds)
            _ACCESS.info(
                "%s %s %d %.1f ms",
                method,
                scope.get("path", ""),
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            _REQUEST_ID.reset(token)
