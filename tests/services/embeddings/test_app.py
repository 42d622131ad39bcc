"""The embeddings service over HTTP with a deterministic fake model: shapes, regions and input errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image

from services.embeddings.app import create_app
from services.embeddings.settings import EmbeddingsSettings
from tests.services.fakes import FakeEmbedder, b64, encode, textured


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def client(embedder):
    with TestClient(create_app(EmbeddingsSettings(max_images=8), embedder=embedder)) as c:
        yield c


@pytest.fixture(scope="module")
def pictures() -> list[Image.Image]:
    return [textured(seed, (96, 64)) for seed in range(3)]


def expected(images: list[Image.Image]) -> np.ndarray:
    """What the model gives for these images when called directly."""
    return FakeEmbedder().embed(images)


def test_health_reports_the_loaded_model(client, embedder):
    body = client.get("/health").json()

    assert embedder.loaded
    assert body["status"] == "healthy" and body["service"] == "embeddings"
    assert body["checks"] == {"model_loaded": True, "model": "fake-thumbnail"}


def test_info_names_the_model_and_its_dimension(client):
    info = client.get("/info").json()

    assert info["model"] == {"name": "fake-thumbnail", "dimension": 65, "preprocessing": ""}
    assert info["settings"]["max_images"] == 8


def test_embeds_one_image_as_one_normalised_row(client, embedder, pictures):
    png = encode(pictures[0], "PNG")

    response = client.post("/embed", json={"image": b64(png)})

    assert response.status_code == 200
    body = response.json()
    assert body["dimension"] == 65 and body["per_image"] == 1 and body["model"] == "fake-thumbnail"
    vectors = np.asarray(body["embeddings"], dtype=np.float32)
    assert vectors.shape == (1, 65)
    np.testing.assert_allclose(vectors, expected([pictures[0]]), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert body["processing_time_ms"] >= 0


def test_accepts_a_data_url_prefix(client, pictures):
    response = client.post("/embed", json={"image": "data:image/png;base64," + b64(encode(pictures[0], "PNG"))})

    assert response.status_code == 200


def test_embeds_a_batch_in_request_order(client, embedder, pictures):
    response = client.post("/embed", json={"images": [b64(encode(p, "PNG")) for p in pictures]})

    vectors = np.asarray(response.json()["embeddings"], dtype=np.float32)
    assert vectors.shape == (3, 65)
    np.testing.assert_allclose(vectors, expected(pictures), atol=1e-6)
    assert embedder.calls == [3]  # one call to the model for the whole batch


def test_regions_give_per_image_rows_image_major(client, embedder, pictures):
    regions = [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5], [0.5, 0.25, 1.0, 1.0]]
    images = pictures[:2]

    response = client.post("/embed", json={"images": [b64(encode(p, "PNG")) for p in images], "regions": regions})

    body = response.json()
    assert body["per_image"] == 3
    vectors = np.asarray(body["embeddings"], dtype=np.float32)
    assert vectors.shape == (6, 65)
    crops = []
    for image in images:
        w, h = image.size
        crops += [image, image.crop((0, 0, w // 2, h // 2)), image.crop((w // 2, h // 4, w, h))]
    np.testing.assert_allclose(vectors, expected(crops), atol=1e-6)


def test_invalid_base64_is_a_400(client):
    response = client.post("/embed", json={"image": "not base64 at all!"})

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_bytes_that_are_not_an_image_are_a_400(client):
    response = client.post("/embed", json={"images": [b64(b"%PDF-1.4 not an image")]})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_image"


def test_a_gif_is_415(client, pictures):
    response = client.post("/embed", json={"image": b64(encode(pictures[0], "GIF"))})

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="neither"),
        pytest.param({"image": "AAAA", "images": ["AAAA"]}, id="both"),
        pytest.param({"images": []}, id="empty-batch"),
    ],
)
def test_exactly_one_of_image_or_images_is_required(client, embedder, body):
    response = client.post("/embed", json=body)

    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert embedder.calls == []


def test_more_crops_than_allowed_is_422_before_the_model_runs(client, embedder, pictures):
    data = b64(encode(pictures[0], "PNG"))
    regions = [[0.0, 0.0, 1.0, 1.0]] * 3

    response = client.post("/embed", json={"images": [data] * 3, "regions": regions})  # 9 crops > 8

    assert response.status_code == 422
    assert response.json()["details"] == {"requested": 9, "max": 8}
    assert embedder.calls == []


@pytest.mark.parametrize(
    "region",
    [
        pytest.param([0.5, 0.0, 0.5, 1.0], id="x1-equals-x0"),
        pytest.param([0.6, 0.0, 0.4, 1.0], id="x1-below-x0"),
        pytest.param([0.0, 0.9, 1.0, 0.1], id="y1-below-y0"),
        pytest.param([0.0, 0.0, 0.001, 1.0], id="under-a-pixel"),
        pytest.param([0.0, 0.0, 1.5, 1.0], id="outside-the-image"),
        pytest.param([0.0, 0.0, 1.0], id="three-numbers"),
    ],
)
def test_invalid_regions_are_422(client, embedder, pictures, region):
    response = client.post("/embed", json={"image": b64(encode(pictures[0], "PNG")), "regions": [region]})

    assert response.status_code == 422
    assert embedder.calls == []


def test_unknown_fields_are_422(client):
    response = client.post("/embed", json={"image": "AAAA", "model": "other"})

    assert response.status_code == 422


def test_images_over_the_pixel_limit_are_413(embedder, pictures):
    with TestClient(create_app(EmbeddingsSettings(max_image_pixels=1000), embedder=embedder)) as client:
        response = client.post("/embed", json={"image": b64(encode(pictures[0], "PNG"))})

    assert response.status_code == 413
    assert response.json()["error"] == "image_too_large"


def test_metrics_report_inference_time_and_vectors(client, pictures):
    client.post("/embed", json={"image": b64(encode(pictures[0])), "regions": [[0, 0, 1, 1], [0, 0, 0.5, 0.5]]})

    text = client.get("/metrics").text

    assert "embeddings_inference_seconds_count 1.0" in text
    assert "embeddings_vectors_total 2.0" in text
    assert "embeddings_model_loaded 1.0" in text
    assert 'http_requests_total{method="POST",route="/embed",status="200"} 1.0' in text


class GatedEmbedder(FakeEmbedder):
    """The fake model, but each pass waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.busy = threading.Event()

    def embed(self, images):
        self.busy.set()
        assert self.gate.wait(10), "the test never opened the gate"
        return super().embed(images)


