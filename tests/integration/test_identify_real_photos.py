"""The real stack identifies real museum photos: processes, HTTP, model, index, features, decision."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.support import API_KEY, HELD_OUT, read_labels
from tools.cli.identify import identify_file
from tools.cli.local_stack import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(timeout=60) as c:
        yield c


def test_single_painting_wall_photos_are_identified(stack: LocalStack, museum_dev: Path, client: httpx.Client) -> None:
    labels = read_labels(museum_dev)
    photos = sorted(p for p in labels if p.startswith("y2019_qsd2_w1__") and HELD_OUT not in labels[p])
    right = 0
    for photo in photos:
        answer = identify_file(client, stack.url("gateway"), museum_dev / "pictures" / photo)
        right += answer.match is not None and answer.match.object_id in labels[photo]
    assert len(photos) >= 28
    assert right >= len(photos) - 2, f"{right}/{len(photos)} single-painting wall photos identified"


def test_photos_without_artwork_get_no_match(stack: LocalStack, museum_dev: Path, client: httpx.Client) -> None:
    for photo in ("nonart__bikes1.jpg", "nonart__leuven2.jpg"):
        answer = identify_file(client, stack.url("gateway"), museum_dev / "pictures" / photo)
        assert answer.success is True
        assert answer.match is None and answer.matches == []
        assert answer.message


def test_json_base64_request_matches_multipart(stack: LocalStack, museum_dev: Path, client: httpx.Client) -> None:
    photo = museum_dev / "pictures" / "y2019_qsd2_w1__00000.jpg"
    expected = read_labels(museum_dev)[photo.name]
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()
    response = client.post(
        stack.url("gateway") + "/identify",
        json={"image": data_url, "options": {"k": 5, "include_alternatives": True}},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["match"]["object_id"] in expected
    assert body["match"]["verification_method"] == "geometric"
    assert 0.0 <= body["match"]["confidence"] <= 1.0
    assert isinstance(body["alternatives"], list)
    assert set(body["timing"]) == {"embedding_ms", "search_ms", "geometric_ms", "total_ms"}


def test_bad_input_is_a_client_error(stack: LocalStack, client: httpx.Client) -> None:
    url = stack.url("gateway") + "/identify"
    assert client.post(url, json={"image": "not base64!"}).json()["error"] == "bad_request"
    assert client.post(url, json={"image": base64.b64encode(b"GIF89a....").decode()}).status_code == 400
    assert client.post(url, json={"image": "", "options": {"k": 0}}).status_code == 422
    assert client.post(url, content=b"x", headers={"content-type": "text/plain"}).status_code == 415


def test_health_rolls_up_the_backends(stack: LocalStack, client: httpx.Client) -> None:
    body = client.get(stack.url("gateway") + "/health", params={"check_backends": "true"}).json()
    assert body["status"] == "healthy"
    assert set(body["checks"]) == {"embeddings", "search", "geometric"}


def test_admin_adds_an_artwork_that_is_then_recognised_and_deleted(
    stack: LocalStack, museum_dev: Path, client: httpx.Client
) -> None:
    gateway = stack.url("gateway")
    photo = (
        museum_dev
        / "pictures"
        / next(p for p, ids in sorted(read_labels(museum_dev).items()) if ids == [HELD_OUT] and "qsd2_w1" in p)
    )
    before = identify_file(client, gateway, photo)
    assert before.match is None or before.match.object_id != HELD_OUT

    image = (museum_dev / "objects" / f"{HELD_OUT}.jpg").read_bytes()
    fields = {"object_id": HELD_OUT, "title": "Held-out painting", "artist": "Test Artist", "date": "1901"}
    files = {"image": ("ref.jpg", image, "image/jpeg")}
    assert client.post(gateway + "/objects", data=fields, files=files).status_code == 401
    created = client.post(gateway + "/objects", data=fields, files=files, headers={"X-API-Key": API_KEY})
    assert created.status_code == 201, created.text
    again = client.post(gateway + "/objects", data=fields, files=files, headers={"X-API-Key": API_KEY})
    assert again.status_code == 409

    after = identify_file(client, gateway, photo)
    assert after.match is not None and after.match.object_id == HELD_OUT
    assert after.match.name == "Held-out painting"
    assert client.get(gateway + f"/objects/{HELD_OUT}/image").content == image

    deleted = client.delete(gateway + f"/objects/{HELD_OUT}", headers={"X-API-Key": API_KEY})
    assert deleted.status_code == 200
    gone = identify_file(client, gateway, photo)
    assert gone.match is None or gone.match.object_id != HELD_OUT
    assert client.get(gateway + f"/objects/{HELD_OUT}").status_code == 404
