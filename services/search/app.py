"""The search service's HTTP layer: thin handlers over :class:`services.search.live_index.LiveIndex`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, TypeAlias

import anyio
import numpy as np
from litestar import Litestar, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from services.collection.vectors import Hit
from services.common.errors import InvalidFields
from services.common.http import ObjectIdPath, blocking_route, build_app
from services.common.observability import ServiceMetrics
from services.common.schemas import (
    Health,
    HealthStatus,
    ObjectList,
    ObjectMetadata,
    SearchHit,
    SearchRequest,
    SearchResponse,
    UpsertRequest,
)
from services.common.service import background, info_body, watch_file
from services.common.version import __version__
from services.search.live_index import LiveIndex
from services.search.settings import SearchSettings


@dataclass(frozen=True)
class SearchState:
    """What the search handlers use, injected as their ``service`` parameter."""

    settings: SearchSettings
    catalog: LiveIndex


Service: TypeAlias = NamedDependency[SearchState]
"""A handler parameter ``service: Service`` receives the app's :class:`SearchState`."""


@get("/health", operation_id="health", summary="Liveness and index size", sync_to_thread=False)
def health(service: Service) -> Health:
    """Healthy while the service runs; reports the index size and vector dimension (null while empty)."""
    catalog = service.catalog
    return Health(
        HealthStatus.HEALTHY,
        "search",
        __version__,
        {"index_size": catalog.size, "dimension": catalog.dimension},
    )


@get("/info", operation_id="info", summary="Service, index and settings", sync_to_thread=False)
def info(service: Service) -> dict[str, object]:
    """The index's size, dimension, kind, embedding model, version and snapshot file, and the settings."""
    catalog = service.catalog
    index = catalog.index
    return info_body(
        "search",
        service.settings,
        {
            "index": {
                "size": catalog.size,
                "dimension": catalog.dimension,
                "kind": index.kind if index else catalog.kind,
                "compressed": index.compressed if index else False,
                "probe": index.ivf_probe if index and index.compressed else None,
                "tuned_recall": index.tuned_recall if index else None,
                "model": index.model if index else "",
                "version": index.version if index else 0,
                "snapshot": str(catalog.path),
            },
        },
    )


@blocking_route(post, "/search", operation_id="search", summary="Top-k objects per query vector")
def search(data: JSONBody[SearchRequest], service: Service) -> SearchResponse:
    """The `k` nearest objects to each query vector, best first, with their catalogue metadata; `include` also
    scores the named objects whether or not they are among the top `k`. All vectors must have the index's length.
    """
    started = time.perf_counter()
    catalog = service.catalog
    lengths = {len(v) for v in data.vectors}
    if len(lengths) != 1:
        raise InvalidFields("all vectors must have the same length", details={"lengths": sorted(lengths)})
    vectors = np.asarray(data.vectors, dtype=np.float32)
    hits = catalog.search(vectors, data.k)
    scored = catalog.score(vectors, list(data.include))
    # metadata comes with each hit, read with its vector: a concurrent removal cannot leave a hit without it
    results = [[hit_to_wire(h) for h in row] for row in hits]
    elapsed = (time.perf_counter() - started) * 1000
    included = [hit_to_wire(h) for h in scored]
    return SearchResponse(results=results, index_size=catalog.size, processing_time_ms=elapsed, included=included)


def hit_to_wire(hit: Hit) -> SearchHit:
    """A search result as ``POST /search`` answers it."""
    return SearchHit(hit.object_id, hit.score, hit.rank, hit.metadata)


