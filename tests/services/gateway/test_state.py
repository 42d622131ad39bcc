"""The gateway's run-time state: opened and closed by the lifespan, injected into handlers, admin routes guarded."""

from __future__ import annotations

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

import services.gateway.state as gateway_state
from services.common.errors import NotReady
from services.decision.rule import DecisionParams
from services.gateway.app import create_app
from services.gateway.clients import BackendClient
from services.gateway.settings import GatewaySettings
from services.gateway.state import admin_guard, provide_gateway
from tests.services.gateway.backends import Backends

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _routes(app) -> dict[tuple[str, str], bool]:
    """(method, path) of every HTTP route of ``app`` → whether it carries the admin guard."""
    guarded: dict[tuple[str, str], bool] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                # resolved guards (the handler's and its owners') come wrapped for awaiting
                resolved = [getattr(guard, "func", guard) for guard in handler.resolve_guards()]
                guarded[(method, route.path)] = admin_guard in resolved
    return guarded


def test_every_admin_route_carries_the_admin_guard_and_no_public_route_does(tmp_path):
    routes = _routes(create_app(GatewaySettings(snapshot_dir=tmp_path), params=DecisionParams()))

    guarded = {key for key, has_guard in routes.items() if has_guard}
    assert guarded == {
        ("POST", "/objects"),
        ("PUT", "/objects/{object_id:str}"),
        ("PATCH", "/objects/{object_id:str}"),
        ("DELETE", "/objects/{object_id:str}"),
        ("GET", "/collection/report"),
    }
    # every other route only reads, except identifying a photo, which anyone may do
    public_writes = {key for key, has_guard in routes.items() if not has_guard and key[0] not in SAFE_METHODS}
    assert public_writes == {("POST", "/identify")}
    assert ("GET", "/objects") in routes and ("GET", "/health") in routes


def test_the_clients_the_gateway_made_are_closed_when_it_shuts_down(tmp_path):
    app = create_app(GatewaySettings(snapshot_dir=tmp_path), params=DecisionParams())
    with TestClient(app):
        clients = list(provide_gateway(app.state).clients.values())
        assert [c.closed for c in clients] == [False, False, False]

    assert [c.closed for c in clients] == [True, True, True]
    with pytest.raises(NotReady):
        provide_gateway(app.state)


def test_clients_passed_in_belong_to_the_caller_and_stay_open(tmp_path):
    clients = Backends().clients()
    with TestClient(create_app(GatewaySettings(snapshot_dir=tmp_path), **clients, params=DecisionParams())) as c:
        assert c.get("/health").status_code == 200

    assert not any(client.closed for client in clients.values())


def test_a_failed_start_up_closes_the_clients_made_before_the_failure(tmp_path, monkeypatch):
    closed: list[BackendClient] = []
    real_aclose = BackendClient.aclose

    async def recording_aclose(self: BackendClient) -> None:
        closed.append(self)
        await real_aclose(self)

    def broken_pipeline(*args, **kwargs):
        raise RuntimeError("pipeline cannot start")

    monkeypatch.setattr(BackendClient, "aclose", recording_aclose)
    monkeypatch.setattr(gateway_state, "IdentifyPipeline", broken_pipeline)
    app = create_app(GatewaySettings(snapshot_dir=tmp_path), params=DecisionParams())

    with pytest.raises(BaseExceptionGroup) as caught, TestClient(app):  # the lifespan's task group reports it
        pass

    assert caught.group_contains(RuntimeError, match="pipeline cannot start")

    assert sorted(client.name for client in closed) == ["embeddings", "geometric", "search"]
    assert all(client.closed for client in closed)


def test_a_request_outside_the_lifespan_is_a_clean_not_ready_answer(tmp_path):
    app = create_app(GatewaySettings(snapshot_dir=tmp_path), params=DecisionParams())
    client = TestClient(app)  # no `with`: the lifespan never runs

    response = client.get("/info")

    assert response.status_code == 503
    assert response.json()["error"] == "not_ready"
