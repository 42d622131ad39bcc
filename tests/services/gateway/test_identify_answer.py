"""The ``/identify`` answer's typed evidence: what travels over HTTP and what the OpenAPI document says of it."""

from __future__ import annotations

import msgspec
import pytest
from litestar.testing import TestClient

from services.common.schemas import CandidateEvidence, IdentifyResponse
from services.decision.rule import DecisionParams
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.services.fakes import b64, encode, in_frame, textured
from tests.services.gateway.backends import Backends, verified


@pytest.fixture
def client(tmp_path):
    backends = Backends(
        hits=[("mona", 0.82), ("other", 0.61)],
        objects={i: {"object_id": i, "title": i} for i in ("mona", "other")},
        geometric={"mona": verified("mona", inliers=150)},
    )
    app = create_app(GatewaySettings(snapshot_dir=tmp_path), **backends.clients(), params=DecisionParams())
    with TestClient(app) as c:
        yield c


def test_every_candidates_evidence_decodes_into_the_typed_answer(client):
    response = client.post("/identify", json={"image": b64(encode(in_frame(textured(5))))})

    answer = msgspec.json.decode(response.content, type=IdentifyResponse)

    mona, other = answer.debug.candidates
    assert (mona.object_id, mona.embedding_rank, other.embedding_rank) == ("mona", 1, 2)
    assert mona.verified is True and mona.inliers == 150 and mona.score == answer.matches[0].geometric_score
    assert other.checked and other.verified is False and other.reason is not None
    assert answer.debug.threshold == DecisionParams().threshold and answer.debug.regions >= 1


def test_candidates_not_checked_geometrically_carry_null_geometric_fields(client):
    body = {"image": b64(encode(in_frame(textured(5)))), "options": {"geometric_verification": False}}

    rows = client.post("/identify", json=body).json()["debug"]["candidates"]

    assert [r["object_id"] for r in rows] == ["mona", "other"]
    assert all(r["verified"] is None and r["inliers"] is None and r["query_box"] is None for r in rows)


def test_the_openapi_document_describes_the_answers_evidence(client):
    document = client.get("/schema/openapi.json").json()

    answer = document["paths"]["/identify"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    schemas = document["components"]["schemas"]
    assert answer == {"$ref": "#/components/schemas/IdentifyResponse"}
    assert schemas["IdentifyResponse"]["properties"]["debug"] == {"$ref": "#/components/schemas/IdentifyDebug"}
    debug = schemas["IdentifyDebug"]
    assert debug["properties"]["candidates"]["items"] == {"$ref": "#/components/schemas/CandidateEvidence"}
    assert debug["properties"]["threshold"]["description"]
    evidence = schemas["CandidateEvidence"]
    assert set(evidence["required"]) == {"object_id", "similarity"}
    assert set(evidence["properties"]) == {f.name for f in msgspec.structs.fields(CandidateEvidence)}
    assert "null when the candidate was not checked" in evidence["description"]
    assert all(evidence["properties"][name].get("description") for name in ("verified", "inliers", "score"))
