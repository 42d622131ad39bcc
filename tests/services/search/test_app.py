"""The search service over HTTP: upsert, search, list, get, delete, validation and snapshot persistence."""

from __future__ import annotations

import numpy as np
import pytest
from litestar.testing import TestClient

from services.common.schemas import ObjectMetadata
from services.search.app import create_app
from services.search.live_index import LiveIndex
from services.search.settings import SearchSettings

D = 8


def unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=D)
    return (v / np.linalg.norm(v)).tolist()


def settings_for(tmp_path, **overrides) -> SearchSettings:
    return SearchSettings(snapshot_dir=tmp_path, reload_interval_s=0, **overrides)


def put(client, object_id: str, vector: list[float], **fields: str):
    body = {"vector": vector, "metadata": {"object_id": object_id, **fields}}
    return client.put(f"/objects/{object_id}", json=body)


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(settings_for(tmp_path))) as c:
        yield c


@pytest.fixture
def stocked(client):
    for i in range(5):
        assert put(client, f"art-{i}", unit(i), title=f"Painting {i}", artist="A. Artist").status_code == 200
    return client


def test_upsert_then_search_finds_the_object_first_with_its_metadata(stocked):
    response = stocked.post("/search", json={"vectors": [unit(3), unit(1)], "k": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["index_size"] == 5
    first, second = body["results"]
    assert [h["rank"] for h in first] == [1, 2]
    assert first[0]["object_id"] == "art-3" and first[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert first[0]["metadata"]["title"] == "Painting 3"
    assert second[0]["object_id"] == "art-1"
    assert first[0]["score"] >= first[1]["score"]


def test_search_of_an_empty_collection_answers_empty_results(client):
    response = client.post("/search", json={"vectors": [unit(0)], "k": 3})

    assert response.status_code == 200
    assert response.json()["results"] == [[]] and response.json()["index_size"] == 0


def test_upserting_an_existing_id_replaces_it(stocked):
    assert put(stocked, "art-0", unit(42), title="Replaced").status_code == 200

    assert stocked.get("/objects").json()["total"] == 5
    hits = stocked.post("/search", json={"vectors": [unit(42)], "k": 5}).json()["results"][0]
    assert hits[0]["object_id"] == "art-0" and hits[0]["metadata"]["title"] == "Replaced"
    assert [h["object_id"] for h in hits].count("art-0") == 1


def test_get_and_list_objects(stocked):
    assert stocked.get("/objects/art-2").json()["title"] == "Painting 2"
    page = stocked.get("/objects", params={"offset": 1, "limit": 2}).json()
    assert page["total"] == 5 and page["offset"] == 1 and page["limit"] == 2
    assert [o["object_id"] for o in page["objects"]] == ["art-1", "art-2"]


def test_replacing_metadata_keeps_the_vector_and_is_saved(stocked, tmp_path):
    new = {"object_id": "art-3", "title": "Renamed", "description": "Oil on wood.", "link": "https://example.org/3"}

    response = stocked.put("/objects/art-3/metadata", json=new)

    assert response.status_code == 200 and response.json()["title"] == "Renamed"
    hits = stocked.post("/search", json={"vectors": [unit(3)], "k": 1}).json()["results"][0]
    assert hits[0]["object_id"] == "art-3" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert hits[0]["metadata"]["description"] == "Oil on wood."
    with TestClient(create_app(settings_for(tmp_path))) as again:
        assert again.get("/objects/art-3").json()["link"] == "https://example.org/3"


def test_replacing_the_metadata_of_an_unknown_or_mismatched_object_changes_nothing(stocked):
    unknown = stocked.put("/objects/nobody/metadata", json={"object_id": "nobody", "title": "X"})
    mismatched = stocked.put("/objects/art-1/metadata", json={"object_id": "art-2", "title": "X"})
    bad_link = stocked.put("/objects/art-1/metadata", json={"object_id": "art-1", "link": "javascript:alert(1)"})

    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert mismatched.status_code == 422 and bad_link.status_code in (400, 422)
    assert stocked.get("/objects/art-1").json()["title"] == "Painting 1"


def test_delete_removes_the_object_from_results_and_catalogue(stocked):
    response = stocked.delete("/objects/art-3")

    assert response.status_code == 200 and response.json() == {"deleted": "art-3"}
    assert stocked.get("/objects/art-3").status_code == 404
    hits = stocked.post("/search", json={"vectors": [unit(3)], "k": 10}).json()["results"][0]
    assert "art-3" not in {h["object_id"] for h in hits} and len(hits) == 4


@pytest.mark.parametrize("call", ["get", "delete"])
def test_unknown_object_is_a_404(stocked, call):
    response = getattr(stocked, call)("/objects/nobody")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response.json()["details"] == {"object_id": "nobody"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"vectors": [unit(0)], "k": 101}, id="k-over-100"),
        pytest.param({"vectors": [unit(0)], "k": 0}, id="k-zero"),
        pytest.param({"vectors": [], "k": 1}, id="no-vectors"),
        pytest.param({"vectors": [unit(0)[:-1]], "k": 1}, id="wrong-dimension"),
        pytest.param({"vectors": [[2.0] * D], "k": 1}, id="not-normalised"),
        pytest.param({"vectors": [unit(0), unit(1)[:4]], "k": 1}, id="ragged"),
        pytest.param({"vectors": [unit(0)], "k": 1, "extra": 1}, id="unknown-field"),
    ],
)
def test_invalid_search_requests_are_422(stocked, body):
    response = stocked.post("/search", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"


def test_upsert_of_a_vector_of_the_wrong_dimension_is_422_and_changes_nothing(stocked):
    response = put(stocked, "odd", [1.0, 0.0, 0.0])

    assert response.status_code == 422
    assert stocked.get("/objects/odd").status_code == 404


def test_upsert_needs_the_path_id_to_match_the_metadata(client):
    response = client.put("/objects/a", json={"vector": unit(0), "metadata": {"object_id": "b"}})

    assert response.status_code == 422
    assert response.json()["details"] == {"path": "a", "metadata": "b"}


@pytest.mark.parametrize("object_id", ["-starts-with-dash", "has space", "x" * 129])
def test_invalid_object_ids_are_rejected(client, object_id):
    response = put(client, object_id, unit(0))

    assert response.status_code in (404, 422) and response.status_code != 500


def test_an_empty_vector_is_a_client_error_not_a_500(client):
    response = put(client, "empty", [])

    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_a_rejected_first_vector_does_not_fix_the_collection_dimension(client):
    assert put(client, "bad", [3.0, 4.0]).status_code == 422

    assert put(client, "good", unit(0)).status_code == 200
    assert client.get("/health").json()["checks"] == {"index_size": 1, "dimension": D}


def test_health_and_info_describe_the_index(stocked, tmp_path):
    health = stocked.get("/health").json()
    info = stocked.get("/info").json()

    assert health["status"] == "healthy" and health["service"] == "search"
    assert health["checks"] == {"index_size": 5, "dimension": D}
    assert info["index"]["size"] == 5 and info["index"]["kind"] == "auto" and info["index"]["compressed"] is False
    assert info["index"]["snapshot"] == str(tmp_path / "search.npz")


def test_changes_are_persisted_and_loaded_by_a_second_instance(stocked, tmp_path):
    stocked.delete("/objects/art-4")

    with TestClient(create_app(settings_for(tmp_path))) as second:
        assert second.get("/objects").json()["total"] == 4
        assert second.get("/objects/art-1").json()["artist"] == "A. Artist"
        assert second.get("/objects/art-4").status_code == 404
        hits = second.post("/search", json={"vectors": [unit(2)], "k": 1}).json()["results"][0]
        assert hits[0]["object_id"] == "art-2"


def test_without_autosave_nothing_is_written_until_save_is_called(tmp_path):
    with TestClient(create_app(settings_for(tmp_path, autosave=False))) as client:
        put(client, "a", unit(0))
        assert not (tmp_path / "search.npz").exists()

        response = client.post("/snapshot/save")

        assert response.status_code == 200 and response.json()["size"] == 1
        assert (tmp_path / "search.npz").exists()


def test_reload_picks_up_a_snapshot_written_by_another_catalog(stocked, tmp_path):
    assert stocked.post("/snapshot/reload").json() == {"reloaded": False, "size": 5}
    writer = LiveIndex(tmp_path / "search.npz")
    writer.load()
    writer.upsert(unit(77), ObjectMetadata(object_id="from-writer", title="Elsewhere"))
    writer.remove("art-0")

    response = stocked.post("/snapshot/reload")

    assert response.status_code == 200 and response.json() == {"reloaded": True, "size": 5}
    assert stocked.get("/objects/from-writer").json()["title"] == "Elsewhere"
    assert stocked.get("/objects/art-0").status_code == 404
    assert stocked.post("/search", json={"vectors": [unit(77)], "k": 1}).json()["results"][0][0]["object_id"] == (
        "from-writer"
    )


def test_a_corrupt_snapshot_on_reload_keeps_the_loaded_state(stocked, tmp_path):
    (tmp_path / "search.npz").write_bytes(b"garbage")

    response = stocked.post("/snapshot/reload")

    assert response.status_code >= 500 and set(response.json()) == {"error", "message", "details"}
    assert stocked.get("/objects").json()["total"] == 5
    assert stocked.post("/search", json={"vectors": [unit(1)], "k": 1}).json()["results"][0][0]["object_id"] == "art-1"


def test_hits_always_carry_metadata_while_objects_are_removed_and_added_concurrently(tmp_path):
    import threading

    catalog = LiveIndex(tmp_path / "search.npz", autosave=False)
    with TestClient(create_app(settings_for(tmp_path), catalog=catalog)) as client:
        for i in range(20):
            put(client, f"art-{i}", unit(i), title=f"Painting {i}")
        stop = threading.Event()

        def churn() -> None:
            n = 0
            while not stop.is_set():
                object_id = f"art-{n % 20}"
                catalog.remove(object_id)
                catalog.upsert(unit(n % 20), ObjectMetadata(object_id=object_id, title=f"Painting {n % 20}"))
                n += 1

        worker = threading.Thread(target=churn)
        worker.start()
        try:
            hits = []
            for i in range(150):
                body = client.post("/search", json={"vectors": [unit(i % 20)], "k": 20}).json()
                hits.extend(body["results"][0])
        finally:
            stop.set()
            worker.join()

    assert hits
    assert all(h["metadata"] is not None and h["metadata"]["object_id"] == h["object_id"] for h in hits)


def test_metrics_report_the_index_size(stocked):
    stocked.delete("/objects/art-0")

    text = stocked.get("/metrics").text

    assert "search_index_size 4.0" in text
    assert 'http_requests_total{method="PUT",route="/objects/{object_id}",status="200"} 5.0' in text


def test_included_objects_are_scored_whatever_their_rank(stocked):
    queries = [unit(0), unit(1)]
    response = stocked.post("/search", json={"vectors": queries, "k": 1, "include": ["art-4", "nope", "art-2"]})

    assert response.status_code == 200
    body = response.json()
    assert [row[0]["object_id"] for row in body["results"]] == ["art-0", "art-1"]
    included = body["included"]
    assert [(h["object_id"], h["rank"], h["metadata"]["title"]) for h in included] == [
        ("art-4", 0, "Painting 4"),
        ("art-2", 0, "Painting 2"),
    ]
    for hit in included:
        stored = np.array(unit(int(hit["object_id"][-1])))
        assert hit["score"] == pytest.approx(max(float(np.dot(q, stored)) for q in queries), abs=1e-5)


def test_search_without_include_answers_no_included_objects(stocked):
    assert stocked.post("/search", json={"vectors": [unit(0)], "k": 2}).json()["included"] == []


def test_included_ids_outside_the_id_alphabet_are_refused(stocked):
    response = stocked.post("/search", json={"vectors": [unit(0)], "k": 2, "include": ["../etc"]})

    assert response.status_code in (400, 422) and response.json()["error"] == "validation_error"
