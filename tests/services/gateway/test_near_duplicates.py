"""``/identify`` over HTTP with scripted backends and the snapshot's collection report: two references of the same
picture that the photo cannot tell apart are answered together, flagged; otherwise one answer as before."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from services.collection.report_file import CollectionReport, Flag, PairFinding, Thresholds, write_report
from services.decision.rule import DecisionParams
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.services.fakes import b64, encode, in_frame, textured
from tests.services.gateway.backends import Backends, verified
from tests.services.gateway.test_app import catalogue

HERE = [0.1, 0.1, 0.6, 0.6]


@pytest.fixture(scope="module")
def photo() -> str:
    return b64(encode(in_frame(textured(7))))


def backends(twin_b_inliers: int) -> Backends:
    return Backends(
        hits=[("twin-b", 0.91), ("twin-a", 0.90), ("other", 0.61)],
        objects=catalogue("twin-a", "twin-b", "other"),
        geometric={
            "twin-a": verified("twin-a", inliers=150, box=HERE),
            "twin-b": verified("twin-b", inliers=twin_b_inliers, box=HERE),
        },
    )


def with_report(tmp_path, *pairs: tuple[str, str]) -> None:
    write_report(
        tmp_path,
        CollectionReport(
            generated_at="2026-12-04T08:00:00+00:00",
            objects=3,
            thresholds=Thresholds(),
            counts={"near_duplicate": 2 * len(pairs)},
            artworks=[],
            pairs=[PairFinding(Flag.NEAR_DUPLICATE, a, b, 0.96, 200) for a, b in pairs],
        ),
    )


def identify(scripted: Backends, tmp_path, photo: str) -> dict:
    app = create_app(GatewaySettings(snapshot_dir=tmp_path), **scripted.clients(), params=DecisionParams())
    with TestClient(app) as client:
        response = client.post("/identify", json={"image": photo, "options": {"include_alternatives": True}})
    assert response.status_code == 200, response.text
    return response.json()


def test_inseparable_near_duplicates_are_answered_both_the_better_first_and_flagged(tmp_path, photo):
    with_report(tmp_path, ("twin-a", "twin-b"))

    body = identify(backends(twin_b_inliers=140), tmp_path, photo)

    first, second = body["matches"]
    assert body["match"] == first
    assert (first["object_id"], first["near_duplicate_of"], first["near_duplicates"]) == ("twin-a", None, ["twin-b"])
    assert (second["object_id"], second["near_duplicate_of"], second["near_duplicates"]) == ("twin-b", "twin-a", [])
    assert second["name"] == "Title twin-b" and second["verification_method"] == "geometric"
    assert first["confidence"] >= second["confidence"]
    assert [m["object_id"] for m in body["alternatives"]] == ["other"]  # the partner is not counted twice


def test_near_duplicates_the_evidence_separates_are_answered_alone(tmp_path, photo):
    with_report(tmp_path, ("twin-a", "twin-b"))

    body = identify(backends(twin_b_inliers=60), tmp_path, photo)

    assert [m["object_id"] for m in body["matches"]] == ["twin-a"]
    assert body["match"]["near_duplicate_of"] is None and body["match"]["near_duplicates"] == []
    assert "twin-b" in [m["object_id"] for m in body["alternatives"]]


@pytest.mark.parametrize("report", ["none", "other pair", "unreadable"])
def test_without_the_pair_in_the_report_the_answer_is_unchanged(tmp_path, photo, report):
    if report == "other pair":
        with_report(tmp_path, ("other", "twin-a"))
    elif report == "unreadable":
        (tmp_path / "report.json").write_text("not a report")

    body = identify(backends(twin_b_inliers=140), tmp_path, photo)

    assert [m["object_id"] for m in body["matches"]] == ["twin-a"]
    assert body["match"]["near_duplicates"] == []
