"""The public gateway over HTTP with scripted backends: identify, health, catalogue and admin endpoints."""

from __future__ import annotations

import base64

import httpx
import pytest
from litestar.testing import TestClient

from services.collection.report_file import (
    ArtworkFinding,
    CollectionReport,
    Flag,
    PairFinding,
    Thresholds,
    write_report,
)
from services.decision.rule import DecisionParams
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.services.fakes import b64, encode, in_frame, textured
from tests.services.gateway.backends import Backends, error, verified

API_KEY = "correct horse battery staple"


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(in_frame(textured(5)))


def catalogue(*object_ids: str) -> dict[str, dict]:
    return {i: {"object_id": i, "title": f"Title {i}", "artist": "Painter", "date": "1890"} for i in object_ids}


@pytest.fixture
def backends() -> Backends:
    return Backends(
        hits=[("mona", 0.82), ("other", 0.61)],
        objects=catalogue("mona", "other"),
        geometric={"mona": verified("mona", inliers=150)},
    )


def gateway(backends: Backends, tmp_path, **settings) -> TestClient:
    app = create_app(GatewaySettings(snapshot_dir=tmp_path, **settings), **backends.clients(), params=DecisionParams())
    return TestClient(app)


@pytest.fixture
def client(backends, tmp_path):
    with gateway(backends, tmp_path, api_key=API_KEY) as c:
        yield c


# --- identify ---------------------------------------------------------------------------------------------------


def assert_identified(response, object_id: str = "mona") -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["match"]["object_id"] == object_id and body["matches"][0] == body["match"]
    assert body["match"]["verification_method"] == "geometric"
    assert 0.5 <= body["match"]["confidence"] <= 1.0
    assert set(body["timing"]) == {"embedding_ms", "search_ms", "geometric_ms", "total_ms"}
    return body


def test_identifies_a_json_base64_photo_with_a_data_url_prefix(client, photo):
    response = client.post("/identify", json={"image": "data:image/jpeg;base64," + b64(photo)})

    body = assert_identified(response)
    assert body["match"]["name"] == "Title mona" and body["match"]["image_url"] == "/objects/mona/image"
    assert body["degraded"] is False and body["alternatives"] is None


def test_identifies_a_multipart_upload_with_form_options(client, backends, photo):
    response = client.post(
        "/identify",
        files={"image": ("wall.jpg", photo, "image/jpeg")},
        data={"k": "3", "include_alternatives": "true"},
    )

    body = assert_identified(response)
    assert backends.body_of("search", "POST", "/search")["k"] == 3
    assert [a["object_id"] for a in body["alternatives"]] == ["other"]


def test_a_large_jpeg_is_decoded_only_as_large_as_the_query_needs(backends, tmp_path, monkeypatch):
    import services.gateway.app as gateway_app

    asked: list[int | None] = []
    decode = gateway_app.decode_image

    def spy(data, **kwargs):
        asked.append(kwargs.get("max_side"))
        return decode(data, **kwargs)

    monkeypatch.setattr(gateway_app, "decode_image", spy)
    large = encode(in_frame(textured(5, (1600, 1200)), canvas=(2400, 1800)))
    with gateway(backends, tmp_path, query_max_side=512) as client:
        response = client.post("/identify", files={"image": ("wall.jpg", large, "image/jpeg")})

    assert_identified(response)
    assert asked == [512]
    sent = decode(base64.b64decode(backends.body_of("embeddings", "POST", "/embed")["image"]))
    assert max(sent.size) == 512  # decoded at 1/2 or 1/4 of 2400, then downscaled as before


def test_json_options_reach_the_backends(client, backends, photo):
    response = client.post("/identify", json={"image": b64(photo), "options": {"k": 1, "threshold": 0.99}})

    assert response.status_code == 200
    assert backends.body_of("search", "POST", "/search")["k"] == 1
    assert response.json()["debug"]["threshold"] == 0.99


