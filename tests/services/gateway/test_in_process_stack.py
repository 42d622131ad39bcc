"""The gateway over the real embeddings (fake model), search and geometric apps, in process through ASGI.

Everything but the model and the sockets is real: admin uploads reach the index and the feature store, and a
visitor's photo is shortlisted by FAISS, verified by ORB + homography and decided on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from PIL import Image
from skimage import data

from services.decision.rule import DecisionParams
from services.embeddings.app import create_app as create_embeddings
from services.embeddings.settings import EmbeddingsSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.clients import EmbeddingsClient, GeometricClient, SearchClient
from services.gateway.settings import GatewaySettings
from services.geometric.app import create_app as create_geometric
from services.geometric.settings import GeometricSettings
from services.search.app import create_app as create_search
from services.search.settings import SearchSettings
from tests.services.fakes import FakeEmbedder, b64, encode, in_frame, textured

KEY = {"X-API-Key": "stack-key"}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[TestClient]:
    backends = {
        "embeddings": create_embeddings(EmbeddingsSettings(), embedder=FakeEmbedder()),
        "search": create_search(SearchSettings(snapshot_dir=tmp_path, reload_interval_s=0)),
        "geometric": create_geometric(GeometricSettings(snapshot_dir=tmp_path, reload_interval_s=0)),
    }
    kinds = {"embeddings": EmbeddingsClient, "search": SearchClient, "geometric": GeometricClient}
    clients = {
        name: kinds[name](
            f"http://{name}",
            timeout_s=30,
            retries=0,
            client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}"),
        )
        for name, app in backends.items()
    }
    settings = GatewaySettings(snapshot_dir=tmp_path, api_key="stack-key")
    with ExitStack() as running:
        for app in backends.values():  # run each backend's start-up (model load, snapshot load)
            running.enter_context(TestClient(app))
        yield running.enter_context(TestClient(create_gateway(settings, **clients, params=DecisionParams())))


def add(client: TestClient, object_id: str, seed: int) -> None:
    response = client.post(
        "/objects",
        data={"object_id": object_id, "title": f"Work {seed}", "artist": "Test Painter"},
        files={"image": (f"{object_id}.png", encode(textured(seed), "PNG"), "image/png")},
        headers=KEY,
    )
    assert response.status_code == 201, response.text


def test_an_added_artwork_is_identified_from_a_photo_with_geometric_verification(stack, tmp_path):
    for object_id, seed in (("first", 20), ("second", 21), ("third", 22)):
        add(stack, object_id, seed)

    response = stack.post("/identify", json={"image": b64(encode(in_frame(textured(21))))})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["match"]["object_id"] == "second" and body["match"]["name"] == "Work 21"
    assert body["match"]["verification_method"] == "geometric" and body["match"]["confidence"] > 0.9
    assert [m["object_id"] for m in body["matches"]] == ["second"]
    assert not body["degraded"]
    assert {p.name for p in tmp_path.iterdir()} >= {"search.npz", "features.npz", "images"}
    assert stack.get("/objects").json()["total"] == 3


def test_a_photo_of_something_else_is_no_match(stack):
    add(stack, "first", 20)
    add(stack, "second", 21)
    # A natural photo: other synthetic pictures share right-angle corners that the uncalibrated default
    # decision can accept as a weak verification.
    coffee = Image.fromarray(data.coffee()).resize((320, 213))

    body = stack.post("/identify", json={"image": b64(encode(in_frame(coffee)))}).json()

    assert body["match"] is None and body["matches"] == []
    assert body["message"] == "no artwork of the collection was recognised in this photo"


def test_a_deleted_artwork_is_no_longer_identified(stack):
    add(stack, "first", 20)
    add(stack, "second", 21)

    assert stack.delete("/objects/second", headers=KEY).status_code == 200
    body = stack.post("/identify", json={"image": b64(encode(in_frame(textured(21))))}).json()

    assert body["match"] is None
    assert stack.get("/objects/second").status_code == 404
    assert stack.get("/objects/second/image").status_code == 404
