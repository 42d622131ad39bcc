"""HTTP plumbing shared by the services: one place mapping errors to responses, and the app builder."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from litestar import Litestar, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import Parameter
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from services.common.errors import ServiceError
from services.common.observability import METRICS_CONTENT_TYPE, ObserveMiddleware, ServiceMetrics
from services.common.schemas import OBJECT_ID_PATTERN

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


def _body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "details": details or {}}


def handle_service_error(request: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    """Our own errors: their status and code."""
    if exc.status >= 500:
        log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.code, exc.message)
    headers = {"Retry-After": str(exc.details["retry_after_s"])} if "retry_after_s" in exc.details else None
    return Response(exc.to_body(), status_code=exc.status, headers=headers)


def handle_validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Framework validation: malformed JSON is a 400, well-formed JSON with wrong fields a 422."""
    errors = exc.extra if isinstance(exc.extra, list) else ([exc.extra] if exc.extra else [])
    text = " ".join(str(e) for e in errors) + " " + str(exc.detail)
    if "malformed" in text.lower() or "json is" in text.lower():
        return Response(_body("bad_request", "the body is not valid JSON", {"errors": errors}), status_code=400)
    return Response(_body("validation_error", "the request fields are invalid", {"errors": errors}), status_code=422)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Framework HTTP errors (404 route, 405 method, 413 body limit, ...) in our shape."""
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error" if status < 500 else "internal_error")
    details = {"errors": exc.extra} if exc.extra else {}
    headers = dict(exc.headers or {})
    return Response(_body(code, str(exc.detail), details), status_code=status, headers=headers or None)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything else is our bug: log it with the traceback, answer a generic 500."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(
        _body("internal_error", "an unexpected error occurred; it has been logged"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


EXCEPTION_HANDLERS: dict[Any, Callable[..., Response[Any]]] = {
    ServiceError: handle_service_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error", "message", "details"],
    properties={
        "error": Schema(type=OpenAPIType.STRING, description="Stable machine-readable code"),
        "message": Schema(type=OpenAPIType.STRING),
        "details": Schema(type=OpenAPIType.OBJECT),
    },
)


ObjectIdPath = Annotated[str, Parameter(pattern=OBJECT_ID_PATTERN)]
"""A path parameter holding an object id: a request with any other id is refused with 400 before the handler."""


def blocking_route(
    method: Callable[..., HTTPRouteHandler], path: str, *, operation_id: str, summary: str
) -> HTTPRouteHandler:
    """A route whose handler blocks (image decoding, the model, FAISS, OpenCV, snapshot writes), so it runs in a
    worker thread, and that answers 200 with its body whatever the method (not Litestar's 201 for a POST or 204 for a
    DELETE).

    Args:
        method: Litestar's ``post``, ``put`` or ``delete``.
        path: the route's path.
        operation_id: the OpenAPI operation's id.
        summary: the operation's one-line summary.
    """
    return method(path, operation_id=operation_id, summary=summary, status_code=200, sync_to_thread=True)


@get("/metrics", operation_id="metrics", summary="Prometheus metrics", include_in_schema=False, sync_to_thread=False)
def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The service's Prometheus metrics in the text exposition format."""
    metrics: ServiceMetrics = request.app.state.metrics
    return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def _is_framework_error(response: dict[str, Any]) -> bool:
    """Litestar documents validation failures in its own body shape; ours is ``ErrorBody``."""
    for media in (response.get("content") or {}).values():
        properties = (media.get("schema") or {}).get("properties") or {}
        if {"status_code", "detail"} <= set(properties):
            return True
    return False


def document_errors(schema: dict[str, Any], extra_schemas: dict[str, Any] | None = None) -> None:
    """Put our error shape into an OpenAPI document: ``ErrorBody`` (and ``extra_schemas``) among the components,
    every framework-shaped error response replaced by it, and a ``default`` response of it on every operation.

    Litestar rebuilds ``components.schemas`` from the route handlers, dropping those given to ``OpenAPIConfig``,
    so this runs on the generated document.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ERROR_SCHEMA.to_schema()
    components.update(extra_schemas or {})
    for path_item in (schema.get("paths") or {}).values():
        for method, operation in path_item.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if _is_framework_error(response):
                    responses[status] = _error_response(response.get("description") or "Invalid request")
            responses["default"] = _error_response("Any error, in the one error shape of every service")


def build_app(
    *,
    title: str,
    description: str,
    version: str,
    route_handlers: Sequence[Any],
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]],
    max_body_bytes: int,
    state: dict[str, Any] | None = None,
    cors: CORSConfig | None = None,
    before_send: Sequence[Callable[..., Any]] = (),
    metrics: ServiceMetrics | None = None,
    openapi_schemas: dict[str, Any] | None = None,
    dependencies: Mapping[str, Provide] | None = None,
    debug: bool = False,
) -> Litestar:
    """A Litestar app with our error mapping, body limit, OpenAPI document at ``/schema``, request ids, access
    logs and Prometheus metrics at ``/metrics`` (``metrics``: the service's own, with its extra metrics).

    ``openapi_schemas``: JSON schemas added to the document's components (for bodies a handler parses itself).
    ``dependencies``: app-wide dependency providers, injected into handlers by parameter name (the service's typed
    state, typically).
    """
    from litestar.datastructures import State

    metrics = metrics or ServiceMetrics(title)

    def finish_openapi(app: Litestar) -> None:
        # the cached dict every schema route renders (the plugin's class is private, so looked up by name)
        document_errors(app.plugins.get("OpenAPIPlugin").provide_openapi_schema(), openapi_schemas)

    app = Litestar(
        route_handlers=[*route_handlers, metrics_endpoint],
        lifespan=list(lifespan),
        on_startup=[finish_openapi],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=max_body_bytes,
        state=State({**(state or {}), "metrics": metrics}),
        dependencies=dict(dependencies or {}),
        cors_config=cors,
        before_send=list(before_send),
        openapi_config=OpenAPIConfig(
            title=title,
            version=version,
            description=description,
        ),
        debug=debug,
        logging_config=None,  # logging is the process's (services.common.runtime), not reconfigured per app
    )
    # Outermost, around Litestar's exception handling and CORS: every request is seen, routed or not.
    app.asgi_handler = ObserveMiddleware(app.asgi_handler, metrics)
    return app
