"""The gateway's edge: per-client rate limiting, security headers, CORS checks and admin keys from files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from litestar.testing import TestClient
from pydantic import SecretStr

from services.common.errors import ConfigurationError, Overloaded, RateLimited
from services.decision.rule import DecisionParams
from services.gateway import web
from services.gateway.app import create_app
from services.gateway.security import (
    API_CONTENT_SECURITY_POLICY,
    AdmissionGate,
    RateLimiter,
    check_cors,
    client_address,
    read_secret,
)
from services.gateway.settings import GatewaySettings
from services.gateway.state import provide_gateway
from tests.services.fakes import b64, encode, in_frame, textured
from tests.services.gateway.backends import Backends, verified

KEY = "s3cret-admin-key-that-must-never-be-logged"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(in_frame(textured(5)))


def backends() -> Backends:
    catalogue = {"mona": {"object_id": "mona", "title": "Mona", "artist": "Painter", "date": "1503"}}
    return Backends(hits=[("mona", 0.82)], objects=catalogue, geometric={"mona": verified("mona", inliers=150)})


def gateway(tmp_path, **settings) -> TestClient:
    settings_ = GatewaySettings(snapshot_dir=tmp_path, **settings)
    app = create_app(settings_, **backends().clients(), params=DecisionParams())
    return TestClient(app)


# --- rate limiting ----------------------------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_refills_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(60, 3, clock=clock)

    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("b") == 0.0, "another client has its own bucket"


def test_rejection_says_when_to_retry_in_whole_seconds():
    clock = Clock()
    limiter = RateLimiter(6, 1, clock=clock)
    limiter.check("a")

    with pytest.raises(RateLimited) as caught:
        limiter.check("a")
    assert caught.value.details["retry_after_s"] == 10
    assert caught.value.status == 429


def test_zero_rate_turns_limiting_off():
    limiter = RateLimiter(0, 1)
    assert all(limiter.acquire("a") == 0.0 for _ in range(1000))


def test_tracked_clients_are_bounded():
    limiter = RateLimiter(60, 1, max_clients=10)
    for i in range(100):
        limiter.acquire(f"10.0.0.{i}")
    assert len(limiter._buckets) == 10


def test_client_address_trusts_only_the_configured_proxy_hops():
    assert client_address("10.1.1.1", "6.6.6.6, 203.0.113.7", 0) == "10.1.1.1"
    assert client_address("10.1.1.1", "6.6.6.6, 203.0.113.7", 1) == "203.0.113.7"
    assert client_address("10.1.1.1", "6.6.6.6, 203.0.113.7, 10.0.0.2", 2) == "203.0.113.7"
    assert client_address("10.1.1.1", "203.0.113.7", 3) == "203.0.113.7"
    assert client_address("10.1.1.1", None, 1) == "10.1.1.1"
    assert client_address(None, None, 0) == "unknown"


def test_identify_answers_429_with_retry_after_in_the_error_shape(tmp_path, photo):
    with gateway(tmp_path, rate_limit_per_minute=6, rate_limit_burst=2) as client:
        body = {"image": b64(photo)}
        assert [client.post("/identify", json=body).status_code for _ in range(2)] == [200, 200]
        response = client.post("/identify", json=body)

        assert response.status_code == 429
        assert response.headers["retry-after"] == "10"
        assert response.json()["error"] == "rate_limited"
        assert set(response.json()) == {"error", "message", "details"}
        assert client.get("/health").status_code == 200, "only /identify is limited"


def test_a_replay_of_200_photos_from_one_address_with_the_default_limits_gets_no_429(tmp_path, photo):
    with gateway(tmp_path) as client:
        body = {"image": b64(photo)}
        statuses = [client.post("/identify", json=body).status_code for _ in range(200)]

        assert statuses == [200] * 200


def test_admission_gate_holds_places_up_to_its_bound_and_frees_them_on_exit_or_error():
    gate = AdmissionGate(2, retry_after_s=3)
    with gate.admit(), gate.admit():
        with pytest.raises(Overloaded) as refused:
            gate.admit().__enter__()
        assert gate.in_flight == 2
    with pytest.raises(ValueError), gate.admit():
        raise ValueError("the request failed")
    assert gate.in_flight == 0
    assert refused.value.details == {"in_flight": 2, "max_in_flight": 2, "retry_after_s": 3}
    unbounded = AdmissionGate(0)
    with unbounded.admit(), unbounded.admit(), unbounded.admit():
        assert unbounded.in_flight == 3


def test_identify_beyond_the_in_flight_bound_is_503_overloaded_with_retry_after_at_once(tmp_path, photo):
    app = create_app(
        GatewaySettings(snapshot_dir=tmp_path, max_in_flight=2), **backends().clients(), params=DecisionParams()
    )
    body = {"image": b64(photo)}
    with TestClient(app) as client:
        gate = provide_gateway(app.state).admission
        with gate.admit(), gate.admit():  # two photos being answered
            refused = client.post("/identify", json=body)
        after = client.post("/identify", json=body)

    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "error": "overloaded",
        "message": "the gateway is answering 2 photos already; try again in 1 s",
        "details": {"in_flight": 2, "max_in_flight": 2, "retry_after_s": 1},
    }
    assert after.status_code == 200, "the places are free again"


def test_default_limit_lets_a_museum_wifi_address_send_200_photos_at_a_visitors_pace():
    """Visitors behind one guest Wi-Fi address: 200 photos, one every 0.3 s (faster than a gateway answers), pass;
    a client that keeps hammering is still stopped."""
    settings = GatewaySettings(snapshot_dir=Path("unused"))
    now = [0.0]
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst, clock=lambda: now[0])
    waits = []
    for _ in range(200):
        waits.append(limiter.acquire("museum"))
        now[0] += 0.3
    assert max(waits) == 0.0
    hammered = [limiter.acquire("runaway") for _ in range(settings.rate_limit_burst + 1)]
    assert hammered[-1] > 0.0


def test_limit_is_per_forwarded_client_behind_a_trusted_proxy(tmp_path, photo):
    with gateway(tmp_path, rate_limit_per_minute=6, rate_limit_burst=1, trusted_proxy_hops=1) as client:
        body = {"image": b64(photo)}
        first = {"x-forwarded-for": "203.0.113.1"}
        assert client.post("/identify", json=body, headers=first).status_code == 200
        assert client.post("/identify", json=body, headers=first).status_code == 429
        assert client.post("/identify", json=body, headers={"x-forwarded-for": "203.0.113.2"}).status_code == 200


def test_forged_forwarded_for_does_not_escape_the_limit_without_trusted_proxies(tmp_path, photo):
    with gateway(tmp_path, rate_limit_per_minute=6, rate_limit_burst=1) as client:
        body = {"image": b64(photo)}
        assert client.post("/identify", json=body, headers={"x-forwarded-for": "1.1.1.1"}).status_code == 200
        assert client.post("/identify", json=body, headers={"x-forwarded-for": "2.2.2.2"}).status_code == 429


# --- security headers -------------------------------------------------------------------------------------------


def _assert_hardened(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/health"), ("GET", "/info"), ("GET", "/no/such/route"), ("DELETE", "/health"), ("GET", "/objects/x")],
)
def test_every_api_response_carries_security_headers(tmp_path, method, path):
    with gateway(tmp_path) as client:
        response = client.request(method, path)
    _assert_hardened(response)
    assert response.headers["content-security-policy"] == API_CONTENT_SECURITY_POLICY


def test_error_and_image_responses_carry_security_headers(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "mona.jpg").write_bytes(encode(textured(1)))
    with gateway(tmp_path) as client:
        unsupported = client.post("/identify", content=b"x", headers={"content-type": "text/plain"})
        image = client.get("/objects/mona/image")
    assert unsupported.status_code == 415 and image.status_code == 200
    for response in (unsupported, image):
        _assert_hardened(response)
        assert response.headers["content-security-policy"] == API_CONTENT_SECURITY_POLICY


def test_the_web_page_keeps_its_own_content_security_policy(tmp_path):
    with gateway(tmp_path) as client:
        page = client.get("/")
        script = client.get("/static/app.js")
    for response in (page, script):
        assert response.headers["content-security-policy"] == web.CONTENT_SECURITY_POLICY
        assert response.headers.get_list("content-security-policy") == [web.CONTENT_SECURITY_POLICY]
        _assert_hardened(response)


# --- CORS -------------------------------------------------------------------------------------------------------


def test_wildcard_origin_with_credentials_is_refused_at_start_up(tmp_path):
    with pytest.raises(ConfigurationError, match="GATEWAY_CORS_ALLOW_CREDENTIALS"):
        create_app(GatewaySettings(snapshot_dir=tmp_path, cors_origins=["*"], cors_allow_credentials=True))


@pytest.mark.parametrize("origin", ["museum.example", "https://museum.example/", "https://museum.example/app"])
def test_malformed_origins_are_refused_naming_the_fix(origin):
    with pytest.raises(ConfigurationError, match="scheme://host"):
        check_cors([origin], False)


def test_configured_origin_is_allowed_and_others_are_not(tmp_path):
    with gateway(tmp_path, cors_origins=["https://museum.example"]) as client:
        allowed = client.options(
            "/identify",
            headers={"origin": "https://museum.example", "access-control-request-method": "POST"},
        )
        other = client.get("/health", headers={"origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://museum.example"
    assert "access-control-allow-credentials" not in allowed.headers
    assert "access-control-allow-origin" not in other.headers


# --- admin key --------------------------------------------------------------------------------------------------


def test_secret_file_is_read_and_trimmed(tmp_path):
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    assert read_secret(None, path, "GATEWAY_API_KEY").get_secret_value() == KEY  # type: ignore[union-attr]


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_missing_or_empty_secret_file_fails_start_up(tmp_path, content):
    path = tmp_path / "key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError, match="GATEWAY_API_KEY_FILE"):
        read_secret(None, path, "GATEWAY_API_KEY")


def test_key_and_key_file_together_are_refused(tmp_path):
    path = tmp_path / "key"
    path.write_text(KEY)
    with pytest.raises(ConfigurationError, match="not both"):
        read_secret(SecretStr(KEY), path, "GATEWAY_API_KEY")


def test_admin_key_from_a_file_guards_admin_endpoints_and_is_never_logged_or_shown(
    tmp_path, monkeypatch, caplog, photo
):
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv("GATEWAY_API_KEY_FILE", str(key_file))
    settings = GatewaySettings(snapshot_dir=tmp_path)
    app = create_app(settings, **backends().clients(), params=DecisionParams())
    caplog.set_level(logging.DEBUG)
    with TestClient(app) as client:
        wrong = client.delete("/objects/mona", headers={"X-API-Key": KEY[:-1]})
        right = client.delete("/objects/mona", headers={"X-API-Key": KEY})
        info = client.get("/info").text
        files = {"image": ("a.jpg", photo, "image/jpeg")}
        added = client.post("/objects", files=files, data={"object_id": "new-1"}, headers={"X-API-Key": KEY})

    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    assert right.status_code == 200
    assert added.status_code == 201
    assert KEY not in info and str(key_file) in info
    assert any(r.name == "services.access" for r in caplog.records), "the requests were logged"
    assert KEY not in caplog.text and KEY[:-1] not in caplog.text


def test_repeated_form_fields_are_refused(tmp_path, photo):
    with gateway(tmp_path, api_key=KEY) as client:
        response = client.post(
            "/objects",
            files=[("image", ("a.jpg", photo, "image/jpeg"))],
            data={"object_id": "x1", "title": ["one", "two"]},
            headers={"X-API-Key": KEY},
        )
    assert response.status_code == 422
    assert response.json()["details"]["fields"] == ["title"]
