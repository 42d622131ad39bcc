"""Backends die, hang and come back under a running gateway: real processes, real model, a small collection.

Each test breaks one service of this module's own stack and restores it before it ends, so the next test starts
from a healthy stack; the gateway is never restarted.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest

from tests.support import free_port
from tools.cli.local_stack import SERVICES, LocalStack

pytestmark = pytest.mark.integration
T = TypeVar("T")
BREAKER_RESET_S = 1.0


@pytest.fixture(scope="module")
def stack(own_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(
        own_snapshot,
        ports={name: free_port() for name in SERVICES},
        env={
            "GATEWAY_BREAKER_FAILURES": "2",
            "GATEWAY_BREAKER_RESET_S": str(BREAKER_RESET_S),
            "GATEWAY_GEOMETRIC_TIMEOUT_S": "1.0",
            "GATEWAY_RETRIES": "1",
        },
        log_dir=tmp_path_factory.mktemp("fault-logs"),
    )
    with local.running(timeout_s=180):
        yield local


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def query(own_snapshot: Path) -> tuple[str, dict[str, Any]]:
    """A photo of one collection artwork (its reference image) and the JSON body that identifies it."""
    image = sorted((own_snapshot / "images").iterdir())[3]
    return image.stem, {"image": base64.b64encode(image.read_bytes()).decode()}


def identify(client: httpx.Client, stack: LocalStack, body: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post(stack.url("gateway") + "/identify", json=body, headers=headers)


def eventually(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Call ``probe`` until it returns something other than None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = probe()
        if result is not None:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s:g} s: {what}")


def assert_fully_verified(response: httpx.Response, object_id: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] is False, body["degradation_reason"]
    assert body["match"]["object_id"] == object_id
    assert body["match"]["verification_method"] == "geometric"


def test_backends_listen_on_loopback_only(stack: LocalStack) -> None:
    for name in ("embeddings", "search", "geometric"):
        process = psutil.Process(stack.processes[name].pid)
        listening = [c.laddr for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening, f"{name} listens nowhere"
        assert {addr.ip for addr in listening} == {"127.0.0.1"}, f"{name} listens on {listening}"


def test_geometric_killed_answers_from_embeddings_then_recovers(
    stack: LocalStack, client: httpx.Client, query: tuple[str, dict[str, Any]]
) -> None:
    object_id, body = query
    gateway_pid = stack.processes["gateway"].pid
    assert_fully_verified(identify(client, stack, body), object_id)
    stack.stop_service("geometric", kill=True)
    try:
        answers = [identify(client, stack, body) for _ in range(4)]
        for response in answers:
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["degraded"] is True and answer["geometric_skipped"] is True
            assert "geometric" in answer["degradation_reason"]
            assert answer["match"]["object_id"] == object_id
            assert answer["match"]["verification_method"] == "embedding_only"
        assert "circuit is open" in answers[-1].json()["degradation_reason"], "the breaker opened after 2 failures"
        health = client.get(stack.url("gateway") + "/health", params={"check_backends": "true"})
        assert health.status_code == 200 and health.json()["status"] == "degraded"
    finally:
        stack.start_service("geometric")
        stack.wait_healthy(["geometric"], timeout_s=60)

    def verified_again() -> httpx.Response | None:
        response = identify(client, stack, body)
        return response if not response.json()["degraded"] else None

    assert_fully_verified(eventually(verified_again, 10 * BREAKER_RESET_S, "geometric verification is back"), object_id)
    assert stack.processes["gateway"].pid == gateway_pid and not stack.dead()


def test_geometric_hanging_times_out_into_a_degraded_answer(
    stack: LocalStack, client: httpx.Client, query: tuple[str, dict[str, Any]]
) -> None:
    object_id, body = query
    pid = stack.processes["geometric"].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.perf_counter()
        first = identify(client, stack, body)
        took = time.perf_counter() - started
        assert first.status_code == 200 and first.json()["degraded"] is True
        assert "did not answer within 1 s" in first.json()["degradation_reason"]
        assert took < 8.0, f"a hanging geometric held /identify for {took:.1f} s"
        second = identify(client, stack, body)
        started = time.perf_counter()
        fast = identify(client, stack, body)
        assert second.json()["degraded"] and fast.json()["degraded"]
        assert time.perf_counter() - started < 1.0, "the open circuit answers without waiting for the timeout"
    finally:
        os.kill(pid, signal.SIGCONT)

    def verified_again() -> httpx.Response | None:
        response = identify(client, stack, body)
        return response if not response.json()["degraded"] else None

    assert_fully_verified(eventually(verified_again, 10 * BREAKER_RESET_S, "geometric verification is back"), object_id)


@pytest.mark.parametrize("backend", ["embeddings", "search"])
def test_embeddings_or_search_killed_is_503_then_recovers_without_a_gateway_restart(
    stack: LocalStack, client: httpx.Client, query: tuple[str, dict[str, Any]], backend: str
) -> None:
    object_id, body = query
    gateway_pid = stack.processes["gateway"].pid
    stack.stop_service(backend, kill=True)
    try:
        answers = [identify(client, stack, body) for _ in range(3)]
        for response in answers:
            assert response.status_code == 503, response.text
            error = response.json()
            assert set(error) == {"error", "message", "details"}
            assert error["error"] == "backend_unavailable"
            assert error["details"]["backend"] == backend
        assert answers[-1].json()["details"]["circuit"] == "open"
        assert answers[-1].headers["retry-after"] == "1"
        health = client.get(stack.url("gateway") + "/health", params={"check_backends": "true"})
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
    finally:
        stack.start_service(backend)
        stack.wait_healthy([backend], timeout_s=120)

    def answered() -> httpx.Response | None:
        response = identify(client, stack, body)
        return response if response.status_code == 200 else None

    assert_fully_verified(eventually(answered, 10 * BREAKER_RESET_S, f"{backend} is back"), object_id)
    assert stack.processes["gateway"].pid == gateway_pid and not stack.dead()


def test_one_request_id_is_logged_by_every_service_and_every_service_serves_metrics(
    stack: LocalStack, client: httpx.Client, query: tuple[str, dict[str, Any]]
) -> None:
    _, body = query
    response = identify(client, stack, body, **{"X-Request-ID": "fault-trace-0001"})
    assert response.headers["x-request-id"] == "fault-trace-0001"
    assert stack.log_dir is not None
    expected_routes = {
        "gateway": {"/identify"},
        "embeddings": {"/embed"},
        "search": {"/search"},
        "geometric": {"/extract", "/match/batch"},
    }

    def logged_routes(name: str) -> set[str] | None:
        lines = (stack.log_dir / f"{name}.log").read_text(errors="replace").splitlines()  # type: ignore[operator]
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        routes = {e["route"] for e in entries if e.get("request_id") == "fault-trace-0001" and "route" in e}
        return routes if routes >= expected_routes[name] else None

    for name in SERVICES:
        eventually(lambda n=name: logged_routes(n), 5.0, f"{name} logged the request id")  # type: ignore[misc]
        metrics = client.get(stack.url(name) + "/metrics")
        assert metrics.status_code == 200 and "http_requests_total{" in metrics.text
    assert "search_index_size" in client.get(stack.url("search") + "/metrics").text
