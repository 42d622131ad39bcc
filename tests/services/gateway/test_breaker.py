"""Circuit breakers of the backend clients: open on backend failures only, fail fast, probe, recover."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from litestar.testing import TestClient

from services.common import errors
from services.decision.rule import DecisionParams
from services.gateway.app import create_app
from services.gateway.clients import CircuitBreaker, CircuitState, EmbeddingsClient
from services.gateway.settings import GatewaySettings
from services.gateway.state import provide_gateway
from tests.services.fakes import b64, encode, in_frame, textured
from tests.services.gateway.backends import Backends, error, verified

OK_EMBED = {"embeddings": [[1.0, 0.0]], "dimension": 2, "model": "m", "per_image": 1, "processing_time_ms": 1.0}


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A transport answering from a list of outcomes (a status, or an exception class), counting calls."""

    def __init__(self, *outcomes: int | type[Exception]) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        outcome = self.outcomes[min(self.calls, len(self.outcomes)) - 1]
        if isinstance(outcome, type):
            raise outcome("scripted", request=request)
        if outcome == 200:
            return httpx.Response(200, json=OK_EMBED)
        code = {400: "invalid_image", 422: "validation_error"}.get(outcome, "internal_error")
        return httpx.Response(outcome, json={"error": code, "message": "scripted", "details": {}})


def client_over(transport: Scripted, clock: Clock, failures: int = 3) -> EmbeddingsClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(transport), base_url="http://embeddings")
    breaker = CircuitBreaker("embeddings", failures=failures, reset_s=10.0, clock=clock)
    return EmbeddingsClient("http://embeddings", timeout_s=1.0, retries=0, client=http, breaker=breaker)


async def outcomes(client: EmbeddingsClient, n: int) -> list[str]:
    seen = []
    for _ in range(n):
        try:
            await client.embed("aGk=")
            seen.append("ok")
        except errors.ServiceError as exc:
            seen.append(exc.code)
    return seen


# --- the state machine ------------------------------------------------------------------------------------------


def test_opens_after_consecutive_failures_and_rejects_with_the_backend_and_state():
    clock = Clock()
    breaker = CircuitBreaker("search", failures=2, reset_s=10.0, clock=clock)
    breaker.before_call()
    breaker.failed()
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN

    clock.now += 4.0
    with pytest.raises(errors.BackendUnavailable) as caught:
        breaker.before_call()
    assert caught.value.details == {"backend": "search", "circuit": "open", "retry_after_s": 6}


def test_a_success_between_failures_keeps_it_closed():
    breaker = CircuitBreaker("search", failures=2, clock=Clock())
    for _ in range(5):
        breaker.failed()
        breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED


def test_half_open_lets_one_probe_through_and_its_outcome_decides():
    clock = Clock()
    breaker = CircuitBreaker("search", failures=1, reset_s=10.0, clock=clock)
    breaker.failed()
    clock.now += 10.0

    breaker.before_call()
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(errors.BackendUnavailable, match="half_open"):
        breaker.before_call()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN, "a failed probe opens the circuit again"

    clock.now += 10.0
    breaker.before_call()
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()


def test_an_abandoned_probe_frees_the_slot():
    clock = Clock()
    breaker = CircuitBreaker("search", failures=1, reset_s=1.0, clock=clock)
    breaker.failed()
    clock.now += 1.0
    breaker.before_call()
    breaker.abandoned()
    breaker.before_call()


# --- clients ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [503, 500, httpx.ConnectError, httpx.ReadTimeout])
def test_backend_failures_open_the_circuit_and_later_calls_never_reach_the_backend(failure):
    transport, clock = Scripted(failure), Clock()
    client = client_over(transport, clock)

    seen = asyncio.run(outcomes(client, 6))

    assert seen[3:] == ["backend_unavailable"] * 3
    assert transport.calls == 3
    assert client.breaker.state is CircuitState.OPEN


def test_client_errors_never_open_the_circuit():
    transport = Scripted(400, 422)
    client = client_over(transport, Clock(), failures=2)

    seen = asyncio.run(outcomes(client, 20))

    assert set(seen) == {"invalid_image", "validation_error"}
    assert transport.calls == 20
    assert client.breaker.state is CircuitState.CLOSED


def test_the_circuit_closes_once_the_backend_is_back_after_the_cool_down():
    transport, clock = Scripted(503, 503, 503, 503, 200), Clock()
    client = client_over(transport, clock)

    assert asyncio.run(outcomes(client, 4)) == ["backend_unavailable"] * 4
    clock.now += 10.0
    assert asyncio.run(outcomes(client, 1)) == ["backend_unavailable"], "the probe still found it down"
    clock.now += 10.0
    assert asyncio.run(outcomes(client, 2)) == ["ok", "ok"]
    assert client.breaker.state is CircuitState.CLOSED
    assert transport.calls == 6


