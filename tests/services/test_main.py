"""``python -m services``: the images' command (run), health check (health) and their build arguments."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from services import __main__ as launcher
from services.common.topology import SERVICES


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200, "paths": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_build_args_prints_the_options_docker_build_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher.main(["build-args", "search"]) == 0
    expected = " ".join(f"--build-arg {k}={v}" for k, v in SERVICES["search"].build_args().items())
    assert capsys.readouterr().out.strip() == expected


def test_health_asks_the_services_health_path_at_its_configured_port(server, monkeypatch) -> None:
    port, handler = server
    monkeypatch.setenv("SEARCH_PORT", str(port))
    assert launcher.main(["health", "search"]) == 0
    assert handler.paths == [SERVICES["search"].health_path]


def test_health_fails_when_the_service_answers_an_error_or_nothing_listens(server, monkeypatch, capsys) -> None:
    port, handler = server
    handler.status = 503
    monkeypatch.setenv("ARTWORK_MATCHER_SERVICE", "geometric")
    monkeypatch.setenv("GEOMETRIC_PORT", str(port))
    assert launcher.main(["health"]) == 1
    monkeypatch.setenv("GEOMETRIC_PORT", str(_free_port()))
    assert launcher.main(["health"]) == 1
    assert capsys.readouterr().err.count("unhealthy: http://127.0.0.1:") == 2


def test_health_without_a_configured_port_uses_the_declared_one(monkeypatch) -> None:
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    gateway = SERVICES["gateway"]
    assert launcher.health_url(gateway, {}) == f"http://127.0.0.1:{gateway.port}{gateway.health_path}"
    assert launcher.health_url(gateway, {"GATEWAY_PORT": " 9000 "}) == f"http://127.0.0.1:9000{gateway.health_path}"


def test_run_starts_the_named_service_module_as_main(monkeypatch) -> None:
    calls: list[tuple[str, str | None]] = []
    monkeypatch.setattr(
        launcher.runpy, "run_module", lambda module, run_name, alter_sys: calls.append((module, run_name))
    )
    monkeypatch.setenv("ARTWORK_MATCHER_SERVICE", "embeddings")
    assert launcher.main(["run"]) == 0
    assert launcher.main(["run", "gateway"]) == 0
    assert calls == [("services.embeddings", "__main__"), ("services.gateway", "__main__")]


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["run"], {}, "name the service or set ARTWORK_MATCHER_SERVICE"),
        (["health"], {"ARTWORK_MATCHER_SERVICE": "serach"}, "unknown service 'serach'"),
        (["health", "search"], {"SEARCH_PORT": "eighty"}, "SEARCH_PORT must be a whole number"),
        (["run", "serach"], {}, "invalid choice: 'serach'"),
    ],
)
def test_bad_input_exits_2_and_says_what_to_fix(argv, env, message, monkeypatch, capsys) -> None:
    monkeypatch.delenv("ARTWORK_MATCHER_SERVICE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
        launcher.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
