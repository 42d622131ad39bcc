"""The snapshot's reference images: one file ``<object_id><suffix>`` per object in ``images/``, and their rules.

Suffix rules, in one place: a source folder is read for :data:`IMAGE_SUFFIXES` (any letter case); an uploaded
image is stored under the suffix of its sniffed type; a stored object has exactly one image file, so storing one
format removes the others. Every write is atomic. Object ids are checked before they become file names.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from PIL import Image

from services.common import errors
from services.common.atomic import atomic_write_bytes
from services.common.images import resize_max_side, sniff_media_type
from services.common.schemas import OBJECT_ID_PATTERN

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
"""File suffixes (lower case) read as images: a source folder's files and the snapshot's stored images."""
MEDIA_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
"""Suffix under which an uploaded image of each media type is stored."""
_LOOKUP_ORDER = (".jpg", ".png", ".webp", ".jpeg")
REFERENCE_MAX_SIDE = 1024
"""Reference images reach the embedding model and the feature extractor at this longest side, the same as queries."""

_OBJECT_ID = re.compile(OBJECT_ID_PATTERN)


def is_object_id(text: str) -> bool:
    """Whether ``text`` is a valid object id (and so a safe file stem)."""
    return bool(_OBJECT_ID.fullmatch(text)) and text not in {".", ".."}


def check_object_id(object_id: str) -> str:
    """Validate an object id (letters, digits, ``._-``, no path separators, ≤ 128 characters); returns it.

    Raises:
        InvalidFields: code ``invalid_fields``, field ``object_id``.
    """
    if not is_object_id(object_id):
        raise errors.InvalidFields(
            "object_id must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
            details={"field": "object_id"},
        )
    return object_id


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a regular file with an image suffix (any letter case)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def reference_image(image: Image.Image) -> Image.Image:
    """A reference image as the model and the extractor see it: downscaled to :data:`REFERENCE_MAX_SIDE`."""
    return resize_max_side(image, REFERENCE_MAX_SIDE)


class ImageStore:
    """Reference images on disk, one file ``<object_id><suffix>`` each, written atomically."""

    def __init__(self, directory: Path) -> None:
        """A store over ``directory`` (created on the first write)."""
        self.directory = Path(directory)

    def find(self, object_id: str) -> Path | None:
        """The stored image of ``object_id``, or None."""
        check_object_id(object_id)
        for suffix in _LOOKUP_ORDER:
            path = self.directory / f"{object_id}{suffix}"
            if path.is_file():
                return path
        return None

    def save(self, object_id: str, data: bytes) -> str:
        """Store uploaded image bytes under the suffix of their type; returns the file name. Other stored formats
        of the same id are removed."""
        check_object_id(object_id)
        name = f"{object_id}{MEDIA_SUFFIX.get(sniff_media_type(data), '.jpg')}"
        atomic_write_bytes(self.directory / name, data)
        self.delete(object_id, keep=name)
        return name

    def copy_from(self, object_id: str, source: Path) -> str:
        """Store a source folder's file under its own (lower-cased) suffix; returns the file name. Other stored
        formats of the same id are removed."""
        check_object_id(object_id)
        suffix = source.suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            raise errors.InvalidFields(f"{source.name}: not an image suffix {sorted(IMAGE_SUFFIXES)}")
        name = f"{object_id}{suffix}"
        atomic_write_bytes(self.directory / name, Path(source).read_bytes())
        self.delete(object_id, keep=name)
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

    def delete(self, object_id: str, *, keep: str | None = None) -> None:
        """Remove every stored image of ``object_id``, in every format, except the file named ``keep``."""
        check_object_id(object_id)
        for suffix in sorted(IMAGE_SUFFIXES):
            name = f"{object_id}{suffix}"
            if name != keep:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / name).unlink()
