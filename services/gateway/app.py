"""The gateway's HTTP layer: public API, catalogue and admin endpoints over the pipeline and collection manager."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Annotated, Any

import anyio
from litestar import Litestar, Request, Response, delete, get, patch, post, put
from litestar.config.cors import CORSConfig
from litestar.datastructures import UploadFile
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, JSONBody, Parameter
from pydantic import SecretStr

from services.collection.images import check_object_id
from services.collection.report_file import CollectionReport, ReportFileError, read_report
from services.common import errors
from services.common.http import ObjectIdPath, build_app
from services.common.images import decode_base64, decode_image, sniff_media_type
from services.common.schemas import CatalogueUpdate, Health, HealthStatus, IdentifyOptions, IdentifyResponse
from services.common.service import info_body
from services.common.version import __version__
from services.decision.duplicates import NearDuplicates
from services.decision.rule import DecisionParams
from services.decision.stored import load_params
from services.gateway.clients import EmbeddingsClient, GeometricClient, SearchClient
from services.gateway.collection import check_embedding_model
from services.gateway.inputs import metadata_from_form, parse_identify_json, parse_options_form
from services.gateway.openapi import (
    AddObjectOperation,
    IdentifyOperation,
    ReplaceObjectOperation,
    identify_schemas,
)
from services.gateway.security import add_security_headers, check_cors, client_address, read_secret
from services.gateway.settings import GatewaySettings
from services.gateway.state import (
    STATE_KEY,
    Gateway,
    GatewayMetrics,
    GivenClients,
    admin_guard,
    open_gateway,
    provide_gateway,
)
from services.gateway.web import WEB_ROUTES

log = logging.getLogger(__name__)


async def _read_image(settings: GatewaySettings, data: bytes, *, max_side: int | None = None) -> Any:
    return await anyio.to_thread.run_sync(
        lambda: decode_image(data, max_pixels=settings.max_image_pixels, max_side=max_side)
    )


async def _form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        items = list((await request.form()).multi_items())
    except HTTPException as exc:
        if exc.status_code == 413:  # the body limit, reached while the parser streamed the body
            limit = request.route_handler.resolve_request_max_body_size()
            raise errors.PayloadTooLarge(
                f"the request body is larger than the limit of {limit} bytes", details={"max_body_bytes": limit}
            ) from exc
        raise errors.BadRequest(f"the multipart body is malformed: {exc.detail}") from exc
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
async def identify(request: Request[Any, Any, Any], gateway: Gateway) -> IdentifyResponse:
    """Identify the artworks in a visitor's photo: shortlist by embedding, verify by local features, decide with
    the calibrated threshold.

    The photo comes as JSON (`image` in base64, with optional `options`) or as a multipart upload (`image` file
    and option fields). An answer without matches is a valid answer; a backend that does not respond makes it
    `degraded`. Each client address is rate limited (429) and work beyond the gateway's capacity is refused (503).
    """
    settings = gateway.settings
    peer = request.client.host if request.client else None
    try:
        gateway.limiter.check(client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxy_hops))
    except errors.RateLimited:
        gateway.metrics.rate_limited.inc()
        raise
    with gateway.admission.admit():
        return await _identify(request, gateway)


async def _identify(request: Request[Any, Any, Any], gateway: Gateway) -> IdentifyResponse:
    """Read the photo and its options, identify, count the answer."""
    settings = gateway.settings
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
    # the pipeline sees the photo at query_max_side at most: a larger JPEG need not be decoded whole
    image = await _read_image(settings, data, max_side=settings.query_max_side)
    answer = await gateway.pipeline.identify(image, options or IdentifyOptions())
    gateway.metrics.answers.labels("degraded" if answer.degraded else ("match" if answer.matches else "no_match")).inc()
    return answer


@get("/health", operation_id="health", summary="Health, optionally rolled up over the backends")
async def health(gateway: Gateway, check_backends: FromQuery[bool] = False) -> Response[Health]:
    """The gateway's health; with `check_backends`, rolled up over the backends: unhealthy (503) when embeddings or
    search fail, degraded when only geometric verification does.
    """
    checks: dict[str, Any] = {}
    status = HealthStatus.HEALTHY
    if check_backends:
        names = ("embeddings", "search", "geometric")
        results = await asyncio.gather(*(gateway.clients[n].health() for n in names), return_exceptions=True)
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
async def info(gateway: Gateway) -> dict[str, Any]:
    """The version, the decision parameters in force (threshold, embedding-only threshold, minimum inliers, what
    they were fitted on) and the settings, with the admin key redacted.
    """
    params: DecisionParams = gateway.pipeline.params
    return info_body(
        "gateway",
        gateway.settings,
        {
            "decision": {
                "threshold": params.threshold,
                "embedding_threshold": params.cut(use_geometric=False),
                "min_inliers": params.min_inliers,
                "fitted_on": params.fitted_on,
            },
        },
        ("api_key",),
    )


def _public(meta: Any) -> dict[str, Any]:
    return {
        "object_id": meta.object_id,
        "name": meta.title,
        "artist": meta.artist,
        "year": meta.date,
        "room": meta.room,
        "description": meta.description,
        "link": meta.link,
        "extra": meta.extra,
        "image_url": f"/objects/{meta.object_id}/image",
    }


@get("/objects", operation_id="listObjects", summary="A page of the collection's artworks")
async def list_objects(
    gateway: Gateway,
    offset: Annotated[int, Parameter(ge=0)] = 0,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of the collection's artworks in id order, as visitors see them, with the total count."""
    page = await gateway.search.page(offset, limit)
    return {"objects": [_public(m) for m in page.objects], "total": page.total, "offset": offset, "limit": limit}