def test_the_configured_default_k_applies_when_the_request_does_not_say(backends, tmp_path, photo):
    with gateway(backends, tmp_path, default_k=3) as client:
        client.post("/identify", json={"image": b64(photo)})

    assert backends.body_of("search", "POST", "/search")["k"] == 3


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"k": 0}, id="k-0"),
        pytest.param({"k": 101}, id="k-101"),
        pytest.param({"threshold": 1.5}, id="threshold-over-1"),
        pytest.param({"k": 5, "colour": "red"}, id="unknown-option"),
        pytest.param({"geometric_verification": "sometimes"}, id="not-a-bool"),
    ],
)
def test_invalid_json_options_are_422_and_reach_no_backend(client, backends, photo, options):
    response = client.post("/identify", json={"image": b64(photo), "options": options})

    assert response.status_code == 422 and response.json()["error"] == "validation_error"
    assert backends.calls == []


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"k": "0"}, id="k-0"),
        pytest.param({"k": "101"}, id="k-101"),
        pytest.param({"k": "many"}, id="k-not-a-number"),
        pytest.param({"geometric_verification": "maybe"}, id="not-a-bool"),
    ],
)
def test_invalid_form_options_are_422(client, backends, photo, fields):
    response = client.post("/identify", files={"image": ("p.jpg", photo, "image/jpeg")}, data=fields)

    assert response.status_code == 422 and backends.calls == []


def test_an_unknown_top_level_field_is_422(client, photo):
    response = client.post("/identify", json={"image": b64(photo), "colour": "red"})

    assert response.status_code == 422


def test_a_multipart_form_without_an_image_is_422(client):
    response = client.post("/identify", files={"other": ("p.txt", b"x", "text/plain")}, data={"k": "3"})

    assert response.status_code == 422 and response.json()["details"] == {"field": "image"}


def test_an_unsupported_content_type_is_415(client, backends, photo):
    response = client.post("/identify", content=photo, headers={"content-type": "image/jpeg"})

    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"
    assert backends.calls == []


@pytest.mark.parametrize(
    "body, status, code",
    [
        pytest.param({"image": b64(b"this is no photo")}, 400, "invalid_image", id="not-an-image"),
        pytest.param({"image": "&&& not base64"}, 400, "bad_request", id="bad-base64"),
        pytest.param({"image": ""}, 400, "invalid_image", id="empty"),
        pytest.param({"image": b64(encode(textured(1, (40, 30)), "GIF"))}, 415, "unsupported_media_type", id="gif"),
    ],
)
def test_bad_images_are_client_errors_that_never_reach_the_backends(client, backends, body, status, code):
    response = client.post("/identify", json=body)

    assert response.status_code == status and response.json()["error"] == code
    assert backends.calls == []


@pytest.mark.parametrize(
    "content",
    [pytest.param(b"", id="empty"), pytest.param(b'{"image": ', id="truncated"), pytest.param(b"[1, 2]", id="array")],
)
def test_a_body_that_is_not_an_identify_request_is_a_client_error(client, backends, content):
    response = client.post("/identify", content=content, headers={"content-type": "application/json"})

    assert response.status_code in (400, 422) and backends.calls == []


