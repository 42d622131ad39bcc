"""Typed httpx clients for the three backends, mapping transport failures to our error hierarchy.

A backend's 4xx about the client's input (a bad image, say) is re-raised as the same client error, never counted
as a backend failure; timeouts, refused connections and 5xx become 504/503/502, and count towards opening the
backend's circuit breaker, after which calls fail at once with 503 until a probe finds the backend back. A
backend's 503 ``overloaded`` (its queue is full) is passed on at once as the gateway's own ``overloaded`` with
``Retry-After``: not retried, and not counted against the backend, which is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import httpx
import msgspec

from services.common import errors
from services.common.observability import REQUEST_ID_HEADER, current_request_id
from services.common.schemas import (
    EmbedRequest,
    EmbedResponse,
    ExtractRequest,
    ExtractResponse,
    Features,
    MatchBatchRequest,
    MatchBatchResponse,
    MatchPaintingsRequest,
    MatchPaintingsResponse,
    ObjectList,
    ObjectMetadata,
    PaintingQuery,
    ReferenceInfo,
    ReferenceRequest,
    SearchRequest,
    SearchResponse,
    UpsertRequest,
)

T = TypeVar("T")
_CLIENT_ERRORS = {cls.code: cls for cls in errors.ServiceError.__subclasses__() if 400 <= cls.status < 500}


class CircuitState(StrEnum):
    """State of a backend's circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Stops calling a backend that keeps failing, so requests fail fast instead of piling up behind it.

    ``closed``: calls go through; ``failures`` consecutive failed calls open the circuit. ``open``: calls fail at
    once until ``reset_s`` have passed, then the circuit is ``half_open``: one probe call goes through (others
    still fail at once); its success closes the circuit, its failure opens it again. Only backend-side failures
    count; a call answered with a client error (4xx) proves the backend alive. Used from the event loop only.
    """

    def __init__(
        self, backend: str, *, failures: int = 5, reset_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.backend = backend
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self._opened_at = 0.0
        self._probing = False

    def before_call(self) -> None:
        """Let a call through, or raise.

        Raises:
            BackendUnavailable: the circuit is open, or half-open with its probe in flight.
        """
        if self.state is CircuitState.OPEN:
            remaining = self._opened_at + self.reset_s - self._clock()
            if remaining > 0:
                raise self._rejection(remaining)
            self.state = CircuitState.HALF_OPEN
        if self.state is CircuitState.HALF_OPEN:
            if self._probing:
                raise self._rejection(self.reset_s)
            self._probing = True

    def succeeded(self) -> None:
        """The call reached a working backend (success or the client's own error)."""
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self._probing = False

    def failed(self) -> None:
        """The call failed on the backend's side."""
        self.consecutive_failures += 1
        self._probing = False
        if self.state is CircuitState.HALF_OPEN or self.consecutive_failures >= self.failures:
            self.state = CircuitState.OPEN
            self._opened_at = self._clock()

    def abandoned(self) -> None:
        """The call was cancelled before it had an outcome; a probe slot it held is free again."""
        self._probing = False

    def _rejection(self, wait_s: float) -> errors.BackendUnavailable:
        return errors.BackendUnavailable(
            f"{self.backend} is unavailable: its circuit is {self.state.value} after "
            f"{self.consecutive_failures} consecutive failures",
            details={
                "backend": self.backend,
                "circuit": self.state.value,
                "retry_after_s": max(1, math.ceil(wait_s)),
            },
        )


class BackendClient:
    """Base for one backend: JSON in, msgspec-typed JSON out, bounded retries with jitter when idempotent, and a
    circuit breaker."""

    name = "backend"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        retries: int = 2,
        client: httpx.AsyncClient | None = None,
        breaker: CircuitBreaker | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.breaker = breaker or CircuitBreaker(self.name)
        self._client = client or self._new_client()

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 2.0)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    async def aclose(self) -> None:
        """Close the connection pool (for good: the gateway's lifespan makes new clients when it runs again)."""
        await self._client.aclose()

    @property
    def closed(self) -> bool:
        """Whether the connection pool has been closed."""
        return self._client.is_closed

    async def request(
        self, method: str, path: str, result: type[T], *, body: Any = None, idempotent: bool = False, **params: Any
    ) -> T:
        """Send one call through the circuit breaker; retry backend-side failures of idempotent calls; decode the
        answer into ``result``."""
        self.breaker.before_call()
        try:
            answer = await self._send(method, path, result, body=body, idempotent=idempotent, **params)
        except errors.ServiceError as exc:
            if exc.status >= 500 and not isinstance(exc, errors.Overloaded):
                self.breaker.failed()
                exc.details["circuit"] = self.breaker.state.value
            else:
                self.breaker.succeeded()
            raise
        except BaseException:
            self.breaker.abandoned()
            raise
        self.breaker.succeeded()
        return answer

    async def _send(self, method: str, path: str, result: type[T], *, body: Any, idempotent: bool, **params: Any) -> T:
        content = msgspec.json.encode(body) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else {}
        request_id = current_request_id()
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                response = await self._client.request(
                    method, path, content=content, params=params or None, headers=headers or None
                )
            except httpx.TimeoutException as exc:
                failure: errors.ServiceError = errors.BackendTimeout(
                    f"{self.name} did not answer within {self.timeout_s:g} s", details={"backend": self.name}
                )
                cause: Exception = exc
            except httpx.TransportError as exc:
                failure = errors.BackendUnavailable(
                    f"{self.name} is unreachable: {type(exc).__name__}", details={"backend": self.name}
                )
                cause = exc
            else:
                if response.status_code < 400:
                    try:
                        return msgspec.json.decode(response.content, type=result)
                    except msgspec.DecodeError as exc:
                        raise errors.BackendError(
                            f"{self.name} answered a body that does not fit the contract: {exc}",
                            details={"backend": self.name, "status": response.status_code},
                        ) from exc
                failure = self._error_from(response)
                if failure.status < 500 or isinstance(failure, errors.Overloaded):
                    raise failure  # the client's own error, or a full queue: repeating it at once cannot help
                cause = RuntimeError(response.text[:200])
            if attempt + 1 < attempts:
                await asyncio.sleep(0.05 * (2**attempt) * (0.5 + random.random()))
        raise failure from cause

    def _error_from(self, response: httpx.Response) -> errors.ServiceError:
        try:
            body = response.json()
            code, message, details = body["error"], body["message"], body.get("details") or {}
        except (ValueError, KeyError, TypeError):
            code, message, details = "backend_error", response.text[:200], {}
        if response.status_code < 500 and code in _CLIENT_ERRORS:
            return _CLIENT_ERRORS[code](message, details=details)
        if response.status_code == 503 and code == errors.Overloaded.code:
            return errors.Overloaded(
                f"{self.name} is overloaded: {message}",
                details={"backend": self.name, "retry_after_s": _retry_after(response, details)},
            )
        if response.status_code == 503:
            return errors.BackendUnavailable(
                f"{self.name} is not ready: {message}", details={"backend": self.name, "code": code}
            )
        return errors.BackendError(
            f"{self.name} failed: {message}",
            details={"backend": self.name, "status": response.status_code, "code": code},
        )

    async def health(self) -> dict[str, Any]:
        """The backend's ``/health`` body."""
        return await self.request("GET", "/health", dict, idempotent=True)

    async def info(self) -> dict[str, Any]:
        """The backend's ``/info`` body."""
        return await self.request("GET", "/info", dict, idempotent=True)