@get("/objects/{object_id:str}", operation_id="getObject", summary="One artwork's catalogue entry")
async def get_object(object_id: ObjectIdPath, gateway: Gateway) -> dict[str, Any]:
    """One artwork's catalogue entry as visitors see it; 404 when the collection does not hold it."""
    return _public(await gateway.search.get(check_object_id(object_id)))


@get(
    "/objects/{object_id:str}/image",
    operation_id="getObjectImage",
    summary="One artwork's reference image",
    media_type="image/jpeg",
)
async def get_object_image(object_id: ObjectIdPath, gateway: Gateway) -> Response[bytes]:
    """One artwork's reference image, served inline with its own media type; 404 when there is none."""
    # Read whole (reference images are small): a file deleted by a concurrent admin call is a clean 404, never a
    # response whose body stops short.
    data = await anyio.to_thread.run_sync(gateway.images.read, check_object_id(object_id))
    if data is None:
        raise errors.NotFound(f"no image for object {object_id!r}", details={"object_id": object_id})
    return Response(data, media_type=sniff_media_type(data), headers={"Content-Disposition": "inline"})


async def _put_object(
    request: Request[Any, Any, Any], gateway: Gateway, object_id: str | None, must_be_new: bool
) -> Response[dict[str, Any]]:
    form = await _form(request)
    object_id = check_object_id(object_id or str(form.get("object_id") or ""))
    data = await _upload_bytes(form)
    image = await _read_image(gateway.settings, data)
    metadata = metadata_from_form(form, object_id)
    stored, created = await gateway.collection.put(metadata, image, data, must_be_new=must_be_new)
    return Response(_public(stored), status_code=201 if created else 200)


@post(
    "/objects",
    operation_id="addObject",
    guards=[admin_guard],
    summary="Add an artwork (multipart: image file + catalogue fields)",
    operation_class=AddObjectOperation,
)
async def add_object(request: Request[Any, Any, Any], gateway: Gateway) -> Response[dict[str, Any]]:
    """Add an artwork from a multipart form (image file, `object_id` and catalogue fields): its image is stored,
    embedded and its features extracted. Needs the admin key; 409 when the id is taken.
    """
    return await _put_object(request, gateway, None, must_be_new=True)


@put(
    "/objects/{object_id:str}",
    operation_id="replaceObject",
    guards=[admin_guard],
    summary="Add or replace an artwork",
    operation_class=ReplaceObjectOperation,
    responses={201: ResponseSpec(data_container=dict[str, Any], description="The artwork was added")},
)
async def replace_object(
    object_id: ObjectIdPath, request: Request[Any, Any, Any], gateway: Gateway
) -> Response[dict[str, Any]]:
    """Add the artwork under this id, or replace its image and catalogue fields (201 when added, 200 when
    replaced). Needs the admin key.
    """
    return await _put_object(request, gateway, object_id, must_be_new=False)


@patch(
    "/objects/{object_id:str}",
    operation_id="updateObject",
    summary="Change an artwork's catalogue fields (its image, vector and features are kept)",
    guards=[admin_guard],
)
async def update_object(object_id: ObjectIdPath, data: JSONBody[CatalogueUpdate], gateway: Gateway) -> dict[str, Any]:
    """Change the catalogue fields given in the JSON body (``title``, ``artist``, ``date``, ``room``,
    ``description``, ``link``); the others are kept, and nothing is embedded again. 404 for an unknown artwork."""
    return _public(await gateway.collection.update(check_object_id(object_id), data))


@delete(
    "/objects/{object_id:str}",
    operation_id="deleteObject",
    summary="Remove an artwork",
    status_code=200,
    guards=[admin_guard],
)
async def delete_object(object_id: ObjectIdPath, gateway: Gateway) -> dict[str, str]:
    """Remove an artwork: its vector, features and reference image. Needs the admin key."""
    await gateway.collection.delete(check_object_id(object_id))
    return {"deleted": object_id}


