"""The embeddings service's HTTP layer: ``POST /embed`` over :class:`EmbeddingPipeline`."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeAlias

import anyio
from litestar import Litestar, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from prometheus_client import Counter, Histogram

from services.common.errors import InvalidFields, NotReady
from services.common.http import blocking_route, build_app
from services.common.images import decode_base64, decode_image
from services.common.observability import ServiceMetrics
from services.common.schemas import EmbedRequest, EmbedResponse, Health, HealthStatus
from services.common.service import info_body
from services.common.version import __version__
from services.embeddings.model import Embedder, TimmEmbedder
from services.embeddings.pipeline import EmbeddingPipeline
from services.embeddings.settings import EmbeddingsSettings


@dataclass(frozen=True)
class EmbeddingsState:
    """What the embeddings handlers use, injected as their ``service`` parameter."""

    settings: EmbeddingsSettings
    pipeline: EmbeddingPipeline
    ready: threading.Event
    """Set once the model is loaded (by the lifespan, off the event loop)."""
    inference_seconds: Histogram
    embedded_vectors: Counter


Service: TypeAlias = NamedDependency[EmbeddingsState]
"""A handler parameter ``service: Service`` receives the app's :class:`EmbeddingsState`."""


@get("/health", operation_id="health", summary="Liveness and model state", sync_to_thread=False)
def health(service: Service) -> Health:
    """Healthy once the model is loaded, unhealthy while it is still loading; names the model either way."""
    loaded = service.ready.is_set()
    return Health(
        HealthStatus.HEALTHY if loaded else HealthStatus.UNHEALTHY,
        "embeddings",
        __version__,
        {"model_loaded": loaded, "model": service.pipeline.embedder.name},
    )


@get("/info", operation_id="info", summary="Model and settings", sync_to_thread=False)
def info(service: Service) -> dict[str, object]:
    """The service's version, the model's name and (once loaded) its vector dimension and image preprocessing, and
    the settings in force.
    """
    embedder = service.pipeline.embedder
    return info_body(
        "embeddings",
        service.settings,
        {
            "model": {
                "name": embedder.name,
                "dimension": embedder.dimension if service.ready.is_set() else None,
                "preprocessing": getattr(embedder, "preprocessing", "") if service.ready.is_set() else None,
            },
        },
    )


@blocking_route(post, "/embed", operation_id="embed", summary="L2-normalised embeddings of images or image regions")
def embed(data: JSONBody[EmbedRequest], service: Service) -> EmbedResponse:
    """One L2-normalised float32 embedding per image, or per region of each image when regions are sent.

    Send exactly one of `image` (base64) or `images`. Answers 503 while the model loads and when its queue is full
    (refused before any image is decoded).
    """
    if not service.ready.is_set():
        raise NotReady("the model is still loading")
    started = time.perf_counter()
    service.pipeline.batcher.check_capacity()  # refuse before decoding when the model's queue is full
    if (data.image is None) == (data.images is None):
        raise InvalidFields("send exactly one of 'image' or 'images'", details={"fields": ["image", "images"]})
    texts = [data.image] if data.image is not None else list(data.images or [])
    settings = service.settings
    images = [
        decode_image(decode_base64(text, field=f"images[{i}]"), max_pixels=settings.max_image_pixels)
        for i, text in enumerate(texts)
    ]
    pipeline = service.pipeline
    inference_started = time.perf_counter()
    vectors, per_image = pipeline.embed(images, data.regions)
    service.inference_seconds.observe(time.perf_counter() - inference_started)
    service.embedded_vectors.inc(int(vectors.shape[0]))
    return EmbedResponse(
        embeddings=vectors.tolist(),
        dimension=int(vectors.shape[1]),
        model=pipeline.embedder.name,
        per_image=per_image,
        processing_time_ms=(time.perf_counter() - started) * 1000,
    )


def create_app(settings: EmbeddingsSettings | None = None, *, embedder: Embedder | None = None) -> Litestar:
    """Build the embeddings app; ``embedder`` replaces the timm model in tests."""
    settings = settings or EmbeddingsSettings()
    embedder = embedder or TimmEmbedder.from_settings(settings)
    pipeline = EmbeddingPipeline(
        embedder, max_images=settings.max_images, max_batch=settings.batch_size, max_queue=settings.max_queue
    )
    ready = threading.Event()
    metrics = ServiceMetrics("embeddings")
    inference = metrics.histogram("embeddings_inference_seconds", "Model time of one /embed request, seconds.")
    embedded = metrics.counter("embeddings_vectors", "Vectors computed (images times regions).")
    metrics.gauge("embeddings_model_loaded", "1 once the model is loaded.").set_function(lambda: float(ready.is_set()))
    metrics.gauge("embeddings_queued_requests", "Requests waiting for the model.").set_function(
        lambda: float(pipeline.batcher.queued)
    )
    metrics.gauge("embeddings_forward_passes", "Forward passes run (fewer than requests when batched).").set_function(
        lambda: float(pipeline.batcher.passes)
    )

    service = EmbeddingsState(settings, pipeline, ready, inference, embedded)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            await anyio.to_thread.run_sync(embedder.load)
            ready.set()
            yield
        finally:
            await anyio.to_thread.run_sync(pipeline.close)

    return build_app(
        title="artwork-matcher embeddings",
        description="Global image embeddings (timm) for the artwork shortlist; L2-normalised float32.",
        version=__version__,
        route_handlers=[health, info, embed],
        lifespan=[lifespan],
        max_body_bytes=settings.max_body_bytes,
        dependencies={"service": Provide(lambda: service, sync_to_thread=False)},
        metrics=metrics,
    )