@get("/objects", operation_id="listObjects", summary="A page of catalogue entries", sync_to_thread=False)
def list_objects(
    service: Service,
    offset: Annotated[int, Parameter(ge=0)] = 0,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> ObjectList:
    """Catalogue entries in id order, `limit` of them from `offset`, with the total count."""
    objects, total = service.catalog.page(offset, limit)
    return ObjectList(objects=objects, total=total, offset=offset, limit=limit)


@get("/objects/{object_id:str}", operation_id="getObject", summary="One catalogue entry", sync_to_thread=False)
def get_object(object_id: ObjectIdPath, service: Service) -> ObjectMetadata:
    """One object's catalogue metadata; 404 when the index does not hold it."""
    return service.catalog.get(object_id)


@blocking_route(put, "/objects/{object_id:str}", operation_id="upsertObject", summary="Add or replace an object")
def upsert_object(object_id: ObjectIdPath, data: JSONBody[UpsertRequest], service: Service) -> ObjectMetadata:
    """Add an object's vector and metadata, or replace them; `metadata.object_id` must equal the path's id."""
    if data.metadata.object_id != object_id:
        raise InvalidFields(
            "metadata.object_id must equal the id in the path",
            details={"path": object_id, "metadata": data.metadata.object_id},
        )
    service.catalog.upsert(data.vector, data.metadata)
    return data.metadata


@blocking_route(
    put,
    "/objects/{object_id:str}/metadata",
    operation_id="replaceObjectMetadata",
    summary="Replace an object's metadata",
)
def replace_object_metadata(
    object_id: ObjectIdPath, data: JSONBody[ObjectMetadata], service: Service
) -> ObjectMetadata:
    """Replace an object's catalogue metadata, keeping its vector; `object_id` must equal the path's id; 404 when
    the index does not hold it."""
    if data.object_id != object_id:
        raise InvalidFields(
            "object_id must equal the id in the path", details={"path": object_id, "metadata": data.object_id}
        )
    service.catalog.update_metadata(data)
    return data


@blocking_route(delete, "/objects/{object_id:str}", operation_id="deleteObject", summary="Remove an object")
def delete_object(object_id: ObjectIdPath, service: Service) -> dict[str, str]:
    """Remove an object's vector and metadata."""
    service.catalog.remove(object_id)
    return {"deleted": object_id}


@blocking_route(post, "/snapshot/save", operation_id="saveSnapshot", summary="Write the snapshot now")
def save_snapshot(service: Service) -> dict[str, object]:
    """Write the index to its snapshot file now (it is also saved after every change when autosave is on)."""
    version = service.catalog.save()
    return {"saved": True, "version": version, "size": service.catalog.size}


@blocking_route(
    post, "/snapshot/reload", operation_id="reloadSnapshot", summary="Load a newer snapshot if there is one"
)
def reload_snapshot(service: Service) -> dict[str, object]:
    """Load the snapshot file again when another writer replaced it since it was read."""
    reloaded = service.catalog.reload_if_changed()
    return {"reloaded": reloaded, "size": service.catalog.size}


def create_app(settings: SearchSettings | None = None, *, catalog: LiveIndex | None = None) -> Litestar:
    """Build the search app; ``catalog`` replaces the snapshot-backed one in tests."""
    settings = settings or SearchSettings()
    catalog = catalog or LiveIndex(
        settings.snapshot_file,
        kind=settings.index_kind,
        ivf_lists=settings.ivf_lists,
        ivf_probe=settings.ivf_probe,
        compression={
            "compress_above": settings.compress_above,
            "expected_size": settings.expected_size,
            "recall_target": settings.recall_target,
        },
        autosave=settings.autosave,
    )

    service = SearchState(settings, catalog)
    metrics = ServiceMetrics("search")
    metrics.gauge("search_index_size", "Objects in the index.").set_function(lambda: float(catalog.size))

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(catalog.load)
        interval = settings.reload_interval_s
        async with background(watch_file(catalog.reload_if_changed, interval, "search") if interval else None):
            yield

    return build_app(
        title="artwork-matcher search",
        description="FAISS index of artwork embeddings keyed by object id, with catalogue metadata.",
        version=__version__,
        route_handlers=[
            health,
            info,
            search,
            list_objects,
            get_object,
            upsert_object,
            replace_object_metadata,
            delete_object,
            save_snapshot,
            reload_snapshot,
        ],
        lifespan=[lifespan],
        max_body_bytes=settings.max_body_bytes,
        dependencies={"service": Provide(lambda: service, sync_to_thread=False)},
        metrics=metrics,
    )
