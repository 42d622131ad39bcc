"""The embedded default's process environment: backends on loopback whatever the gateway's interface."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.settings import ServiceSettings
from tools.cli.local_stack import SERVICES, LocalStack


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


def test_services_default_to_loopback_when_run_alone():
    assert ServiceSettings().host == "127.0.0.1"


def test_tools_run_unthrottled_but_serve_keeps_the_rate_limit():
    assert LocalStack(Path("/tmp/s"))._environment("gateway")["GATEWAY_RATE_LIMIT_PER_MINUTE"] == "0"
    assert "GATEWAY_RATE_LIMIT_PER_MINUTE" not in LocalStack(Path("/tmp/s"), throttle=True)._environment("gateway")
    explicit = LocalStack(Path("/tmp/s"), env={"GATEWAY_RATE_LIMIT_PER_MINUTE": "5"})._environment("gateway")
    assert explicit["GATEWAY_RATE_LIMIT_PER_MINUTE"] == "5"
