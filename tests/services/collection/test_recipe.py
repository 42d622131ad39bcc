"""The recipe for adding one reference (resize → embed → features) and its in-process implementations."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

import numpy as np
import pytest

from services.collection.features import FeatureStore
from services.collection.images import REFERENCE_MAX_SIDE
from services.collection.local import LocalEmbedder, LocalFeatures, model_stamp
from services.collection.recipe import Reference, ReferenceRecipe, prepare_reference
from services.collection.stamp import ModelStamp
from services.common.errors import InvalidFields
from services.common.images import decode_image, sniff_media_type
from services.geometric.verify import VerifyParams, extract_features
from tests.services.fakes import FakeEmbedder, textured


class RowsEmbedder:
    """Answers a fixed array whatever it is asked (to test the recipe's contract check)."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    async def embed_references(self, references: Sequence[Reference]) -> np.ndarray:
        return self.rows


class NoFeatures:
    async def put_features(self, reference: Reference) -> None:
        raise AssertionError("not expected")


def test_prepare_checks_the_id_and_downscales_to_the_reference_size():
    reference = prepare_reference("mona", textured(1, (2048, 1536)))

    assert reference.object_id == "mona" and reference.image.size == (REFERENCE_MAX_SIDE, 768)
    with pytest.raises(InvalidFields):
        prepare_reference("../etc", textured(1))


def test_the_payload_is_the_prepared_picture_as_base64_jpeg_encoded_once():
    reference = prepare_reference("mona", textured(2, (1500, 1000)))

    payload = reference.payload

    assert reference.payload is payload
    data = base64.b64decode(payload)
    assert sniff_media_type(data) == "image/jpeg" and decode_image(data).size == (REFERENCE_MAX_SIDE, 683)


def test_in_process_embedding_and_features_follow_the_recipe():
    embedder, store, params = FakeEmbedder(), FeatureStore(), VerifyParams()
    recipe = ReferenceRecipe(LocalEmbedder(embedder), LocalFeatures(store, params))
    references = [prepare_reference("a", textured(3, (1600, 1200))), prepare_reference("b", textured(4))]

    vectors = asyncio.run(recipe.embed(references))
    for reference in references:
        asyncio.run(recipe.add_features(reference))

    assert embedder.calls == [2]  # one batch
    np.testing.assert_allclose(vectors, embedder.embed([r.image for r in references]))
    expected = extract_features(np.asarray(references[0].image), params, reference=True)
    np.testing.assert_array_equal(store.get("a").keypoints, expected.keypoints)
    assert store.ids() == ["a", "b"] and store.get("a").width == params.reference_max_side


@pytest.mark.parametrize("rows", [np.zeros((1, 4), np.float32), np.full((2, 4), np.nan, np.float32), np.zeros(4)])
def test_an_embedder_breaking_the_contract_is_refused(rows):
    recipe = ReferenceRecipe(RowsEmbedder(rows), NoFeatures())
    references = [prepare_reference("a", textured(5)), prepare_reference("b", textured(6))]

    with pytest.raises(ValueError, match="for 2 references"):
        asyncio.run(recipe.embed(references))


def test_an_in_process_models_stamp_names_it_its_dimension_and_preprocessing():
    assert model_stamp(FakeEmbedder("m")) == ModelStamp("m", FakeEmbedder().dimension, "")
