"""The local stack (``artwork-matcher serve``) refuses to run when the embeddings service's model is not the one that
built the snapshot, and says so; the service processes are replaced by stand-ins that answer at once."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from services.collection.vectors import VectorIndex
from services.common.schemas import ObjectMetadata
from tools.cli import local_stack
from tools.cli.local_stack import LocalStack, StackError
from tools.cli.main import main

D = 8


@pytest.fixture
def snapshot(tmp_path):
    index = VectorIndex(D, model="model-a")
    index.upsert(np.eye(1, D, dtype=np.float32)[0], ObjectMetadata(object_id="mona"))
    index.save(tmp_path / "search.npz")
    return tmp_path


@pytest.fixture
def stand_ins(monkeypatch):
    """No processes: starting does nothing and every service is healthy at once; returns the stops recorded."""
    stopped: list[bool] = []
    monkeypatch.setattr(LocalStack, "start_service", lambda self, name: None)
    monkeypatch.setattr(LocalStack, "wait_healthy", lambda self, names, timeout_s: None)
    monkeypatch.setattr(LocalStack, "stop", lambda self: stopped.append(True))
    return stopped


def embeddings_serving(monkeypatch, name: str) -> list[str]:
    asked: list[str] = []

    def get(url: str, **kwargs) -> httpx.Response:
        asked.append(url)
        return httpx.Response(200, json={"service": "embeddings", "model": {"name": name, "dimension": D}})

    monkeypatch.setattr(local_stack.httpx, "get", get)
    return asked


def test_the_stack_refuses_another_model_and_stops_what_it_started(snapshot, stand_ins, monkeypatch):
    asked = embeddings_serving(monkeypatch, "model-b")

    with pytest.raises(StackError) as caught:
        LocalStack(snapshot).start()

    assert "'model-a'" in str(caught.value) and "'model-b'" in str(caught.value)
    assert asked == [LocalStack(snapshot).url("embeddings") + "/info"] and stand_ins == [True]


def test_the_stack_starts_when_the_models_agree(snapshot, stand_ins, monkeypatch):
    embeddings_serving(monkeypatch, "model-a")

    LocalStack(snapshot).start()

    assert stand_ins == []


def test_a_gateway_that_exited_over_the_model_is_explained(snapshot, stand_ins, monkeypatch):
    def gateway_exits(self, names, timeout_s):
        raise StackError("gateway exited with code 3 during start-up")

    monkeypatch.setattr(LocalStack, "wait_healthy", gateway_exits)
    embeddings_serving(monkeypatch, "model-b")

    with pytest.raises(StackError, match="was built with model 'model-a'") as caught:
        LocalStack(snapshot).start()
    assert "exited with code 3" in str(caught.value.__cause__)


def test_serve_says_why_and_exits_non_zero(snapshot, stand_ins, monkeypatch, capsys):
    embeddings_serving(monkeypatch, "model-b")

    assert main(["serve", "--snapshot", str(snapshot)]) == 1

    error = capsys.readouterr().err
    assert error.startswith("error: snapshot") and "EMBEDDINGS_MODEL_NAME" in error