def test_a_malformed_multipart_body_is_400(client, backends):
    response = client.post("/identify", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=x"})

    assert response.status_code == 400 and response.json()["error"] == "bad_request"
    assert backends.calls == []


def test_an_oversized_multipart_upload_is_413_with_our_error_body(backends, tmp_path):
    with gateway(backends, tmp_path, max_body_bytes=100_000) as client:
        files = {"image": ("big.jpg", b"\xff" * 400_000, "image/jpeg")}
        response = client.post("/identify", files=files)

    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "payload_too_large" and body["details"] == {"max_body_bytes": 100_000}
    assert backends.calls == []


def test_a_photo_over_the_pixel_limit_is_413(backends, tmp_path, photo):
    with gateway(backends, tmp_path, max_image_pixels=10_000) as client:
        response = client.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 413 and backends.calls == []


@pytest.mark.parametrize(
    "failure", [pytest.param(httpx.ConnectError, id="refused"), pytest.param(error(500, "boom"), id="500")]
)
def test_geometric_down_gives_a_degraded_embedding_only_answer(backends, tmp_path, photo, failure):
    backends.hits = [("mona", 0.96), ("other", 0.40)]
    backends.fail["geometric"] = failure

    with gateway(backends, tmp_path) as client:
        response = client.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 200
    body = response.json()
    assert body["degraded"] is True and "geometric" in body["degradation_reason"]
    assert body["geometric_skipped"] is True
    assert body["match"]["object_id"] == "mona"
    assert body["match"]["verification_method"] == "embedding_only"


@pytest.mark.parametrize("service", ["embeddings", "search"])
def test_shortlist_backend_down_is_503_backend_unavailable(backends, tmp_path, photo, service):
    backends.fail[service] = httpx.ConnectError

    with gateway(backends, tmp_path) as client:
        response = client.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "backend_unavailable" and body["details"]["backend"] == service


def test_a_backend_that_is_not_ready_is_503(backends, tmp_path, photo):
    backends.fail["embeddings"] = error(503, "not_ready", "the model is still loading")

    with gateway(backends, tmp_path) as client:
        response = client.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 503 and response.json()["error"] == "backend_unavailable"


@pytest.mark.parametrize("service", ["embeddings", "search"])
def test_a_backend_timeout_is_504(backends, tmp_path, photo, service):
    backends.fail[service] = httpx.ReadTimeout

    with gateway(backends, tmp_path) as client:
        response = client.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 504 and response.json()["error"] == "backend_timeout"


def test_a_backend_500_is_502(backends, tmp_path, photo):
    backends.fail["search"] = error(500, "internal_error")

    with gateway(backends, tmp_path) as client:
        response = client.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 502 and response.json()["error"] == "backend_error"


def test_a_backend_invalid_image_passes_through_as_400(backends, tmp_path, photo):
    backends.fail["embeddings"] = error(400, "invalid_image", "the image data is corrupt")

    with gateway(backends, tmp_path) as client:
        response = client.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_image", "message": "the image data is corrupt", "details": {}}


def test_idempotent_backend_calls_are_retried_on_server_errors(tmp_path, photo):
    backends = Backends(hits=[], fail={"search": error(500, "flaky")})
    clients = backends.clients()
    clients["search"].retries = 2

    with TestClient(create_app(GatewaySettings(snapshot_dir=tmp_path), **clients, params=DecisionParams())) as c:
        response = c.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 502
    assert backends.service_calls("search") == [("POST", "/search")] * 3


def test_client_errors_from_a_backend_are_not_retried(tmp_path, photo):
    backends = Backends(hits=[], fail={"embeddings": error(400, "invalid_image")})
    clients = backends.clients()
    clients["embeddings"].retries = 2

    with TestClient(create_app(GatewaySettings(snapshot_dir=tmp_path), **clients, params=DecisionParams())) as c:
        response = c.post("/identify", json={"image": b64(photo)})

    assert response.status_code == 400
    assert backends.service_calls("embeddings") == [("POST", "/embed")]


# --- health and info --------------------------------------------------------------------------------------------


def test_health_without_backend_checks_is_healthy_and_calls_nothing(client, backends):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "healthy" and response.json()["checks"] == {}
    assert backends.calls == []


@pytest.mark.parametrize(
    "fail, health, status, code",
    [
        pytest.param({}, {}, "healthy", 200, id="all-up"),
        pytest.param({"geometric": httpx.ConnectError}, {}, "degraded", 200, id="geometric-down"),
        pytest.param({"search": httpx.ConnectError}, {}, "unhealthy", 503, id="search-down"),
        pytest.param({"embeddings": error(500, "boom")}, {}, "unhealthy", 503, id="embeddings-500"),
        pytest.param({}, {"embeddings": "unhealthy"}, "unhealthy", 503, id="model-not-loaded"),
    ],
)
def test_health_rolls_up_the_backends(backends, tmp_path, fail, health, status, code):
    backends.fail.update(fail)
    backends.health.update(health)

    with gateway(backends, tmp_path) as client:
        response = client.get("/health", params={"check_backends": "true"})

    assert response.status_code == code
    body = response.json()
    assert body["status"] == status
    assert set(body["checks"]) == {"embeddings", "search", "geometric"}
    for name in ("embeddings", "search", "geometric"):
        assert body["checks"][name] == "healthy" or body["checks"][name].startswith("unhealthy")
    assert (body["checks"]["geometric"] == "healthy") == ("geometric" not in fail)


def test_info_redacts_the_api_key(client):
    info = client.get("/info").json()

    assert info["service"] == "gateway"
    assert info["settings"]["api_key"] == "***"
    assert API_KEY not in str(info)
    assert info["decision"]["threshold"] == DecisionParams().threshold


# --- catalogue --------------------------------------------------------------------------------------------------


def test_lists_and_gets_objects_in_the_public_shape(client):
    page = client.get("/objects", params={"limit": 1, "offset": 1}).json()
    one = client.get("/objects/mona").json()

    assert page["total"] == 2 and [o["object_id"] for o in page["objects"]] == ["other"]
    assert one == {
        "object_id": "mona",
        "name": "Title mona",
        "artist": "Painter",
        "year": "1890",
        "room": "",
        "description": "",
        "link": "",
        "extra": {},
        "image_url": "/objects/mona/image",
    }


def test_an_unknown_object_is_404(client):
    response = client.get("/objects/nobody")

    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_serves_an_object_image_from_the_images_directory(client, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    jpeg, png = encode(textured(1, (32, 24))), encode(textured(2, (32, 24)), "PNG")
    (images / "mona.jpg").write_bytes(jpeg)
    (images / "other.png").write_bytes(png)

    first, second = client.get("/objects/mona/image"), client.get("/objects/other/image")

    assert first.status_code == 200 and first.content == jpeg and first.headers["content-type"] == "image/jpeg"
    assert second.content == png and second.headers["content-type"] == "image/png"
    assert client.get("/objects/nobody/image").status_code == 404


def test_images_are_read_from_a_configured_images_dir(backends, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mona.webp").write_bytes(encode(textured(1, (32, 24)), "WEBP"))

    with gateway(backends, tmp_path, images_dir=elsewhere) as client:
        response = client.get("/objects/mona/image")

    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"


@pytest.mark.parametrize("path", ["/objects/..%2F..%2Fetc%2Fpasswd/image", "/objects/.hidden/image", "/objects/../x"])
def test_object_paths_cannot_escape_the_images_directory(client, tmp_path, path):
    (tmp_path / "secret.jpg").write_bytes(b"secret")

    response = client.get(path)

    assert response.status_code in (404, 422) and b"secret" not in response.content


# --- admin ------------------------------------------------------------------------------------------------------


def admin_form(object_id: str | None = "new-1", image: bytes | None = None, **fields: str):
    data = {"title": "New Work", "artist": "Someone", "date": "2001", **fields}
    if object_id is not None:
        data["object_id"] = object_id
    files = {"image": ("new.jpg", image or encode(textured(9, (160, 120))), "image/jpeg")}
    return {"data": data, "files": files}


KEY = {"X-API-Key": API_KEY}


def test_admin_endpoints_are_forbidden_without_a_configured_key(backends, tmp_path):
    with gateway(backends, tmp_path) as client:
        responses = [
            client.post("/objects", **admin_form(), headers=KEY),
            client.put("/objects/mona", **admin_form(), headers=KEY),
            client.delete("/objects/mona", headers=KEY),
        ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert {r.json()["error"] for r in responses} == {"forbidden"}
    assert backends.calls == []


@pytest.mark.parametrize("headers", [pytest.param({}, id="missing"), pytest.param({"X-API-Key": "guess"}, id="wrong")])
def test_admin_endpoints_need_the_right_key(client, backends, headers):
    responses = [
        client.post("/objects", **admin_form(), headers=headers),
        client.put("/objects/mona", **admin_form(), headers=headers),
        client.delete("/objects/mona", headers=headers),
    ]

    assert [r.status_code for r in responses] == [401, 401, 401]
    assert backends.calls == []


def test_adding_an_object_stores_features_before_it_becomes_findable(client, backends, tmp_path):
    image = encode(textured(9, (160, 120)))

    response = client.post("/objects", **admin_form(image=image, medium="oil on canvas"), headers=KEY)

    assert response.status_code == 201, response.text
    assert response.json()["object_id"] == "new-1" and response.json()["name"] == "New Work"
    assert [(s, m, p) for s, m, p in backends.calls] == [
        ("search", "GET", "/objects/new-1"),
        ("embeddings", "POST", "/embed"),
        ("geometric", "PUT", "/references/new-1"),
        ("search", "PUT", "/objects/new-1"),
    ]
    upserted = backends.body_of("search", "PUT", "/objects/new-1")
    assert upserted["metadata"]["extra"] == {"medium": "oil on canvas"}
    assert upserted["metadata"]["image_file"] == "new-1.jpg"
    assert upserted["vector"] == [1.0, 0.0, 0.0, 0.0]  # the embedding of the whole reference image
    assert (tmp_path / "images" / "new-1.jpg").read_bytes() == image
    assert client.get("/objects/new-1/image").content == image


def test_an_artworks_description_and_link_are_stored_and_shown(client, backends):
    fields = {"description": "Painted in Arles, 1888.", "link": "https://example.org/works/new-1?lang=en"}

    response = client.post("/objects", **admin_form(**fields), headers=KEY)

    assert response.status_code == 201, response.text
    assert {k: response.json()[k] for k in fields} == fields
    upserted = backends.body_of("search", "PUT", "/objects/new-1")["metadata"]
    assert {k: upserted[k] for k in fields} == fields and upserted["extra"] == {}
    assert {k: client.get("/objects/new-1").json()[k] for k in fields} == fields


@pytest.mark.parametrize("link", ["javascript:alert(1)", "/relative/page", "ftp://example.org/x", "https://a b"])
def test_a_link_that_is_not_an_absolute_http_url_is_refused_before_any_backend_call(client, backends, link):
    response = client.post("/objects", **admin_form(link=link), headers=KEY)

    assert response.status_code == 422
    assert response.json()["error"] == "validation_error" and response.json()["details"] == {"field": "link"}
    assert backends.calls == []


def test_patching_changes_only_the_given_catalogue_fields_without_embedding_again(client, backends):
    change = {"title": "  Renamed  ", "description": "Painted in 1890.", "link": "https://example.org/mona"}

    response = client.patch("/objects/mona", json=change, headers=KEY)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["artist"], body["year"]) == ("Renamed", "Painter", "1890")
    assert (body["description"], body["link"]) == ("Painted in 1890.", "https://example.org/mona")
    assert backends.calls == [("search", "GET", "/objects/mona"), ("search", "PUT", "/objects/mona/metadata")]
    assert backends.objects["mona"]["title"] == "Renamed"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        pytest.param({"link": "javascript:alert(1)"}, 422, id="bad-link"),
        pytest.param({"colour": "red"}, 422, id="unknown-field"),
        pytest.param({"title": "x" * 2001}, 422, id="too-long"),
    ],
)
def test_a_bad_patch_is_refused_before_any_backend_call(client, backends, change, status):
    response = client.patch("/objects/mona", json=change, headers=KEY)

    assert response.status_code == status and response.json()["error"] == "validation_error"
    assert backends.calls == []


def test_patching_needs_the_key_and_an_existing_artwork(client, backends):
    assert client.patch("/objects/mona", json={"title": "X"}).status_code == 401
    unknown = client.patch("/objects/nobody", json={"title": "X"}, headers=KEY)

    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_adding_an_existing_object_is_a_409_that_changes_nothing(client, backends):
    response = client.post("/objects", **admin_form(object_id="mona"), headers=KEY)

    assert response.status_code == 409 and response.json()["error"] == "conflict"
    assert backends.calls == [("search", "GET", "/objects/mona")]


def test_put_replaces_an_existing_object_and_creates_a_missing_one(client, backends):
    replaced = client.put("/objects/mona", **admin_form(object_id=None, title="Renamed"), headers=KEY)
    created = client.put("/objects/fresh", **admin_form(object_id=None), headers=KEY)

    assert replaced.status_code == 200 and replaced.json()["name"] == "Renamed"
    assert created.status_code == 201
    assert backends.objects["mona"]["title"] == "Renamed" and "fresh" in backends.objects
    mona = [(m, p) for s, m, p in backends.calls if p.endswith("/mona")]
    assert mona == [("GET", "/objects/mona"), ("PUT", "/references/mona"), ("PUT", "/objects/mona")]


def test_a_failed_replacement_restores_the_previous_image_and_features(client, backends, tmp_path):
    old = encode(textured(3, (160, 120)))
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "mona.jpg").write_bytes(old)
    reject_put = error(503, "not_ready")
    backends.fail["search /objects/mona"] = lambda r: reject_put(r) if r.method == "PUT" else backends._search(r, None)

    response = client.put("/objects/mona", **admin_form(object_id=None, title="Renamed"), headers=KEY)

    assert response.status_code == 503
    assert (tmp_path / "images" / "mona.jpg").read_bytes() == old
    puts = [
        b for (s, m, p), b in zip(backends.calls, backends.bodies, strict=True) if (m, p) == ("PUT", "/references/mona")
    ]
    assert len(puts) == 2  # the new features, then the old ones back
    assert client.get("/objects/mona/image").content == old


