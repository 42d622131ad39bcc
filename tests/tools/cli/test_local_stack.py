"""The embedded default's process environment: backends on loopback whatever the gateway's interface."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.common import topology
from services.common.settings import ServiceSettings
from services.embeddings.settings import EmbeddingsSettings
from services.gateway.settings import GatewaySettings
from services.geometric.settings import GeometricSettings
from services.search.settings import SearchSettings
from tools.cli.local_stack import DEFAULT_PORTS, SERVICES, LocalStack

SETTINGS: dict[str, Callable[[], ServiceSettings]] = {
    "gateway": GatewaySettings,
    "embeddings": EmbeddingsSettings,
    "search": SearchSettings,
    "geometric": GeometricSettings,
}


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "192.0.2.10"])
def test_internal_services_listen_on_loopback_whatever_the_gateway_host(host):
    stack = LocalStack(Path("/tmp/snapshot"), host=host)

    for name in ("embeddings", "search", "geometric"):
        env = stack._environment(name)
        assert env[f"{name.upper()}_HOST"] == "127.0.0.1"
        assert stack.url(name).startswith("http://127.0.0.1:")
    gateway = stack._environment("gateway")
    assert gateway["GATEWAY_HOST"] == host
    assert all(gateway[f"GATEWAY_{b.upper()}_URL"].startswith("http://127.0.0.1:") for b in SERVICES[:3])


@pytest.mark.parametrize("name", list(SETTINGS))
def test_services_default_to_loopback_and_their_declared_port_and_prefix_when_run_alone(name, monkeypatch):
    facts = topology.SERVICES[name]
    settings = SETTINGS[name]()
    assert (settings.host, settings.port) == ("127.0.0.1", facts.port)
    assert settings.model_config["env_prefix"] == facts.env_prefix
    monkeypatch.setenv(facts.env("port"), "9123")
    assert SETTINGS[name]().port == 9123


def test_the_gateway_finds_its_backends_at_their_declared_ports_by_default():
    settings = GatewaySettings()
    for backend in topology.SERVICES["gateway"].calls:
        assert getattr(settings, f"{backend}_url") == f"http://127.0.0.1:{topology.SERVICES[backend].port}"


def test_a_service_without_its_own_settings_class_has_no_port_to_fall_back_on():
    with pytest.raises(ValueError, match="port"):
        ServiceSettings()  # type: ignore[call-arg]


def test_the_stack_starts_backends_first_on_their_declared_ports_and_places_them_with_the_shared_builder():
    stack = LocalStack(Path("/tmp/snapshot"), ports={**DEFAULT_PORTS, "search": 9002}, host="0.0.0.0")
    assert SERVICES == topology.START_ORDER and SERVICES[-1] == "gateway"
    assert {name: facts.port for name, facts in topology.SERVICES.items()} == DEFAULT_PORTS
    for name in SERVICES:
        placed = topology.service_environment(
            name, host=stack.host if name == "gateway" else "127.0.0.1", snapshot_dir="/tmp/snapshot", ports=stack.ports
        )
        assert placed.items() <= stack._environment(name).items()
    assert stack._environment("gateway")["GATEWAY_SEARCH_URL"] == "http://127.0.0.1:9002" == stack.url("search")
    assert stack._environment("search")["SEARCH_PORT"] == "9002"


def test_tools_run_unthrottled_but_serve_keeps_the_rate_limit():
    assert LocalStack(Path("/tmp/s"))._environment("gateway")["GATEWAY_RATE_LIMIT_PER_MINUTE"] == "0"
    assert "GATEWAY_RATE_LIMIT_PER_MINUTE" not in LocalStack(Path("/tmp/s"), throttle=True)._environment("gateway")
    explicit = LocalStack(Path("/tmp/s"), env={"GATEWAY_RATE_LIMIT_PER_MINUTE": "5"})._environment("gateway")
    assert explicit["GATEWAY_RATE_LIMIT_PER_MINUTE"] == "5"