@get(
    "/collection/report",
    operation_id="getCollectionReport",
    guards=[admin_guard],
    summary="The last collection report (artwork-matcher index doctor) of the served snapshot",
)
async def collection_report(gateway: Gateway) -> CollectionReport:
    """The snapshot's ``report.json`` as ``index doctor`` saved it; 404 ``not_found`` (``details.reason``
    ``missing`` or ``unreadable``) when there is none to serve."""
    try:
        report = await anyio.to_thread.run_sync(read_report, gateway.settings.snapshot_dir)
    except ReportFileError as exc:
        raise errors.NotFound(str(exc), details={"reason": "unreadable"}) from exc
    if report is None:
        raise errors.NotFound(
            "no collection report yet: run `artwork-matcher index doctor` on the snapshot",
            details={"reason": "missing"},
        )
    return report


PUBLIC_ROUTES = (identify, health, info, list_objects, get_object, get_object_image, *WEB_ROUTES)
"""Routes anyone may call."""

ADMIN_ROUTES = (add_object, replace_object, update_object, delete_object, collection_report)
"""Routes that change the collection, and the curators' collection report: each carries :func:`admin_guard` (the
admin key)."""


def create_app(
    settings: GatewaySettings | None = None,
    *,
    embeddings: EmbeddingsClient | None = None,
    search: SearchClient | None = None,
    geometric: GeometricClient | None = None,
    params: DecisionParams | None = None,
    near_duplicates: NearDuplicates | None = None,
) -> Litestar:
    """Build the gateway; the backend clients, decision parameters and near-duplicate pairs are the test seams.

    The decision parameters come from the snapshot's ``decision.json``, the near-duplicate pairs from its
    ``report.json`` (:func:`load_near_duplicates`), both read once here.

    Clients passed in belong to the caller; those the gateway makes are opened and closed by each run's lifespan.

    Raises:
        ConfigurationError: CORS settings that would expose visitors, or an unusable admin key file.
    """
    settings = settings or GatewaySettings()
    check_cors(settings.cors_origins, settings.cors_allow_credentials)
    api_key = read_secret(settings.api_key, settings.api_key_file, "GATEWAY_API_KEY")
    decision = params or load_params(settings.snapshot_dir)
    pairs = load_near_duplicates(settings.snapshot_dir) if near_duplicates is None else near_duplicates
    metrics = GatewayMetrics.create()
    backends = GivenClients(embeddings=embeddings, search=search, geometric=geometric, near_duplicates=pairs)
    return build_app(
        title="artwork-matcher",
        description="Identify artworks of a museum's collection from visitors' photos.",
        version=__version__,
        route_handlers=[*PUBLIC_ROUTES, *ADMIN_ROUTES],
        lifespan=[_lifespan(settings, api_key, decision, metrics, backends)],
        max_body_bytes=settings.max_body_bytes,
        dependencies={STATE_KEY: Provide(provide_gateway, sync_to_thread=False)},
        metrics=metrics.registry,
        cors=_cors(settings),
        before_send=[add_security_headers],
        openapi_schemas=identify_schemas(),
    )


def load_near_duplicates(snapshot: Path) -> NearDuplicates:
    """The near-duplicate pairs of the snapshot's collection report; none when it has no report, or an unreadable
    one (logged: ``/collection/report`` says why, and ``/identify`` answers as without pairs)."""
    try:
        report = read_report(snapshot)
    except ReportFileError as exc:
        log.warning("near-duplicate pairs not read: %s", exc)
        return {}
    return report.near_duplicate_partners() if report is not None else {}


def _lifespan(
    settings: GatewaySettings,
    api_key: SecretStr | None,
    params: DecisionParams,
    metrics: GatewayMetrics,
    backends: GivenClients,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan: opens the :class:`GatewayState` for the run, puts it on the app's state, and closes it
    (the clients it made) at shutdown or when start-up fails."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_gateway(settings, api_key=api_key, params=params, metrics=metrics, given=backends) as gateway:
            await check_embedding_model(gateway.embeddings, settings.snapshot_dir)
            app.state[STATE_KEY] = gateway
            try:
                yield
            finally:
                app.state.pop(STATE_KEY, None)

    return lifespan


def _cors(settings: GatewaySettings) -> CORSConfig | None:
    """Browser cross-origin access as configured; None (same origin only) when no origin is listed."""
    if not settings.cors_origins:
        return None
    return CORSConfig(allow_origins=settings.cors_origins, allow_credentials=settings.cors_allow_credentials)