def test_a_malformed_success_body_is_a_backend_error_not_a_crash():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"unexpected": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://embeddings")
    client = EmbeddingsClient("http://embeddings", timeout_s=1.0, retries=0, client=http)

    with pytest.raises(errors.BackendError) as caught:
        asyncio.run(client.embed("aGk="))
    assert caught.value.details["backend"] == "embeddings"


# --- through the gateway ----------------------------------------------------------------------------------------


def test_identify_fails_fast_with_503_and_the_circuit_state_once_embeddings_keep_failing(tmp_path):
    backends = Backends(
        hits=[("mona", 0.8)],
        objects={"mona": {"object_id": "mona", "title": "Mona"}},
        geometric={"mona": verified("mona")},
        fail={"embeddings": error(500, "internal_error")},
    )
    clients = backends.clients()
    clients["embeddings"].breaker = CircuitBreaker("embeddings", failures=2, reset_s=30)
    app = create_app(GatewaySettings(snapshot_dir=tmp_path), **clients, params=DecisionParams())
    body = {"image": b64(encode(in_frame(textured(3))))}
    with TestClient(app) as client:
        first = [client.post("/identify", json=body) for _ in range(2)]
        fast = client.post("/identify", json=body)
        health = client.get("/health", params={"check_backends": "true"})

    assert [r.status_code for r in first] == [502, 502]
    assert first[1].json()["details"]["circuit"] == "open"
    assert fast.status_code == 503
    assert fast.json()["error"] == "backend_unavailable"
    assert fast.json()["details"] == {"backend": "embeddings", "circuit": "open", "retry_after_s": 30}
    assert fast.headers["retry-after"] == "30"
    assert len(backends.service_calls("embeddings")) == 2, "the open circuit kept the third call away"
    assert health.status_code == 503 and "circuit" in health.json()["checks"]["embeddings"]


def test_bad_images_from_clients_never_open_a_circuit(tmp_path):
    backends = Backends(fail={"embeddings": error(400, "invalid_image", "not an image")})
    clients = backends.clients()
    clients["embeddings"].breaker = CircuitBreaker("embeddings", failures=2, reset_s=30)
    app = create_app(GatewaySettings(snapshot_dir=tmp_path), **clients, params=DecisionParams())
    body = {"image": b64(encode(in_frame(textured(3))))}
    with TestClient(app) as client:
        answers = [client.post("/identify", json=body) for _ in range(6)]

    assert {r.status_code for r in answers} == {400}
    assert len(backends.service_calls("embeddings")) == 6


def test_an_overloaded_embeddings_service_is_passed_on_at_once_not_retried_nor_counted(tmp_path):
    def overloaded(request: httpx.Request) -> httpx.Response:
        body = {"error": "overloaded", "message": "16 waiting", "details": {"retry_after_s": 2}}
        return httpx.Response(503, json=body, headers={"Retry-After": "2"})

    backends = Backends(fail={"embeddings": overloaded})
    clients = backends.clients()
    clients["embeddings"].retries = 2
    clients["embeddings"].breaker = CircuitBreaker("embeddings", failures=2, reset_s=30)
    app = create_app(GatewaySettings(snapshot_dir=tmp_path), **clients, params=DecisionParams())
    body = {"image": b64(encode(in_frame(textured(3))))}
    with TestClient(app) as client:
        answers = [client.post("/identify", json=body) for _ in range(3)]

    assert [r.status_code for r in answers] == [503, 503, 503]
    assert {r.json()["error"] for r in answers} == {"overloaded"}
    assert answers[0].json()["details"] == {"backend": "embeddings", "retry_after_s": 2}
    assert answers[0].headers["retry-after"] == "2"
    assert len(backends.service_calls("embeddings")) == 3, "one call per photo: no retries"
    assert clients["embeddings"].breaker.state is CircuitState.CLOSED


def test_breakers_follow_the_settings(tmp_path):
    app = create_app(GatewaySettings(snapshot_dir=tmp_path, breaker_failures=7, breaker_reset_s=2.5))
    with TestClient(app):
        clients = provide_gateway(app.state).clients
    for name in ("embeddings", "search", "geometric"):
        breaker = clients[name].breaker
        assert (breaker.backend, breaker.failures, breaker.reset_s) == (name, 7, 2.5)


def test_a_gateway_started_again_after_a_shutdown_reopens_its_own_connections(tmp_path):
    from tests.support import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = GatewaySettings(snapshot_dir=tmp_path, embeddings_url=nowhere, search_url=nowhere, geometric_url=nowhere)
    app = create_app(settings)
    for _ in range(2):
        with TestClient(app) as client:
            health = client.get("/health", params={"check_backends": "true"})
        assert health.status_code == 503
        assert "unreachable" in health.json()["checks"]["embeddings"]