def test_deleting_makes_the_object_unfindable_before_dropping_its_features_and_image(client, backends, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "mona.jpg").write_bytes(b"jpeg")

    response = client.delete("/objects/mona", headers=KEY)

    assert response.status_code == 200 and response.json() == {"deleted": "mona"}
    assert backends.calls == [("search", "DELETE", "/objects/mona"), ("geometric", "DELETE", "/references/mona")]
    assert not (tmp_path / "images" / "mona.jpg").exists()


def test_deleting_an_unknown_object_is_404_and_touches_nothing_else(client, backends):
    response = client.delete("/objects/nobody", headers=KEY)

    assert response.status_code == 404
    assert backends.calls == [("search", "DELETE", "/objects/nobody")]


def test_a_failed_add_rolls_back_the_image_and_features(client, backends, tmp_path):
    backends.fail["search /objects/new-1"] = lambda request: (
        error(500, "disk full")(request) if request.method == "PUT" else error(404, "not_found")(request)
    )

    response = client.post("/objects", **admin_form(), headers=KEY)

    assert response.status_code == 502
    assert ("geometric", "DELETE", "/references/new-1") in backends.calls
    assert not list((tmp_path / "images").glob("new-1.*"))


@pytest.mark.parametrize("object_id", ["../x", "..", ".", "a/b", "-lead", "x" * 129, "", "abc\n"])
def test_invalid_object_ids_are_rejected_before_any_backend_call(client, backends, tmp_path, object_id):
    response = client.post("/objects", **admin_form(object_id=object_id), headers=KEY)

    assert response.status_code == 422, response.text
    assert backends.calls == []
    assert not (tmp_path / "images").exists() or not list((tmp_path / "images").iterdir())


