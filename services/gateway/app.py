"""The gateway's HTTP layer: public API, catalogue and admin endpoints over the pipeline and collection manager."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from litestar import Litestar, Request, Response, delete, get, post, put
from litestar.config.cors import CORSConfig
from litestar.datastructures import State, UploadFile
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, Parameter

from services.common import errors
from services.common.http import build_app
from services.common.images import decode_base64, decode_image, sniff_media_type
from services.common.observability import ServiceMetrics
from services.common.paths import CALIBRATION_FILE
from services.common.schemas import Health, HealthStatus, IdentifyOptions, IdentifyResponse
from services.common.service import redact
from services.common.version import __version__
from services.gateway.clients import BackendClient, CircuitBreaker, EmbeddingsClient, GeometricClient, SearchClient
from services.gateway.collection import CollectionManager, ImageStore, check_object_id
from services.gateway.decision import DecisionParams
from services.gateway.inputs import metadata_from_form, parse_identify_json, parse_options_form
from services.gateway.openapi import (
    AddObjectOperation,
    IdentifyOperation,
    ReplaceObjectOperation,
    identify_schemas,
)
from services.gateway.pipeline import IdentifyPipeline
from services.gateway.security import RateLimiter, add_security_headers, check_cors, client_address, read_secret
from services.gateway.settings import GatewaySettings
from services.gateway.web import WEB_ROUTES

ObjectIdPath = Annotated[str, Parameter(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


async def _read_image(state: State, data: bytes) -> Any:
    settings: GatewaySettings = state.settings
    return await anyio.to_thread.run_sync(lambda: decode_image(data, max_pixels=settings.max_image_pixels))


async def _form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        items = list((await request.form()).multi_items())
    except Exception as exc:  # the multipart parser raises several types on malformed bodies
        raise errors.BadRequest(f"the multipart body is malformed: {exc}") from exc
    form = dict(items)
    keys = [str(key) for key, _ in items]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise errors.InvalidFields(
            f"form fields given more than once: {', '.join(repeated)}", details={"fields": repeated}
        )
    return form


async def _upload_bytes(form: dict[str, Any]) -> bytes:
    upload = form.get("image")
    if upload is None:
        raise errors.InvalidFields("the form needs a file field 'image'", details={"field": "image"})
    if isinstance(upload, UploadFile):
        return await upload.read()
    if isinstance(upload, str):
        return decode_base64(upload)
    raise errors.InvalidFields("'image' must be a file", details={"field": "image"})


@post(
    "/identify",
    operation_id="identify",
    summary="Identify the artworks in a visitor's photo",
    status_code=200,
    operation_class=IdentifyOperation,
)
async def identify(request: Request[Any, Any, Any], state: State) -> IdentifyResponse:
    settings: GatewaySettings = state.settings
    peer = request.client.host if request.client else None
    try:
        state.limiter.check(client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxy_hops))
    except errors.RateLimited:
        state.rate_limited.inc()
        raise
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        form = await _form(request)
        data, options = await _upload_bytes(form), parse_options_form(form)
    elif content_type.startswith("application/json") or not content_type:
        parsed = parse_identify_json(await request.body())
        data, options = decode_base64(parsed.image), parsed.options
    else:
        raise errors.UnsupportedMediaType(
            f"content type {content_type!r} is not accepted; send application/json or multipart/form-data",
            details={"content_type": content_type},
        )
    image = await _read_image(state, data)
    pipeline: IdentifyPipeline = state.pipeline
    answer = await pipeline.identify(image, options or IdentifyOptions())
    state.answers.labels("degraded" if answer.degraded else ("match" if answer.matches else "no_match")).inc()
    return answer


@get("/health", operation_id="health", summary="Health, optionally rolled up over the backends")
async def health(state: State, check_backends: FromQuery[bool] = False) -> Response[Health]:
    checks: dict[str, Any] = {}
    status = HealthStatus.HEALTHY
    if check_backends:
        names = ("embeddings", "search", "geometric")
        results = await asyncio.gather(*(state.clients[n].health() for n in names), return_exceptions=True)
        for name, result in zip(names, results, strict=True):
            ok = isinstance(result, dict) and result.get("status") == "healthy"
            checks[name] = "healthy" if ok else f"unhealthy: {getattr(result, 'message', result)}"
        if any(not str(checks[n]).startswith("healthy") for n in ("embeddings", "search")):
            status = HealthStatus.UNHEALTHY
        elif not str(checks["geometric"]).startswith("healthy"):
            status = HealthStatus.DEGRADED
    code = 503 if status is HealthStatus.UNHEALTHY else 200
    return Response(Health(status, "gateway", __version__, checks), status_code=code)


@get("/info", operation_id="info", summary="Version, decision parameters and settings (secrets redacted)")
async def info(state: State) -> dict[str, Any]:
    params: DecisionParams = state.pipeline.params
    return {
        "service": "gateway",
        "version": __version__,
        "decision": {
            "threshold": params.threshold,
            "embedding_threshold": params.cut(use_geometric=False),
            "min_inliers": params.min_inliers,
            "fitted_on": params.fitted_on,
        },
        "settings": redact(state.settings, ("api_key",)),
    }


def _public(meta: Any) -> dict[str, Any]:
    return {
        "object_id": meta.object_id,
        "name": meta.title,
        "artist": meta.artist,
        "year": meta.date,
        "room": meta.room,
        "extra": meta.extra,
        "image_url": f"/objects/{meta.object_id}/image",
    }


@get("/objects", operation_id="listObjects", summary="A page of the collection's artworks")
async def list_objects(
    state: State,
    offset: Annotated[int, Parameter(ge=0)] = 0,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = await state.clients["search"].page(offset, limit)
    return {"objects": [_public(m) for m in page.objects], "total": page.total, "offset": offset, "limit": limit}


@get("/objects/{object_id:str}", operation_id="getObject", summary="One artwork's catalogue entry")
async def get_object(object_id: ObjectIdPath, state: State) -> dict[str, Any]:
    return _public(await state.clients["search"].get(check_object_id(object_id)))


@get(
    "/objects/{object_id:str}/image",
    operation_id="getObjectImage",
    summary="One artwork's reference image",
    media_type="image/jpeg",
)
async def get_object_image(object_id: ObjectIdPath, state: State) -> Response[bytes]:
    # Read whole (reference images are small): a file deleted by a concurrent admin call is a clean 404, never a
    # response whose body stops short.
    data = await anyio.to_thread.run_sync(state.images.read, check_object_id(object_id))
    if data is None:
        raise errors.NotFound(f"no image for object {object_id!r}", details={"object_id": object_id})
    return Response(data, media_type=sniff_media_type(data), headers={"Content-Disposition": "inline"})


async def _put_object(
    request: Request[Any, Any, Any], state: State, object_id: str | None, must_be_new: bool
) -> Response[dict[str, Any]]:
    _check_admin(request, state)
    form = await _form(request)
    object_id = check_object_id(object_id or str(form.get("object_id") or ""))
    data = await _upload_bytes(form)
    image = await _read_image(state, data)
    metadata = metadata_from_form(form, object_id)
    manager: CollectionManager = state.collection
    stored, created = await manager.put(metadata, image, data, must_be_new=must_be_new)
    return Response(_public(stored), status_code=201 if created else 200)


def _check_admin(request: Request[Any, Any, Any], state: State) -> None:
    key = state.api_key
    if key is None:
        raise errors.Forbidden("admin endpoints are disabled: set GATEWAY_API_KEY to enable them")
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), key.get_secret_value().encode()):
        raise errors.Unauthorized("a valid X-API-Key header is required")


@post(
    "/objects",
    operation_id="addObject",
    summary="Add an artwork (multipart: image file + catalogue fields)",
    operation_class=AddObjectOperation,
)
async def add_object(request: Request[Any, Any, Any], state: State) -> Response[dict[str, Any]]:
    return await _put_object(request, state, None, must_be_new=True)


@put(
    "/objects/{object_id:str}",
    operation_id="replaceObject",
    summary="Add or replace an artwork",
    operation_class=ReplaceObjectOperation,
    responses={201: ResponseSpec(data_container=dict[str, Any], description="The artwork was added")},
)
async def replace_object(
    object_id: ObjectIdPath, request: Request[Any, Any, Any], state: State
) -> Response[dict[str, Any]]:
    return await _put_object(request, state, object_id, must_be_new=False)


@delete("/objects/{object_id:str}", operation_id="deleteObject", summary="Remove an artwork", status_code=200)
async def delete_object(object_id: ObjectIdPath, request: Request[Any, Any, Any], state: State) -> dict[str, str]:
    _check_admin(request, state)
    await state.collection.delete(check_object_id(object_id))
    return {"deleted": object_id}


def _circuit_reading(client: BackendClient) -> Callable[[], float]:
    return lambda: float(client.breaker.state != "closed")


def create_app(
    settings: GatewaySettings | None = None,
    *,
    embeddings: EmbeddingsClient | None = None,
    search: SearchClient | None = None,
    geometric: GeometricClient | None = None,
    params: DecisionParams | None = None,
) -> Litestar:
    """Build the gateway; the backend clients and decision parameters are the test seams.

    Raises:
        ConfigurationError: CORS settings that would expose visitors, or an unusable admin key file.
    """
    settings = settings or GatewaySettings()
    check_cors(settings.cors_origins, settings.cors_allow_credentials)
    api_key = read_secret(settings.api_key, settings.api_key_file, "GATEWAY_API_KEY")

    def breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(name, failures=settings.breaker_failures, reset_s=settings.breaker_reset_s)

    embeddings_client = embeddings or EmbeddingsClient(
        settings.embeddings_url,
        timeout_s=settings.embeddings_timeout_s,
        retries=settings.retries,
        breaker=breaker("embeddings"),
    )
    search_client = search or SearchClient(
        settings.search_url, timeout_s=settings.search_timeout_s, retries=settings.retries, breaker=breaker("search")
    )
    geometric_client = geometric or GeometricClient(
        settings.geometric_url,
        timeout_s=settings.geometric_timeout_s,
        retries=settings.retries,
        breaker=breaker("geometric"),
    )
    clients: dict[str, BackendClient] = {
        "embeddings": embeddings_client,
        "search": search_client,
        "geometric": geometric_client,
    }
    decision = params or DecisionParams.load_or_default(settings.snapshot_dir / CALIBRATION_FILE)
    images = ImageStore(settings.reference_images_dir)
    pipeline = IdentifyPipeline(
        embeddings_client,
        search_client,
        geometric_client,
        decision,
        query_max_side=settings.query_max_side,
        default_k=settings.default_k,
        fine_candidates=settings.fine_candidates,
        shortlist=settings.shortlist,
    )
    collection = CollectionManager(embeddings_client, search_client, geometric_client, images)
    metrics = ServiceMetrics("gateway")
    circuit = metrics.gauge("gateway_circuit_open", "1 while a backend's circuit is open or half-open.", ["backend"])
    for name, client in clients.items():
        circuit.labels(name).set_function(_circuit_reading(client))

    made = (embeddings_client, search_client, geometric_client)
    owned = [client for client, given in zip(made, (embeddings, search, geometric), strict=True) if given is None]

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for client in owned:  # clients passed in belong to the caller
                await client.aclose()

    cors = (
        CORSConfig(allow_origins=settings.cors_origins, allow_credentials=settings.cors_allow_credentials)
        if settings.cors_origins
        else None
    )
    return build_app(
        title="artwork-matcher",
        description="Identify artworks of a museum's collection from visitors' photos.",
        version=__version__,
        route_handlers=[
            identify,
            health,
            info,
            list_objects,
            get_object,
            get_object_image,
            add_object,
            replace_object,
            delete_object,
            *WEB_ROUTES,
        ],
        lifespan=[lifespan],
        max_body_bytes=settings.max_body_bytes,
        state={
            "settings": settings,
            "clients": clients,
            "pipeline": pipeline,
            "collection": collection,
            "images": images,
            "api_key": api_key,
            "limiter": RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
            "rate_limited": metrics.counter("gateway_rate_limited", "/identify requests refused with 429."),
            "answers": metrics.counter("gateway_identify_answers", "/identify answers by outcome.", ["outcome"]),
        },
        metrics=metrics,
        cors=cors,
        before_send=[add_security_headers],
        openapi_schemas=identify_schemas(),
    )