def test_a_full_queue_is_a_503_overloaded_with_retry_after_at_once_and_queued_requests_share_a_pass(pictures):
    embedder = GatedEmbedder()
    body = {"image": b64(encode(pictures[0], "PNG"))}
    with (
        TestClient(create_app(EmbeddingsSettings(max_queue=2), embedder=embedder)) as client,
        ThreadPoolExecutor(3) as pool,
    ):
        running = pool.submit(client.post, "/embed", json=body)
        assert embedder.busy.wait(5)
        queued = [pool.submit(client.post, "/embed", json=body) for _ in range(2)]
        deadline = time.monotonic() + 5
        while "embeddings_queued_requests 2.0" not in client.get("/metrics").text:
            assert time.monotonic() < deadline, "the two requests never queued"
            time.sleep(0.01)

        started = time.perf_counter()
        refused = client.post("/embed", json=body)
        refused_in_s = time.perf_counter() - started
        embedder.gate.set()
        answers = [future.result(10) for future in (running, *queued)]
        metrics = client.get("/metrics").text

    assert refused.status_code == 503 and refused_in_s < 1.0
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "overloaded"
    assert refused.json()["details"] == {"queued": 2, "max_queue": 2, "retry_after_s": 1}
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert embedder.calls == [1, 2], "the two queued requests went through the model in one pass"
    assert "embeddings_forward_passes 2.0" in metrics