def test_an_admin_upload_that_is_not_an_image_is_400_before_any_backend_call(client, backends):
    response = client.post("/objects", **admin_form(image=b"not an image at all"), headers=KEY)

    assert response.status_code == 400 and backends.calls == []


# --- observability ----------------------------------------------------------------------------------------------


def test_the_request_id_reaches_every_backend_and_comes_back(client, backends, photo):
    response = client.post("/identify", json={"image": b64(photo)}, headers={"X-Request-ID": "visitor-photo-1"})

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "visitor-photo-1"
    services = {s for s, _, _ in backends.calls}
    assert services == {"embeddings", "search", "geometric"}
    assert {h.get("x-request-id") for h in backends.headers} == {"visitor-photo-1"}


def test_a_generated_request_id_is_the_one_the_backends_saw(client, backends, photo):
    response = client.post("/identify", json={"image": b64(photo)})

    assert {h.get("x-request-id") for h in backends.headers} == {response.headers["x-request-id"]}


def test_gateway_metrics_report_answers_circuits_and_refusals(backends, tmp_path, photo):
    with gateway(backends, tmp_path, rate_limit_per_minute=1, rate_limit_burst=1) as client:
        client.post("/identify", json={"image": b64(photo)})
        client.post("/identify", json={"image": b64(photo)})
        text = client.get("/metrics").text

    assert 'gateway_identify_answers_total{outcome="match"} 1.0' in text
    assert "gateway_rate_limited_total 1.0" in text
    assert 'gateway_circuit_open{backend="embeddings"} 0.0' in text
    assert 'http_requests_total{method="POST",route="/identify",status="429"} 1.0' in text


