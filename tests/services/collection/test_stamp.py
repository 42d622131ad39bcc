"""The model stamp: what made a snapshot's vectors, read without FAISS, compared with the model in service."""

from __future__ import annotations

import numpy as np
import pytest

from services.collection.stamp import ModelMismatch, ModelStamp, check_model, read_model_stamp
from services.collection.vector_file import SnapshotError, read_vector_state
from services.collection.vectors import VectorIndex
from services.common.errors import ConfigurationError
from services.common.schemas import ObjectMetadata

D = 8


def saved_index(snapshot, *, model: str, preprocessing: str = "", dimension: int = D) -> None:
    index = VectorIndex(dimension, model=model, preprocessing=preprocessing)
    vector = np.zeros(dimension, np.float32)
    vector[0] = 1.0
    index.upsert(vector, ObjectMetadata(object_id="a"))
    index.save(snapshot / "search.npz")


def test_a_saved_index_records_its_stamp_and_the_stamp_reads_back_without_the_index(tmp_path):
    saved_index(tmp_path, model="tf_efficientnet_lite0", preprocessing="whole-image 224x224 bicubic")

    assert read_model_stamp(tmp_path) == ModelStamp("tf_efficientnet_lite0", D, "whole-image 224x224 bicubic")
    assert read_vector_state(tmp_path / "search.npz")["preprocessing"] == "whole-image 224x224 bicubic"
    assert VectorIndex.load(tmp_path / "search.npz").stamp == read_model_stamp(tmp_path)


def test_no_vector_file_or_no_model_name_means_no_stamp(tmp_path):
    assert read_model_stamp(tmp_path) is None
    saved_index(tmp_path, model="")  # vectors that came through the API carry no model name
    assert read_model_stamp(tmp_path) is None


def test_an_unreadable_vector_file_is_a_snapshot_error(tmp_path):
    (tmp_path / "search.npz").write_bytes(b"not a zip")
    with pytest.raises(SnapshotError, match="unreadable"):
        read_model_stamp(tmp_path)


def test_stamps_differ_by_model_or_dimension_and_by_preprocessing_only_when_both_know_it():
    stamp = ModelStamp("m", 8, "whole-image 224x224 bicubic")

    assert stamp.differences(ModelStamp("m", 8, "whole-image 224x224 bicubic")) == []
    assert stamp.differences(ModelStamp("m", 8, "")) == []  # a snapshot from before preprocessing was recorded
    assert stamp.differences(ModelStamp("n", 16, "whole-image 320x320 bicubic")) == [
        "model: 'm' != 'n'",
        "dimension: 8 != 16",
        "preprocessing: 'whole-image 224x224 bicubic' != 'whole-image 320x320 bicubic'",
    ]


def test_the_embeddings_services_info_gives_its_stamp_once_the_model_is_loaded():
    loaded = {"service": "embeddings", "model": {"name": "m", "dimension": 8, "preprocessing": "p"}}
    loading = {"service": "embeddings", "model": {"name": "m", "dimension": None, "preprocessing": None}}

    assert ModelStamp.from_info(loaded) == ModelStamp("m", 8, "p")
    assert ModelStamp.from_info(loading) is None
    assert ModelStamp.from_info({"service": "search"}) is None


def test_check_model_refuses_another_model_naming_both_and_the_fix(tmp_path):
    saved_index(tmp_path, model="model-a")
    check_model(tmp_path, ModelStamp("model-a", D), who="the embeddings service")

    with pytest.raises(ModelMismatch) as caught:
        check_model(tmp_path, ModelStamp("model-b", D), who="the embeddings service")

    message = str(caught.value)
    assert "'model-a'" in message and "'model-b'" in message and "EMBEDDINGS_MODEL_NAME" in message
    assert isinstance(caught.value, ConfigurationError)
