"""services/common/topology.py: the facts about each service and the one builder of a service's environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.common import topology
from services.common.topology import SERVICES, START_ORDER, ServiceFacts, facts, service_environment

REPO = Path(__file__).resolve().parents[3]
# ARCHITECTURE.md, "Internal services": the one place a test states the ports; every other test reads them from here.
ARCHITECTURE_PORTS = {"gateway": 8000, "embeddings": 8001, "search": 8002, "geometric": 8003}


def test_the_four_services_listen_on_the_ports_of_the_architecture_with_their_own_prefix() -> None:
    assert {name: s.port for name, s in SERVICES.items()} == ARCHITECTURE_PORTS
    assert list(SERVICES) == ["gateway", "embeddings", "search", "geometric"]
    assert {s.env_prefix for s in SERVICES.values()} == {"GATEWAY_", "EMBEDDINGS_", "SEARCH_", "GEOMETRIC_"}
    assert {s.health_path for s in SERVICES.values()} == {"/health"}
    assert SERVICES["search"].module == "services.search"
    assert SERVICES["search"].env("snapshot_dir") == "SEARCH_SNAPSHOT_DIR"


def test_only_the_gateway_calls_other_services_and_only_embeddings_reads_no_snapshot() -> None:
    assert {name: s.calls for name, s in SERVICES.items() if s.calls} == {
        "gateway": ("embeddings", "search", "geometric")
    }
    assert [name for name, s in SERVICES.items() if not s.reads_snapshot] == ["embeddings"]
    assert SERVICES["embeddings"].start_period_s == 120, "the model loads before the first health check counts"


def test_each_service_starts_after_the_services_it_calls() -> None:
    assert START_ORDER[-1] == "gateway" and sorted(START_ORDER) == sorted(SERVICES)
    for position, name in enumerate(START_ORDER):
        assert set(SERVICES[name].calls) <= set(START_ORDER[:position])


def test_services_calling_each_other_in_a_cycle_are_refused() -> None:
    cycle = {
        "a": ServiceFacts("a", 1, calls=("b",)),
        "b": ServiceFacts("b", 2, calls=("a",)),
        "c": ServiceFacts("c", 3),
    }
    with pytest.raises(ValueError, match=r"cycle: \['a', 'b'\]"):
        topology._start_order(cycle)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Search", "port": 1}, "lower-case identifier"),
        ({"name": "my-service", "port": 1}, "lower-case identifier"),
        ({"name": "search", "port": 0}, "port must lie in 1..65535"),
        ({"name": "search", "port": 70000}, "port must lie in 1..65535"),
        ({"name": "search", "port": 1, "health_path": "health"}, "must start with '/'"),
    ],
)
def test_impossible_facts_are_refused_when_declared(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceFacts(**kwargs)  # type: ignore[arg-type]


def test_an_unknown_service_is_an_error_that_lists_the_services() -> None:
    assert facts("search") is SERVICES["search"]
    with pytest.raises(ValueError, match="unknown service 'serach'; the services are gateway, embeddings, search"):
        facts("serach")
    with pytest.raises(ValueError, match="unknown service"):
        service_environment("serach", host="127.0.0.1", snapshot_dir="/s")


def test_urls_and_build_arguments_come_from_the_declared_port() -> None:
    search = SERVICES["search"]
    assert search.url() == f"http://127.0.0.1:{search.port}"
    assert search.url("search.ns", 9000) == "http://search.ns:9000"
    assert search.build_args() == {"SERVICE": "search", "ENV_PREFIX": "SEARCH_", "PORT": str(search.port)}


def test_on_one_host_the_gateway_finds_every_backend_on_loopback_at_its_declared_port() -> None:
    env = service_environment("gateway", host="0.0.0.0", snapshot_dir="/data/snapshot")
    assert env == {
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_PORT": str(SERVICES["gateway"].port),
        "GATEWAY_SNAPSHOT_DIR": "/data/snapshot",
        "GATEWAY_EMBEDDINGS_URL": f"http://127.0.0.1:{SERVICES['embeddings'].port}",
        "GATEWAY_SEARCH_URL": f"http://127.0.0.1:{SERVICES['search'].port}",
        "GATEWAY_GEOMETRIC_URL": f"http://127.0.0.1:{SERVICES['geometric'].port}",
    }


def test_a_backend_gets_its_address_and_the_snapshot_only_when_it_reads_it() -> None:
    assert service_environment("embeddings", host="127.0.0.1", snapshot_dir="/s") == {
        "EMBEDDINGS_HOST": "127.0.0.1",
        "EMBEDDINGS_PORT": str(SERVICES["embeddings"].port),
    }
    assert service_environment("geometric", host="127.0.0.1", snapshot_dir="/s")["GEOMETRIC_SNAPSHOT_DIR"] == "/s"


def test_chosen_ports_move_the_service_and_the_urls_its_caller_is_given() -> None:
    ports = {"search": 9002, "gateway": 9000}
    assert service_environment("search", host="127.0.0.1", snapshot_dir="/s", ports=ports)["SEARCH_PORT"] == "9002"
    gateway = service_environment("gateway", host="127.0.0.1", snapshot_dir="/s", ports=ports)
    assert gateway["GATEWAY_PORT"] == "9000"
    assert gateway["GATEWAY_SEARCH_URL"] == "http://127.0.0.1:9002"
    assert gateway["GATEWAY_GEOMETRIC_URL"] == f"http://127.0.0.1:{SERVICES['geometric'].port}"


def test_with_service_discovery_each_backend_is_reached_by_its_name_under_the_domain() -> None:
    gateway = service_environment("gateway", host="0.0.0.0", snapshot_dir="/s", backend_domain="demo.internal")
    for backend in ("embeddings", "search", "geometric"):
        assert gateway[f"GATEWAY_{backend.upper()}_URL"] == f"http://{backend}.demo.internal:{SERVICES[backend].port}"


def test_the_readmes_state_the_declared_ports_and_prefixes() -> None:
    table = (REPO / "README.md").read_text()
    for name, service in SERVICES.items():
        assert re.search(rf"^\| \[{name}\]\(services/{name}/README\.md\) \| {service.port} \|", table, re.MULTILINE)
        own = " ".join((REPO / "services" / name / "README.md").read_text().split())
        assert f"Port {service.port}, env prefix `{service.env_prefix}`" in own
