"""The recipe for adding one reference to the collection, defined once: resize → embed → features.

1. :func:`prepare_reference`: the id is checked and the image downscaled to
   :data:`~services.collection.images.REFERENCE_MAX_SIDE`, the size queries are seen at.
2. :meth:`ReferenceRecipe.embed`: its global vector, checked against the array contract.
3. :meth:`ReferenceRecipe.add_features`: its local features extracted and stored.

The caller then stores the image and makes the reference findable (its vector and catalogue fields reach the index),
last, so a search never names an object without features. Two small protocols carry the work: ``index build`` plugs
in-process implementations (:mod:`services.collection.local`), the gateway its HTTP clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Protocol

import numpy as np
from PIL import Image

from services.collection.images import check_object_id, reference_image
from services.common.images import encode_base64, to_jpeg


class Reference:
    """One reference image, prepared: its object id and its picture at the reference size."""

    def __init__(self, object_id: str, image: Image.Image) -> None:
        """Wrap an already prepared image; use :func:`prepare_reference` to prepare one."""
        self.object_id = object_id
        self.image = image

    @cached_property
    def payload(self) -> str:
        """The picture as a backend service receives it: JPEG, base64; encoded once, on first use."""
        return encode_base64(to_jpeg(self.image))


def prepare_reference(object_id: str, image: Image.Image) -> Reference:
    """Step 1: check ``object_id`` and downscale ``image`` (RGB) to the reference size.

    Raises:
        InvalidFields: ``object_id`` is not a valid object id.
    """
    return Reference(check_object_id(object_id), reference_image(image))


class ReferenceEmbedder(Protocol):
    """Computes the global vectors of references."""

    async def embed_references(self, references: Sequence[Reference]) -> np.ndarray:
        """``(N, D)`` float32 rows of unit L2 norm, row i for ``references[i]``."""
        ...


class FeatureExtractor(Protocol):
    """Extracts a reference's local features and stores them where queries are verified against."""

    async def put_features(self, reference: Reference) -> None:
        """Extract and store the features of ``reference``, replacing any it had."""
        ...


class ReferenceRecipe:
    """Steps 2 and 3 of the recipe over an embedder and a feature extractor."""

    def __init__(self, embedder: ReferenceEmbedder, features: FeatureExtractor) -> None:
        """Bind the recipe to its two implementations."""
        self.embedder = embedder
        self.features = features

    async def embed(self, references: Sequence[Reference]) -> np.ndarray:
        """Step 2: the references' vectors, ``(N, D)`` float32, L2-normalised rows.

        Raises:
            ValueError: the embedder answered with another number of rows, or not a 2-D finite array.
        """
        if not references:
            return np.zeros((0, 0), np.float32)
        vectors = np.asarray(await self.embedder.embed_references(references), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(references) or not np.isfinite(vectors).all():
            raise ValueError(f"the embedder gave {vectors.shape} for {len(references)} references")
        return vectors

    async def add_features(self, reference: Reference) -> None:
        """Step 3: extract and store the local features of ``reference``."""
        await self.features.put_features(reference)
