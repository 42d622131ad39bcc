"""``infra verify`` against scripted gateways: each broken property fails its own row, and only that row."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from services.gateway.security import SECURITY_HEADERS
from tools.cli import verify as verify_module
from tools.cli.main import build_parser
from tools.cli.verify import REQUIRED_HEADERS, Sample, built_in_sample, print_table, verify

SAMPLE = Sample(b"jpeg bytes", "photo.jpg", "obj-1")
HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def gateway(
    *, backends: str = "healthy", admin_status: int = 401, headers: dict[str, str] | None = None, answer: str = "obj-1"
) -> Callable[[httpx.Request], httpx.Response]:
    """A scripted gateway: healthy, identifies every photo as ``answer``, refuses admin calls with ``admin_status``."""
    sent = HEADERS if headers is None else headers

    def handle(request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if request.url.scheme == "http" and request.url.host == "secure.test":
            return httpx.Response(301, headers={"location": f"https://secure.test{path}"})
        if path == "/health":
            status = "healthy" if backends == "healthy" else "degraded"
            checks = {"embeddings": "healthy", "search": "healthy", "geometric": backends}
            return httpx.Response(200, json={"status": status, "checks": checks}, headers=sent)
        if path == "/identify":
            match = {"object_id": answer, "confidence": 0.9, "verification_method": "geometric"}
            return httpx.Response(200, json={"match": match, "degraded": False}, headers=sent)
        if path.startswith("/objects") and method in ("POST", "PUT", "DELETE"):
            body = {"error": "unauthorized", "message": "key"} if admin_status >= 400 else {"object_id": "x"}
            return httpx.Response(admin_status, json=body, headers=sent)
        if path.startswith("/objects/"):
            return httpx.Response(200, json={"object_id": path.rsplit("/", 1)[-1]}, headers=sent)
        return httpx.Response(404, json={"error": "not_found"}, headers=sent)

    return handle


def run(handler: Callable[[httpx.Request], httpx.Response], url: str = "http://gw.test") -> dict[str, bool]:
    rows = verify(url, SAMPLE, transport=httpx.MockTransport(handler))
    return {row.name: row.ok for row in rows}


def test_a_healthy_gateway_passes_every_row() -> None:
    rows = run(gateway())
    assert rows == {
        "health (gateway and backends)": True,
        "identify photo.jpg": True,
        "security headers": True,
        "admin endpoints refuse requests without a key": True,
    }


@pytest.mark.parametrize(
    ("broken", "failing_row"),
    [
        ({"backends": "unhealthy: connection refused"}, "health (gateway and backends)"),
        ({"answer": "obj-2"}, "identify photo.jpg"),
        ({"headers": {k: v for k, v in HEADERS.items() if k != "x-frame-options"}}, "security headers"),
        ({"admin_status": 201}, "admin endpoints refuse requests without a key"),
    ],
)
def test_each_broken_property_fails_exactly_its_row(broken: dict[str, object], failing_row: str) -> None:
    rows = run(gateway(**broken))  # type: ignore[arg-type]
    assert [name for name, ok in rows.items() if not ok] == [failing_row]


def test_https_urls_also_check_that_plain_http_redirects() -> None:
    rows = run(gateway(), url="https://secure.test")
    assert rows["http redirects to https"] is True
    assert run(gateway(), url="https://elsewhere.test")["http redirects to https"] is False


def test_the_table_names_every_failed_row(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    rows = verify("http://gw.test", SAMPLE, transport=httpx.MockTransport(gateway(admin_status=200)))
    print_table("http://gw.test", rows, sys.stdout)
    out = capsys.readouterr().out
    assert "  FAIL  admin endpoints refuse requests without a key" in out
    assert out.splitlines()[-1] == "FAILED: admin endpoints refuse requests without a key"


def test_required_headers_are_the_ones_the_gateway_sets() -> None:
    assert set(REQUIRED_HEADERS) == set(SECURITY_HEADERS)
    for name, value in REQUIRED_HEADERS.items():
        assert value in SECURITY_HEADERS[name]


def test_the_built_in_sample_is_a_photo_of_a_demo_picture_with_its_reference() -> None:
    sample = built_in_sample("leonardo_mona_lisa")
    assert (sample.expected, sample.filename) == ("leonardo_mona_lisa", "photo_of_leonardo_mona_lisa.jpg")
    assert sample.photo[:2] == b"\xff\xd8" and sample.reference is not None and sample.reference[:4] == b"\x89PNG"
    assert sample.metadata == {"title": "Mona Lisa", "artist": "Leonardo da Vinci", "date": "1503–1519"}
    assert built_in_sample("leonardo_mona_lisa").photo == sample.photo, "seeded: the same photo every run"


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["infra", "verify", *argv])


def test_photo_and_expect_go_together(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert verify_module.run_verify(parse("--url", "http://gw.test", "--expect", "obj-1")) == 2
    assert "--photo and --expect go together" in capsys.readouterr().err
    missing = tmp_path / "missing.jpg"
    args = parse("--url", "http://gw.test", "--photo", str(missing), "--expect", "obj-1")
    assert verify_module.run_verify(args) == 2
    assert "cannot read --photo" in capsys.readouterr().err