def _retry_after(response: httpx.Response, details: dict[str, Any]) -> int:
    """The backend's suggested wait, whole seconds (at least 1): its ``Retry-After`` header, else its details."""
    for value in (response.headers.get("retry-after"), details.get("retry_after_s")):
        with contextlib.suppress(TypeError, ValueError):
            return max(1, math.ceil(float(value)))  # type: ignore[arg-type]
    return 1


class EmbeddingsClient(BackendClient):
    """``embeddings`` service."""

    name = "embeddings"

    async def embed(self, image_b64: str, regions: list[list[float]] | None = None) -> EmbedResponse:
        """Embeddings of one image's regions (the whole image when None)."""
        body = EmbedRequest(image=image_b64, regions=regions)
        return await self.request("POST", "/embed", EmbedResponse, body=body, idempotent=True)


class SearchClient(BackendClient):
    """``search`` service."""

    name = "search"

    async def search(self, vectors: list[list[float]], k: int, include: list[str] | None = None) -> SearchResponse:
        """Top-k hits per vector, and the scores of the ``include`` objects whatever their rank."""
        body = SearchRequest(vectors=vectors, k=k, include=list(include or []))
        return await self.request("POST", "/search", SearchResponse, body=body, idempotent=True)

    async def get(self, object_id: str) -> ObjectMetadata:
        """One catalogue entry."""
        return await self.request("GET", f"/objects/{object_id}", ObjectMetadata, idempotent=True)

    async def page(self, offset: int, limit: int) -> ObjectList:
        """A page of catalogue entries."""
        return await self.request("GET", "/objects", ObjectList, idempotent=True, offset=offset, limit=limit)

    async def upsert(self, vector: list[float], metadata: ObjectMetadata) -> ObjectMetadata:
        """Add or replace an object (a PUT: safe to repeat)."""
        body = UpsertRequest(vector=vector, metadata=metadata)
        return await self.request("PUT", f"/objects/{metadata.object_id}", ObjectMetadata, body=body, idempotent=True)

    async def update_metadata(self, metadata: ObjectMetadata) -> ObjectMetadata:
        """Replace an object's catalogue metadata, its vector kept (a PUT of the whole metadata: safe to repeat)."""
        path = f"/objects/{metadata.object_id}/metadata"
        return await self.request("PUT", path, ObjectMetadata, body=metadata, idempotent=True)

    async def delete(self, object_id: str) -> None:
        """Remove an object."""
        await self.request("DELETE", f"/objects/{object_id}", dict, idempotent=True)


