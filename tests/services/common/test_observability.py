"""Request ids, access logs and Prometheus metrics, the same for every service via build_app."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from litestar import Litestar, get
from litestar.params import PathParameter
from litestar.testing import TestClient

from services.common import errors
from services.common.http import build_app
from services.common.observability import accept_request_id
from services.common.runtime import configure_logging


@get("/items/{name:str}", sync_to_thread=False)
def item(name: Annotated[str, PathParameter()]) -> dict[str, str]:
    if name == "missing":
        raise errors.NotFound("no such item")
    logging.getLogger("tests.handler").info("serving %s", name)
    return {"name": name}


@contextlib.asynccontextmanager
async def _nothing(app: Litestar) -> AsyncIterator[None]:
    yield


@pytest.fixture
def client():
    app = build_app(
        title="test",
        description="observability",
        version="0",
        route_handlers=[item],
        lifespan=[_nothing],
        max_body_bytes=2048,
    )
    with TestClient(app) as c:
        yield c


def test_a_well_formed_request_id_is_echoed_and_others_are_replaced(client):
    assert client.get("/items/a", headers={"X-Request-ID": "trace-42.a:b"}).headers["x-request-id"] == "trace-42.a:b"
    for bad in ("", "x" * 129, "a b", "evil\tline", "{json}"):
        replaced = client.get("/items/a", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert replaced != bad and len(replaced) == 32
    assert client.get("/no/route").headers["x-request-id"]
    assert accept_request_id(None) != accept_request_id(None)


def test_metrics_count_requests_by_route_template_and_status(client):
    client.get("/items/a")
    client.get("/items/b")
    client.get("/items/missing")
    client.get("/no/such/route")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'http_requests_total{method="GET",route="/items/{name}",status="200"} 2.0' in text
    assert 'http_requests_total{method="GET",route="/items/{name}",status="404"} 1.0' in text
    assert 'http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'http_request_duration_seconds_count{method="GET",route="/items/{name}"} 3.0' in text
    assert "/metrics" not in client.get("/schema/openapi.json").text


def test_apps_keep_their_metrics_apart():
    apps = [
        build_app(title=f"app{i}", description="", version="0", route_handlers=[item], lifespan=[], max_body_bytes=2048)
        for i in range(2)
    ]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        first.get("/items/a")
        assert 'route="/items/{name}"' not in second.get("/metrics").text


def test_json_logs_carry_one_access_line_per_request_with_its_id(client, capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", "unit")
        client.get("/items/a", headers={"X-Request-ID": "req-7"})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    access = [line for line in lines if line["logger"] == "services.access"]
    assert len(access) == 1
    entry = access[0]
    assert entry["service"] == "unit" and entry["level"] == "INFO" and entry["time"]
    assert (entry["method"], entry["path"], entry["route"]) == ("GET", "/items/a", "/items/{name}")
    assert entry["status"] == 200
    assert entry["request_id"] == "req-7" and entry["duration_ms"] >= 0
    handler = [line for line in lines if line["logger"] == "tests.handler"]
    assert handler and handler[0]["request_id"] == "req-7", "records logged while handling carry the id"
