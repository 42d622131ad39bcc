"""The geometric service over HTTP with real ORB on seeded synthetic pictures: references, extract, match."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from litestar.testing import TestClient

from services.collection.features import DESCRIPTOR_SIZE, FeatureStore
from services.common.arrays import encode_array
from services.geometric.app import create_app
from services.geometric.settings import GeometricSettings
from services.geometric.verify import VerifyParams
from tests.services.fakes import b64, encode, in_frame, textured

# in_frame() pastes the 320x240 reference at 0.8 scale at (30, 20) on a 400x300 wall.
EXPECTED_BOX = (30 / 400, 20 / 300, (30 + 256) / 400, (20 + 192) / 300)


@pytest.fixture(scope="module")
def reference_a() -> str:
    return b64(encode(textured(10), "PNG"))


@pytest.fixture(scope="module")
def reference_b() -> str:
    return b64(encode(textured(11), "PNG"))


@pytest.fixture(scope="module")
def photo_of_a() -> str:
    return b64(encode(in_frame(textured(10))))


def settings_for(tmp_path, **overrides) -> GeometricSettings:
    return GeometricSettings(snapshot_dir=tmp_path, reload_interval_s=0, **overrides)


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(settings_for(tmp_path, max_keypoints=2000))) as c:
        yield c


@pytest.fixture
def stocked(client, reference_a, reference_b):
    for object_id, image in (("ref-a", reference_a), ("ref-b", reference_b)):
        response = client.put(f"/references/{object_id}", json={"image": image})
        assert response.status_code == 200, response.text
    return client


def test_put_reference_stores_its_features(client, reference_a):
    response = client.put("/references/ref-a", json={"image": reference_a})

    assert response.status_code == 200
    body = response.json()
    assert body["reference_id"] == "ref-a" and body["count"] > 100
    assert client.get("/references/ref-a").json() == body
    assert client.get("/health").json()["checks"] == {"references": 1}


def test_extract_answers_decodable_features_in_the_image_frame(client, photo_of_a):
    response = client.post("/extract", json={"image": photo_of_a})

    assert response.status_code == 200
    features = response.json()["features"]
    assert (features["width"], features["height"]) == (400, 300)
    count = features["count"]
    assert count > 100
    keypoints = np.frombuffer(base64.b64decode(features["keypoints"]), "<f4").reshape(count, 2)
    assert len(base64.b64decode(features["descriptors"])) == count * DESCRIPTOR_SIZE
    assert (keypoints >= 0).all() and (keypoints[:, 0] <= 400).all() and (keypoints[:, 1] <= 300).all()


def test_match_by_image_verifies_a_photo_of_the_reference_and_locates_it(stocked, photo_of_a):
    response = stocked.post("/match", json={"reference_id": "ref-a", "image": photo_of_a})

    assert response.status_code == 200
    result = response.json()
    assert result["reference_id"] == "ref-a" and result["verified"] is True and result["reason"] is None
    assert result["inliers"] >= 50 and result["inliers"] <= result["good_matches"]
    assert 0.5 < result["score"] < 1.0
    assert len(result["homography"]) == 9
    assert result["query_box"] == pytest.approx(EXPECTED_BOX, abs=0.02)


def test_match_by_features_gives_the_same_answer_as_by_image(stocked, photo_of_a):
    features = stocked.post("/extract", json={"image": photo_of_a}).json()["features"]

    by_features = stocked.post("/match", json={"reference_id": "ref-a", "query": features}).json()
    by_image = stocked.post("/match", json={"reference_id": "ref-a", "image": photo_of_a}).json()

    assert by_features["verified"] and by_image["verified"]
    assert by_features["good_matches"] == by_image["good_matches"]
    assert by_features["query_box"] == pytest.approx(by_image["query_box"], abs=0.02)


def test_a_photo_of_another_picture_does_not_verify(stocked, photo_of_a):
    result = stocked.post("/match", json={"reference_id": "ref-b", "image": photo_of_a}).json()

    assert result["verified"] is False
    assert result["reason"] in {"too_few_matches", "no_homography", "degenerate_homography", "too_few_inliers"}


def test_match_batch_answers_in_request_order_with_unknown_references_named(stocked, photo_of_a):
    features = stocked.post("/extract", json={"image": photo_of_a}).json()["features"]
    ids = ["ghost", "ref-b", "ref-a"]

    for query in ({"query": features}, {"image": photo_of_a}):
        response = stocked.post("/match/batch", json={"reference_ids": ids, **query})

        assert response.status_code == 200
        results = response.json()["results"]
        assert [r["reference_id"] for r in results] == ids
        ghost, b, a = results
        assert ghost["verified"] is False and ghost["reason"] == "unknown_reference" and ghost["inliers"] == 0
        assert b["verified"] is False
        assert a["verified"] is True


def test_match_against_an_unknown_reference_is_a_valid_unverified_answer(client, photo_of_a):
    response = client.post("/match", json={"reference_id": "nobody", "image": photo_of_a})

    assert response.status_code == 200
    assert response.json()["reason"] == "unknown_reference"


def test_a_blank_photo_is_a_valid_answer_with_too_few_matches(stocked):
    blank = b64(encode(in_frame(textured(10), scale=0.01)))

    result = stocked.post("/match", json={"reference_id": "ref-a", "image": blank}).json()

    assert result["verified"] is False and result["reason"] == "too_few_matches"


def test_delete_reference_forgets_it(stocked, photo_of_a):
    assert stocked.delete("/references/ref-a").json() == {"deleted": "ref-a"}

    assert stocked.get("/references/ref-a").status_code == 404
    assert stocked.delete("/references/ref-a").status_code == 404
    result = stocked.post("/match", json={"reference_id": "ref-a", "image": photo_of_a}).json()
    assert result["reason"] == "unknown_reference"


def test_features_are_persisted_to_the_snapshot_file(stocked, tmp_path):
    stored = FeatureStore.load(tmp_path / "features.npz")

    assert sorted(stored.ids()) == ["ref-a", "ref-b"]
    assert len(stored.get("ref-a")) == stocked.get("/references/ref-a").json()["count"]

    stocked.delete("/references/ref-b")
    assert FeatureStore.load(tmp_path / "features.npz").ids() == ["ref-a"]


def test_a_second_instance_loads_the_stored_references(stocked, tmp_path, photo_of_a):
    count = stocked.get("/references/ref-a").json()["count"]

    with TestClient(create_app(settings_for(tmp_path))) as second:
        assert second.get("/health").json()["checks"] == {"references": 2}
        assert second.get("/references/ref-a").json()["count"] == count
        assert second.post("/match", json={"reference_id": "ref-a", "image": photo_of_a}).json()["verified"]


def _features(n: int, **overrides) -> dict:
    """Wire features of ``n`` random keypoints, with some fields overridden."""
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, 100, (n, 2)).astype(np.float32)
    descriptors = rng.integers(0, 256, (n, DESCRIPTOR_SIZE), dtype=np.uint8)
    body = {
        "keypoints": encode_array(keypoints),
        "descriptors": encode_array(descriptors),
        "count": n,
        "width": 100,
        "height": 100,
    }
    return {**body, **overrides}


def test_well_formed_client_features_are_accepted(stocked):
    response = stocked.post("/match", json={"reference_id": "ref-a", "query": _features(10)})

    assert response.status_code == 200 and response.json()["verified"] is False


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(_features(10, keypoints="***not base64***"), id="bad-base64"),
        pytest.param(_features(10, count=11), id="byte-count-does-not-fit-count"),
        pytest.param(_features(10, descriptors=encode_array(np.zeros((10, 16), np.uint8))), id="short-descriptors"),
        pytest.param(_features(10, width=0), id="zero-width"),
        pytest.param(_features(10, count=-1), id="negative-count"),
        pytest.param(_features(3000), id="over-max-keypoints"),
        pytest.param(
            _features(2, keypoints=encode_array(np.array([[np.nan, 1.0], [2.0, 3.0]], np.float32))), id="nan-keypoint"
        ),
        pytest.param({**_features(10), "scale": 2}, id="unknown-field"),
    ],
)
def test_invalid_client_features_are_422(stocked, query):
    response = stocked.post("/match", json={"reference_id": "ref-a", "query": query})

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"reference_id": "ref-a"}, id="neither"),
        pytest.param({"reference_id": "ref-a", "query": _features(10), "image": "AAAA"}, id="both"),
    ],
)
def test_a_match_needs_exactly_one_of_query_or_image(stocked, body):
    response = stocked.post("/match", json=body)

    assert response.status_code == 422
    assert response.json()["details"] == {"fields": ["query", "image"]}


def test_match_batch_needs_at_least_one_and_at_most_100_references(stocked, photo_of_a):
    for ids in ([], [f"r{i}" for i in range(101)]):
        response = stocked.post("/match/batch", json={"reference_ids": ids, "image": photo_of_a})
        assert response.status_code == 422


@pytest.mark.parametrize(
    "image, status, code",
    [
        pytest.param(b64(b"definitely not an image"), 400, "invalid_image", id="not-an-image"),
        pytest.param("@@@", 400, "bad_request", id="bad-base64"),
        pytest.param(b64(encode(textured(1, (64, 48)), "GIF")), 415, "unsupported_media_type", id="gif"),
    ],
)
def test_bad_images_are_client_errors_and_store_nothing(client, tmp_path, image, status, code):
    response = client.put("/references/ref-x", json={"image": image})

    assert response.status_code == status and response.json()["error"] == code
    assert client.get("/references/ref-x").status_code == 404
    assert not (tmp_path / "features.npz").exists()
    assert client.post("/extract", json={"image": image}).status_code == status


@pytest.mark.parametrize("object_id", ["..%2Fescape", "-dash-first", "a%20b"])
def test_reference_ids_outside_the_id_alphabet_are_refused(client, tmp_path, reference_a, object_id):
    response = client.put(f"/references/{object_id}", json={"image": reference_a})

    assert response.status_code in (400, 404, 422), response.text
    assert list(tmp_path.iterdir()) == []


def test_metrics_report_the_stored_references(client, reference_a, reference_b):
    client.put("/references/a", json={"image": reference_a})
    client.put("/references/b", json={"image": reference_b})

    assert "geometric_references 2.0" in client.get("/metrics").text


def test_extract_adds_the_finer_feature_set_only_when_asked(client):
    photo = b64(encode(textured(12, size=(1280, 960))))

    plain = client.post("/extract", json={"image": photo}).json()
    both = client.post("/extract", json={"image": photo, "fine": True}).json()

    assert plain.get("fine") is None
    assert both["features"] == plain["features"]
    params = VerifyParams()  # the service's extraction settings: the photo is 4:3
    assert (plain["features"]["width"], plain["features"]["height"]) == (params.max_side, params.max_side * 3 // 4)
    fine = both["fine"]
    assert (fine["width"], fine["height"]) == (params.fine_max_side, params.fine_max_side * 3 // 4)
    assert plain["features"]["count"] < fine["count"] <= params.fine_features


def test_match_batch_takes_the_finer_set_and_marks_only_results_it_changed(stocked, photo_of_a):
    extracted = stocked.post("/extract", json={"image": photo_of_a, "fine": True}).json()
    body = {"reference_ids": ["ref-a", "ref-b"], "query": extracted["features"], "fine_query": extracted["fine"]}

    results = stocked.post("/match/batch", json={**body, "fine_first": 2}).json()["results"]

    a, b = results
    assert a["verified"] and not a["fine"]  # verified on the standard set: kept as it was
    assert not b["verified"] and not b["fine"]  # another picture: the finer set does not verify it either
    too_many = stocked.post("/match/batch", json={**body, "fine_first": 101})
    assert too_many.status_code == 422


def test_extract_shortlists_the_reference_a_photo_shows_only_when_asked(stocked, photo_of_a):
    plain = stocked.post("/extract", json={"image": photo_of_a}).json()
    voted = stocked.post("/extract", json={"image": photo_of_a, "shortlist": 5}).json()

    assert plain["shortlist"] == []
    assert voted["shortlist"][0]["reference_id"] == "ref-a" and voted["shortlist"][0]["votes"] >= 20
    assert all(v["votes"] < voted["shortlist"][0]["votes"] for v in voted["shortlist"][1:])
    stored = sum(stocked.get(f"/references/{i}").json()["count"] for i in ("ref-a", "ref-b"))
    assert stocked.get("/info").json()["vote_index"] == {"kind": "flat", "descriptors": stored}


def test_a_deleted_reference_is_no_longer_shortlisted(stocked, photo_of_a):
    stocked.delete("/references/ref-a")

    voted = stocked.post("/extract", json={"image": photo_of_a, "shortlist": 5}).json()

    assert all(v["reference_id"] != "ref-a" for v in voted["shortlist"])


@pytest.mark.parametrize("shortlist", [-1, 101])
def test_a_shortlist_outside_0_to_100_is_refused(client, photo_of_a, shortlist):
    response = client.post("/extract", json={"image": photo_of_a, "shortlist": shortlist})

    assert response.status_code in (400, 422) and response.json()["error"] == "validation_error"


def test_the_references_the_app_made_are_closed_at_shutdown_and_given_ones_are_not(tmp_path, monkeypatch):
    from services.geometric.app import STATE_KEY
    from services.geometric.references import References

    closed: list[References] = []
    monkeypatch.setattr(References, "close", lambda self: closed.append(self))
    made_app = create_app(settings_for(tmp_path / "made", verify_threads=2))
    with TestClient(made_app):
        made = made_app.state[STATE_KEY].references
        assert closed == []
    given = References(tmp_path / "given" / "features.npz", threads=2)
    with TestClient(create_app(settings_for(tmp_path / "given"), references=given)):
        pass

    assert closed == [made]
    assert STATE_KEY not in made_app.state
