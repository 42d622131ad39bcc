"""The gateway refuses to start when the embeddings service runs another model than the one that built the snapshot."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from litestar.testing import TestClient

from services.collection.stamp import ModelMismatch
from services.collection.vectors import VectorIndex
from services.common.schemas import ObjectMetadata
from services.decision.rule import DecisionParams
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.services.gateway.backends import Backends, error

D = 8


def stamped_snapshot(path, model: str) -> None:
    index = VectorIndex(D, model=model, preprocessing="whole-image 224x224 bicubic")
    index.upsert(np.eye(1, D, dtype=np.float32)[0], ObjectMetadata(object_id="mona"))
    index.save(path / "search.npz")


def serving(name: str, dimension: int | None = D):
    def answer(request: httpx.Request) -> httpx.Response:
        model = {"name": name, "dimension": dimension, "preprocessing": "whole-image 224x224 bicubic"}
        return httpx.Response(200, json={"service": "embeddings", "model": model})

    return answer


def only_mismatch(exc: BaseException) -> ModelMismatch:
    """The :class:`ModelMismatch` that failed start-up (the lifespan's task group may wrap it in a group)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    assert isinstance(exc, ModelMismatch), repr(exc)
    return exc


def start(backends: Backends, snapshot) -> TestClient:
    app = create_app(GatewaySettings(snapshot_dir=snapshot), **backends.clients(), params=DecisionParams())
    return TestClient(app)


def test_the_gateway_refuses_to_start_against_a_snapshot_of_another_model(tmp_path):
    stamped_snapshot(tmp_path, "model-a")
    backends = Backends(fail={"embeddings /info": serving("model-b")})

    with pytest.raises(BaseException) as caught, start(backends, tmp_path):
        pass

    mismatch = only_mismatch(caught.value)
    assert "'model-a'" in str(mismatch) and "'model-b'" in str(mismatch)
    assert backends.service_calls("embeddings") == [("GET", "/info")]


def test_the_gateway_starts_when_the_models_agree(tmp_path):
    stamped_snapshot(tmp_path, "model-a")
    backends = Backends(fail={"embeddings /info": serving("model-a")})

    with start(backends, tmp_path) as client:
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "answer", [serving("model-b", dimension=None), error(503, "not_ready", "loading")], ids=["loading", "down"]
)
def test_the_gateway_starts_when_the_embeddings_service_cannot_tell_yet(tmp_path, answer):
    stamped_snapshot(tmp_path, "model-a")
    backends = Backends(fail={"embeddings /info": answer})

    with start(backends, tmp_path) as client:
        assert client.get("/health").status_code == 200
    assert backends.service_calls("embeddings") == [("GET", "/info")]


def test_a_snapshot_without_a_stamp_is_not_checked(tmp_path):
    backends = Backends()

    with start(backends, tmp_path) as client:
        assert client.get("/health").status_code == 200
    assert backends.calls == []