class GeometricClient(BackendClient):
    """``geometric`` service."""

    name = "geometric"

    async def extract(
        self, image_b64: str, *, fine: bool = False, shortlist: int = 0, paintings: bool = False
    ) -> ExtractResponse:
        """Local features of the query image (and its finer set, with ``fine``; up to ``shortlist`` references
        its descriptors vote for; with ``paintings``, the framed paintings located in it)."""
        body = ExtractRequest(image=image_b64, fine=fine, shortlist=shortlist, paintings=paintings)
        return await self.request("POST", "/extract", ExtractResponse, body=body, idempotent=True)

    async def match_paintings(
        self, image_b64: str, paintings: list[PaintingQuery], *, shortlist: int
    ) -> MatchPaintingsResponse:
        """Rectify each located painting, verify against it the ``shortlist`` references its features vote for
        (and its own ``reference_ids``); results in the photo's frame."""
        body = MatchPaintingsRequest(image=image_b64, paintings=paintings, shortlist=shortlist)
        return await self.request("POST", "/match/paintings", MatchPaintingsResponse, body=body, idempotent=True)

    async def match_batch(
        self, query: Features, reference_ids: list[str], *, fine: Features | None = None, fine_first: int = 0
    ) -> MatchBatchResponse:
        """Verify the query against several stored references (the first ``fine_first`` again on ``fine``)."""
        body = MatchBatchRequest(
            reference_ids=reference_ids, query=query, fine_query=fine, fine_first=fine_first if fine else 0
        )
        return await self.request("POST", "/match/batch", MatchBatchResponse, body=body, idempotent=True)

    async def put_reference(self, object_id: str, image_b64: str) -> ReferenceInfo:
        """Extract and store a reference's features."""
        body = ReferenceRequest(image=image_b64)
        return await self.request("PUT", f"/references/{object_id}", ReferenceInfo, body=body, idempotent=True)

    async def delete_reference(self, object_id: str) -> None:
        """Drop a reference's features (absent ones are fine)."""
        with contextlib.suppress(errors.NotFound):
            await self.request("DELETE", f"/references/{object_id}", dict, idempotent=True)
