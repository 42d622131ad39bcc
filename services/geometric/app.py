"""The geometric service's HTTP layer: extract query features, verify them against stored references."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TypeAlias

import anyio
import msgspec
import numpy as np
from litestar import Litestar, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from prometheus_client import Gauge

from services.collection.features import FeatureSet
from services.common.errors import InvalidFields, NotFound, NotReady
from services.common.http import ObjectIdPath, blocking_route, build_app
from services.common.images import decode_base64, decode_image, to_array
from services.common.observability import ServiceMetrics
from services.common.schemas import (
    ExtractRequest,
    ExtractResponse,
    Features,
    Health,
    HealthStatus,
    MatchBatchRequest,
    MatchBatchResponse,
    MatchPaintingsRequest,
    MatchPaintingsResponse,
    MatchRequest,
    MatchResult,
    PaintingMatches,
    ReferenceInfo,
    ReferenceRequest,
    ShortlistVote,
)
from services.common.service import background, info_body, watch_file
from services.common.version import __version__
from services.geometric.localise import locate_paintings
from services.geometric.paintings import look_at_each
from services.geometric.references import References
from services.geometric.settings import GeometricSettings
from services.geometric.verify import extract_features
from services.geometric.wire import (
    corners_from_wire,
    features_from_wire,
    features_to_wire,
    painting_to_wire,
    result_to_wire,
)

STATE_KEY = "service"
"""Name of the :class:`GeometricState` on the app's state while it runs, and of the handlers' parameter."""


@dataclass(frozen=True)
class GeometricState:
    """What the geometric handlers use, for one run of the app."""

    settings: GeometricSettings
    references: References


def _pixels(service: GeometricState, image_b64: str) -> np.ndarray:
    settings = service.settings
    return to_array(decode_image(decode_base64(image_b64), max_pixels=settings.max_image_pixels))


def _query_features(service: GeometricState, pixels: np.ndarray, *, fine: bool) -> tuple[FeatureSet, FeatureSet | None]:
    """A query image's standard features and, with ``fine``, its finer set, from one decoding."""
    params = service.references.params
    return extract_features(pixels, params), extract_features(pixels, params, fine=True) if fine else None


def _query(
    service: GeometricState,
    query: Features | None,
    image: str | None,
    *,
    fine_query: Features | None = None,
    fine: bool = False,
) -> tuple[FeatureSet, FeatureSet | None]:
    """The query's features, sent or extracted from the sent image, and its finer set when sent or ``fine``."""
    if (query is None) == (image is None):
        raise InvalidFields("send exactly one of 'query' (features) or 'image'", details={"fields": ["query", "image"]})
    max_keypoints = service.settings.max_keypoints
    finer = features_from_wire(fine_query, max_keypoints=max_keypoints) if fine_query is not None else None
    if query is not None:
        return features_from_wire(query, max_keypoints=max_keypoints), finer
    standard, extracted = _query_features(service, _pixels(service, image or ""), fine=fine and finer is None)
    return standard, finer or extracted


Service: TypeAlias = NamedDependency[GeometricState]
"""A handler parameter ``service: Service`` receives the app's :class:`GeometricState`."""


@get("/health", operation_id="health", summary="Liveness and reference count", sync_to_thread=False)
def health(service: Service) -> Health:
    """Healthy while the service runs; reports how many references have stored features."""
    return Health(HealthStatus.HEALTHY, "geometric", __version__, {"references": len(service.references.store)})


@get("/info", operation_id="info", summary="Verification parameters and settings", sync_to_thread=False)
def info(service: Service) -> dict[str, object]:
    """The verification parameters in force, the extractor stamp the stored features must carry, the vote index and
    the settings.
    """
    refs = service.references
    return info_body(
        "geometric",
        service.settings,
        {
            "references": len(refs.store),
            "vote_index": {"kind": refs.votes.kind, "descriptors": refs.votes.descriptors},
            "extractor": refs.params.extractor_stamp(),
            "params": {k: getattr(refs.params, k) for k in refs.params.__dataclass_fields__},
        },
    )


@blocking_route(
    post,
    "/extract",
    operation_id="extract",
    summary="Local features of an image, the references they vote for, and the paintings located in it",
)
def extract(data: JSONBody[ExtractRequest], service: Service) -> ExtractResponse:
    """Local features of a base64 image (with `fine`, also its finer set), with `shortlist` the stored references
    its descriptors vote for most, best first, and with `paintings` the framed paintings located in it.
    """
    started = time.perf_counter()
    pixels = _pixels(service, data.image)
    features, fine = _query_features(service, pixels, fine=data.fine)
    wired_fine = features_to_wire(fine) if fine is not None else None
    votes = service.references.shortlist(features, data.shortlist) if data.shortlist else []
    shortlist = [ShortlistVote(v.object_id, v.votes) for v in votes]
    located = [painting_to_wire(q) for q in locate_paintings(pixels)] if data.paintings else []
    elapsed = (time.perf_counter() - started) * 1000
    return ExtractResponse(features_to_wire(features), elapsed, wired_fine, shortlist, located)


@blocking_route(post, "/match", operation_id="match", summary="Verify the query against one stored reference")
def match(data: JSONBody[MatchRequest], service: Service) -> MatchResult:
    """Verify one query (its features, or an image to extract them from) against one stored reference: the
    homography's inliers and whether it counts as verified.
    """
    query, _ = _query(service, data.query, data.image)
    [(object_id, result)] = service.references.verify(query, [data.reference_id])
    return result_to_wire(object_id, result)


