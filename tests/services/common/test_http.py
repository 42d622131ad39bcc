"""One error mapping for every service: our errors, framework errors and bugs all answer the same body shape."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.testing import TestClient

from services.common import errors
from services.common.http import build_app


class Item(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    count: int = 1


@get("/missing", sync_to_thread=False)
def missing() -> dict[str, str]:
    raise errors.NotFound("object 'x' is not in the collection", details={"object_id": "x"})


@get("/limited", sync_to_thread=False)
def limited() -> dict[str, str]:
    raise errors.RateLimited("slow down", details={"retry_after_s": 7})


@get("/backend", sync_to_thread=False)
def backend() -> dict[str, str]:
    raise errors.BackendUnavailable("search is unreachable", details={"backend": "search"})


@get("/bug", sync_to_thread=False)
def bug() -> dict[str, str]:
    raise RuntimeError("secret internal detail /etc/passwd")


@post("/items", sync_to_thread=False)
def create_item(data: Item) -> Item:
    return data


@contextlib.asynccontextmanager
async def _nothing(app: Litestar) -> AsyncIterator[None]:
    yield


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        # The handler declares its body as the services do (a bare ``data``), which Litestar 2.25 flags for 3.0.
        warnings.filterwarnings("ignore", message=".*Reserved kwarg 'data'", category=DeprecationWarning)
        app = build_app(
            title="test",
            description="error mapping",
            version="0",
            route_handlers=[missing, limited, backend, bug, create_item],
            lifespan=[_nothing],
            max_body_bytes=2048,
        )
    with TestClient(app) as c:
        yield c


def _assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    return body


def test_our_errors_keep_their_status_code_message_and_details(client):
    body = _assert_error(client.get("/missing"), 404, "not_found")

    assert body["message"] == "object 'x' is not in the collection"
    assert body["details"] == {"object_id": "x"}


def test_rate_limit_answers_a_retry_after_header(client):
    response = client.get("/limited")

    _assert_error(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "7"


def test_backend_errors_map_to_5xx_with_their_code(client):
    _assert_error(client.get("/backend"), 503, "backend_unavailable")


def test_unknown_route_is_a_404_in_our_shape(client):
    _assert_error(client.get("/nowhere"), 404, "not_found")


def test_wrong_method_is_a_405_in_our_shape_with_allow_header(client):
    response = client.delete("/items")

    _assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"count": 2}, id="missing-field"),
        pytest.param({"name": "a", "count": "many"}, id="wrong-type"),
        pytest.param({"name": "a", "colour": "red"}, id="unknown-field"),
    ],
)
def test_well_formed_json_with_wrong_fields_is_a_422(client, payload):
    body = _assert_error(client.post("/items", json=payload), 422, "validation_error")

    assert body["details"]["errors"]


def test_malformed_json_is_a_400(client):
    response = client.post("/items", content=b'{"name": ', headers={"content-type": "application/json"})

    _assert_error(response, 400, "bad_request")


def test_a_body_over_the_limit_is_a_413(client):
    response = client.post("/items", json={"name": "x" * 4096})

    _assert_error(response, 413, "payload_too_large")


def test_an_unexpected_exception_is_a_generic_500_that_leaks_nothing(client, caplog):
    with caplog.at_level(logging.ERROR, logger="services.common.http"):
        response = client.get("/bug")

    body = _assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "passwd" not in response.text
    assert body["details"] == {}
    assert any("unhandled error on GET /bug" in r.getMessage() for r in caplog.records)


def test_valid_requests_are_untouched(client):
    response = client.post("/items", json={"name": "a"})

    assert response.status_code == 201
    assert response.json() == {"name": "a", "count": 1}


def test_openapi_documents_errors_in_our_shape(client):
    document = client.get("/schema/openapi.json").json()

    assert document["components"]["schemas"]["ErrorBody"]["required"] == ["error", "message", "details"]
    operation = document["paths"]["/items"]["post"]
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    assert operation["responses"]["default"]["content"]["application/json"]["schema"] == error_ref
    assert operation["responses"]["400"]["content"]["application/json"]["schema"] == error_ref
