"""Collection management: adding, replacing and removing artworks across images, features and the index.

Order keeps every reader consistent: an artwork becomes findable (its vector and metadata reach the search index)
only after its image and reference features are stored, and stops being findable before they are removed. So a
search hit never names an object without features or an image, whatever runs concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path

from PIL import Image

from services.common import errors
from services.common.atomic import atomic_write_bytes
from services.common.images import decode_image, encode_base64, resize_max_side, sniff_media_type, to_jpeg
from services.common.schemas import ObjectMetadata
from services.gateway.clients import EmbeddingsClient, GeometricClient, SearchClient

log = logging.getLogger(__name__)

OBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
REFERENCE_MAX_SIDE = 1024
"""Reference images are sent to the backends at this longest side, the same as queries."""


def reference_payload(image: Image.Image) -> str:
    """A reference image as the backends receive it: downscaled like queries, JPEG, base64."""
    return encode_base64(to_jpeg(resize_max_side(image, REFERENCE_MAX_SIDE)))


def check_object_id(object_id: str) -> str:
    """Validate an object id (letters, digits, ``._-``, no path separators, ≤ 128 characters)."""
    if not OBJECT_ID.fullmatch(object_id) or object_id in {".", ".."}:
        raise errors.InvalidFields(
            "object_id must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
            details={"field": "object_id"},
        )
    return object_id


class ImageStore:
    """Reference images on disk, one file ``<object_id><suffix>`` each, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def find(self, object_id: str) -> Path | None:
        """The stored image of ``object_id``, or None."""
        check_object_id(object_id)
        for suffix in (".jpg", ".png", ".webp", ".jpeg"):
            path = self.directory / f"{object_id}{suffix}"
            if path.is_file():
                return path
        return None

    def save(self, object_id: str, data: bytes) -> str:
        """Store the image bytes; returns the file name. Other stored formats of the same id are removed."""
        check_object_id(object_id)
        suffix = _SUFFIX.get(sniff_media_type(data), ".jpg")
        name = f"{object_id}{suffix}"
        atomic_write_bytes(self.directory / name, data)
        for other in set(_SUFFIX.values()) - {suffix}:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{object_id}{other}").unlink()
        return name

    def read(self, object_id: str) -> bytes | None:
        """The stored image bytes of ``object_id``, or None (also when it is deleted while being found)."""
        path = self.find(object_id)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, object_id: str) -> None:
        """Remove every stored image of ``object_id``."""
        check_object_id(object_id)
        for suffix in (".jpg", ".png", ".webp", ".jpeg"):
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{object_id}{suffix}").unlink()


class CollectionManager:
    """Applies catalogue changes to the backends in a consistency-preserving order, one change at a time."""

    def __init__(
        self, embeddings: EmbeddingsClient, search: SearchClient, geometric: GeometricClient, images: ImageStore
    ) -> None:
        self.embeddings = embeddings
        self.search = search
        self.geometric = geometric
        self.images = images
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
            payload = reference_payload(image)
            embedded = await self.embeddings.embed(payload)
            previous = await asyncio.to_thread(self.images.read, object_id) if existed else None
            file_name = await asyncio.to_thread(self.images.save, object_id, data)
            stored = ObjectMetadata(
                object_id=object_id,
                title=metadata.title,
                artist=metadata.artist,
                date=metadata.date,
                room=metadata.room,
                extra=metadata.extra,
                image_file=file_name,
                source_sha256=metadata.source_sha256,
            )
            try:
                await self.geometric.put_reference(object_id, payload)
                await self.search.upsert(embedded.embeddings[0], stored)
            except BaseException:
                if previous is None:
                    await self._forget(object_id)
                else:
                    await self._restore(object_id, previous)
                raise
            return stored, not existed

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
            await self.geometric.put_reference(object_id, reference_payload(image))
        except errors.ServiceError as exc:
            log.error("could not restore the features of %s after a failed replacement: %s", object_id, exc.message)

    async def _forget(self, object_id: str) -> None:
        try:
            await self.geometric.delete_reference(object_id)
        except errors.ServiceError as exc:
            log.warning("could not remove features of %s: %s", object_id, exc.message)
        await asyncio.to_thread(self.images.delete, object_id)
