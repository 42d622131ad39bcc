"""Collection management: adding, replacing and removing artworks across images, features and the index.

Adding follows the collection's recipe (:mod:`services.collection.recipe`: resize → embed → features) with the
gateway's HTTP clients plugged in. Order keeps every reader consistent: an artwork becomes findable (its vector and
metadata reach the search index) only after its image and reference features are stored, and stops being findable
before they are removed. So a search hit never names an object without features or an image, whatever runs
concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np
from PIL import Image

from services.collection.images import ImageStore, check_object_id
from services.collection.recipe import Reference, ReferenceRecipe, prepare_reference
from services.collection.stamp import ModelStamp, ensure_same_model, read_model_stamp
from services.common import errors
from services.common.images import decode_image
from services.common.schemas import CatalogueUpdate, ObjectMetadata
from services.gateway.clients import EmbeddingsClient, GeometricClient, SearchClient

log = logging.getLogger(__name__)


async def check_embedding_model(embeddings: EmbeddingsClient, snapshot: Path) -> None:
    """At start-up: refuse to serve a snapshot whose vectors another model made than the embeddings service's.

    Nothing to check when the snapshot records no model. When the embeddings service cannot tell yet (down, or its
    model still loading) the gateway starts and says so in its log: it cannot know, and refusing would make start-up
    order matter.

    Raises:
        ModelMismatch: the two models differ; the message names both and the fixes.
    """
    recorded = await asyncio.to_thread(read_model_stamp, snapshot)
    if recorded is None:
        return
    try:
        serving = ModelStamp.from_info(await embeddings.info())
    except errors.ServiceError as exc:
        serving = None
        log.warning("could not ask the embeddings service for its model: %s", exc.message)
    if serving is None:
        log.warning("the embeddings model is not known yet; not checked against the snapshot's %r", recorded.model)
        return
    ensure_same_model(recorded, serving, snapshot=snapshot, who=f"the embeddings service at {embeddings.base_url}")


class HttpEmbedder:
    """The recipe's embedder over the embeddings service: one ``POST /embed`` per reference."""

    def __init__(self, client: EmbeddingsClient) -> None:
        """Embed through ``client``."""
        self.client = client

    async def embed_references(self, references: Sequence[Reference]) -> np.ndarray:
        """The service's vectors of the references' JPEG payloads."""
        rows = [(await self.client.embed(reference.payload)).embeddings[0] for reference in references]
        return np.asarray(rows, dtype=np.float32)


class HttpFeatures:
    """The recipe's feature extractor over the geometric service, which extracts and stores reference features."""

    def __init__(self, client: GeometricClient) -> None:
        """Store features through ``client``."""
        self.client = client

    async def put_features(self, reference: Reference) -> None:
        """``PUT /references/{id}`` with the reference's JPEG payload."""
        await self.client.put_reference(reference.object_id, reference.payload)


class CollectionManager:
    """Applies catalogue changes to the backends in a consistency-preserving order, one change at a time."""

    def __init__(
        self, embeddings: EmbeddingsClient, search: SearchClient, geometric: GeometricClient, images: ImageStore
    ) -> None:
        """Manage the collection behind these clients and image store."""
        self.search = search
        self.geometric = geometric
        self.images = images
        self.recipe = ReferenceRecipe(HttpEmbedder(embeddings), HttpFeatures(geometric))
        self._lock = asyncio.Lock()

    async def exists(self, object_id: str) -> bool:
        """Whether the object is in the index."""
        try:
            await self.search.get(object_id)
        except errors.NotFound:
            return False
        return True

    async def put(
        self, metadata: ObjectMetadata, image: Image.Image, data: bytes, *, must_be_new: bool
    ) -> tuple[ObjectMetadata, bool]:
        """Add or replace an artwork; returns its metadata and whether it was created."""
        object_id = check_object_id(metadata.object_id)
        async with self._lock:
            existed = await self.exists(object_id)
            if existed and must_be_new:
                raise errors.Conflict(
                    f"object {object_id!r} already exists; use PUT /objects/{object_id} to replace it",
                    details={"object_id": object_id},
                )
            reference = prepare_reference(object_id, image)
            vector = (await self.recipe.embed([reference]))[0]
            previous = await asyncio.to_thread(self.images.read, object_id) if existed else None
            file_name = await asyncio.to_thread(self.images.save, object_id, data)
            stored = msgspec.structs.replace(metadata, object_id=object_id, image_file=file_name)
            try:
                await self.recipe.add_features(reference)
                await self.search.upsert(vector.tolist(), stored)
            except BaseException:
                if previous is None:
                    await self._forget(object_id)
                else:
                    await self._restore(object_id, previous)
                raise
            return stored, not existed

    async def update(self, object_id: str, change: CatalogueUpdate) -> ObjectMetadata:
        """Change an artwork's catalogue fields only: its image, vector and features are kept (nothing is embedded).

        Raises:
            NotFound: the artwork is not in the collection.
        """
        check_object_id(object_id)
        async with self._lock:
            current = await self.search.get(object_id)
            return await self.search.update_metadata(change.apply(current))

    async def delete(self, object_id: str) -> None:
        """Remove an artwork: first from the index (no longer findable), then its features and image."""
        check_object_id(object_id)
        async with self._lock:
            await self.search.delete(object_id)
            await self._forget(object_id)

    async def _restore(self, object_id: str, previous: bytes) -> None:
        """Undo a failed replacement: the previous image and its features come back (the vector never left)."""
        await asyncio.to_thread(self.images.save, object_id, previous)
        try:
            image = await asyncio.to_thread(decode_image, previous)
            await self.recipe.add_features(prepare_reference(object_id, image))
        except errors.ServiceError as exc:
            log.error("could not restore the features of %s after a failed replacement: %s", object_id, exc.message)

    async def _forget(self, object_id: str) -> None:
        try:
            await self.geometric.delete_reference(object_id)
        except errors.ServiceError as exc:
            log.warning("could not remove features of %s: %s", object_id, exc.message)
        await asyncio.to_thread(self.images.delete, object_id)