def test_openapi_documents_both_identify_bodies(client):
    document = client.get("/schema/openapi.json").json()

    body = document["paths"]["/identify"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/IdentifyRequest"}
    assert body["multipart/form-data"]["schema"]["required"] == ["image"]
    assert document["components"]["schemas"]["IdentifyOptions"]["additionalProperties"] is False
    assert "multipart/form-data" in document["paths"]["/objects"]["post"]["requestBody"]["content"]


# --- collection report ------------------------------------------------------------------------------------------


def test_the_collection_report_needs_the_admin_key_and_says_how_to_make_one(client):
    assert client.get("/collection/report").status_code == 401

    missing = client.get("/collection/report", headers=KEY)

    assert missing.status_code == 404 and missing.json()["details"] == {"reason": "missing"}
    assert "index doctor" in missing.json()["message"]


def test_the_collection_report_is_served_as_index_doctor_saved_it(client, tmp_path):
    report = CollectionReport(
        generated_at="2026-12-04T05:00:00+00:00",
        objects=2,
        thresholds=Thresholds(),
        counts={"near_duplicate": 2},
        artworks=[ArtworkFinding("mona", "Title mona", [Flag.NEAR_DUPLICATE], {"near_duplicate": "same"}, ["other"])],
        pairs=[PairFinding(Flag.NEAR_DUPLICATE, "mona", "other", 0.97, 120)],
    )
    write_report(tmp_path, report)

    body = client.get("/collection/report", headers=KEY).json()

    assert body["pairs"] == [{"flag": "near_duplicate", "a": "mona", "b": "other", "similarity": 0.97, "inliers": 120}]
    assert body["artworks"][0]["flags"] == ["near_duplicate"] and body["objects"] == 2
    (tmp_path / "report.json").write_text("not json")
    broken = client.get("/collection/report", headers=KEY)
    assert broken.status_code == 404 and broken.json()["details"] == {"reason": "unreadable"}