@blocking_route(
    post, "/match/batch", operation_id="matchBatch", summary="Verify the query against several stored references"
)
def match_batch(data: JSONBody[MatchBatchRequest], service: Service) -> MatchBatchResponse:
    """Verify one query against several stored references in one call, each answered as by `match`; each of the
    first `fine_first` references that does not verify is tried again against the query's finer features.
    """
    started = time.perf_counter()
    query, fine = _query(service, data.query, data.image, fine_query=data.fine_query, fine=data.fine_first > 0)
    verified = service.references.verify(query, list(data.reference_ids), fine=fine, fine_first=data.fine_first)
    results = [result_to_wire(i, r) for i, r in verified]
    return MatchBatchResponse(results, (time.perf_counter() - started) * 1000)


@blocking_route(
    post,
    "/match/paintings",
    operation_id="matchPaintings",
    summary="Rectify located paintings and verify each against the references its own features vote for",
)
def match_paintings(data: JSONBody[MatchPaintingsRequest], service: Service) -> MatchPaintingsResponse:
    """Look closer at located paintings of a base64 photo: each is rectified at a higher resolution than the whole
    photo is described at, its descriptors vote over the collection, and its `shortlist` most-voted references plus
    its `reference_ids` are verified against it; homographies and boxes are given in the photo.
    """
    started = time.perf_counter()
    asked = [
        (corners_from_wire(p.corners, field=f"paintings[{i}].corners"), list(p.reference_ids))
        for i, p in enumerate(data.paintings)
    ]
    looks = look_at_each(service.references, _pixels(service, data.image), asked, data.shortlist)
    answers = []
    for index, look in enumerate(looks):
        results = [msgspec.structs.replace(result_to_wire(i, r), painting=index) for i, r in look.results]
        shortlist = [ShortlistVote(v.object_id, v.votes) for v in look.votes]
        answers.append(PaintingMatches(look.keypoints, shortlist, results))
    return MatchPaintingsResponse(answers, (time.perf_counter() - started) * 1000)


@get(
    "/references/{object_id:str}",
    operation_id="getReference",
    summary="A stored reference's feature count",
    sync_to_thread=False,
)
def get_reference(object_id: ObjectIdPath, service: Service) -> ReferenceInfo:
    """How many keypoints are stored for a reference; 404 when it has none."""
    features = service.references.store.get(object_id)
    if features is None:
        raise NotFound(f"no reference features for {object_id!r}", details={"object_id": object_id})
    return ReferenceInfo(object_id, len(features.keypoints))


@blocking_route(
    put,
    "/references/{object_id:str}",
    operation_id="putReference",
    summary="Extract and store a reference's features from its image",
)
def put_reference(object_id: ObjectIdPath, data: JSONBody[ReferenceRequest], service: Service) -> ReferenceInfo:
    """Extract a reference's features from its base64 image and store them (replacing any), saved at once."""
    features = extract_features(_pixels(service, data.image), service.references.params, reference=True)
    service.references.put(object_id, features)
    return ReferenceInfo(object_id, len(features.keypoints))


@blocking_route(
    delete, "/references/{object_id:str}", operation_id="deleteReference", summary="Drop a reference's features"
)
def delete_reference(object_id: ObjectIdPath, service: Service) -> dict[str, str]:
    """Forget a reference's features, saved at once; 404 when it had none."""
    if not service.references.remove(object_id):
        raise NotFound(f"no reference features for {object_id!r}", details={"object_id": object_id})
    return {"deleted": object_id}


def create_app(settings: GeometricSettings | None = None, *, references: References | None = None) -> Litestar:
    """Build the geometric app; ``references`` replaces the file-backed store in tests (and stays the caller's:
    it is neither closed nor replaced at shutdown)."""
    settings = settings or GeometricSettings()
    metrics = ServiceMetrics("geometric")
    count = metrics.gauge("geometric_references", "References with stored features.")
    return build_app(
        title="artwork-matcher geometric",
        description=(
            "RootSIFT local features (after CLAHE), a shortlist by descriptor votes over the whole collection, and "
            "homography verification (ratio test + MAGSAC++) against references."
        ),
        version=__version__,
        route_handlers=[
            health,
            info,
            extract,
            match,
            match_batch,
            match_paintings,
            get_reference,
            put_reference,
            delete_reference,
        ],
        lifespan=[_lifespan(settings, references, count)],
        max_body_bytes=settings.max_body_bytes,
        dependencies={STATE_KEY: Provide(_provide_state, sync_to_thread=False)},
        metrics=metrics,
    )


def _lifespan(
    settings: GeometricSettings, given: References | None, count: Gauge
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the references (made here unless given, with their verification threads, and closed
    here, also when start-up fails), loaded off the event loop, watched for newer files by replicas."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            refs = given
            if refs is None:
                refs = References(
                    settings.features_file,
                    autosave=settings.autosave,
                    threads=settings.verify_threads,
                    vote_max_descriptors=settings.vote_max_descriptors,
                )
                stack.push_async_callback(anyio.to_thread.run_sync, refs.close)
            loaded = refs
            count.set_function(lambda: float(len(loaded.store)))
            await anyio.to_thread.run_sync(refs.load)
            app.state[STATE_KEY] = GeometricState(settings, refs)
            stack.callback(app.state.pop, STATE_KEY, None)
            interval = settings.reload_interval_s
            async with background(watch_file(refs.reload_if_changed, interval, "features") if interval else None):
                yield

    return lifespan


def _provide_state(state: State) -> GeometricState:
    """Dependency provider: the running app's :class:`GeometricState`.

    Raises:
        NotReady: the app's lifespan has not started, or has ended.
    """
    service = state.get(STATE_KEY)
    if not isinstance(service, GeometricState):
        raise NotReady("the geometric service is not running: its lifespan has not started")
    return service
