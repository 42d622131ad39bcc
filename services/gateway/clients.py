"""Typed httpx clients for the three backends, mapping transport failures to our error hierarchy.

A backend's 4xx about the client's input (a bad image, say) is re-raised as the same client error, never counted
as a backend failure; timeouts, refused connections and 5xx become 504/503/502.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any, TypeVar

import httpx
import msgspec

from services.common import errors
from services.common.schemas import (
    EmbedRequest,
    EmbedResponse,
    ExtractRequest,
    ExtractResponse,
    Features,
    MatchBatchRequest,
    MatchBatchResponse,
    ObjectList,
    ObjectMetadata,
    ReferenceInfo,
    ReferenceRequest,
    SearchRequest,
    SearchResponse,
    UpsertRequest,
)

T = TypeVar("T")
_CLIENT_ERRORS = {cls.code: cls for cls in errors.ServiceError.__subclasses__() if 400 <= cls.status < 500}


class BackendClient:
    """Base for one backend: JSON in, msgspec-typed JSON out, bounded retries with jitter when idempotent."""

    name = "backend"

    def __init__(self, base_url: str, *, timeout_s: float, retries: int = 2, client: httpx.AsyncClient | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self._client = client or httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def request(
        self, method: str, path: str, result: type[T], *, body: Any = None, idempotent: bool = False, **params: Any
    ) -> T:
        """Send one call; retry backend-side failures of idempotent calls; decode the answer into ``result``."""
        content = msgspec.json.encode(body) if body is not None else None
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                response = await self._client.request(
                    method,
                    path,
                    content=content,
                    params=params or None,
                    headers={"content-type": "application/json"} if content is not None else None,
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
                    return msgspec.json.decode(response.content, type=result)
                failure = self._error_from(response)
                if failure.status < 500:
                    raise failure
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

    async def search(self, vectors: list[list[float]], k: int) -> SearchResponse:
        """Top-k hits per vector."""
        body = SearchRequest(vectors=vectors, k=k)
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

    async def delete(self, object_id: str) -> None:
        """Remove an object."""
        await self.request("DELETE", f"/objects/{object_id}", dict, idempotent=True)


class GeometricClient(BackendClient):
    """``geometric`` service."""

    name = "geometric"

    async def extract(self, image_b64: str) -> ExtractResponse:
        """Local features of the query image."""
        body = ExtractRequest(image=image_b64)
        return await self.request("POST", "/extract", ExtractResponse, body=body, idempotent=True)

    async def match_batch(self, query: Features, reference_ids: list[str]) -> MatchBatchResponse:
        """Verify the query against several stored references."""
        body = MatchBatchRequest(reference_ids=reference_ids, query=query)
        return await self.request("POST", "/match/batch", MatchBatchResponse, body=body, idempotent=True)

    async def put_reference(self, object_id: str, image_b64: str) -> ReferenceInfo:
        """Extract and store a reference's features."""
        body = ReferenceRequest(image=image_b64)
        return await self.request("PUT", f"/references/{object_id}", ReferenceInfo, body=body, idempotent=True)

    async def delete_reference(self, object_id: str) -> None:
        """Drop a reference's features (absent ones are fine)."""
        with contextlib.suppress(errors.NotFound):
            await self.request("DELETE", f"/references/{object_id}", dict, idempotent=True)
