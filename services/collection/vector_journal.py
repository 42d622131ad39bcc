"""The journal of the search index's file: the changes since the file was written, saved beside it
(``search.npz.delta``) so that adding or removing one artwork writes that artwork, not the whole index.

A :class:`~services.collection.vectors.VectorIndex` records each change (the vector as given, its metadata, or a
removal) and, while the changes are few (:data:`JOURNAL_SHARE` of the collection, at least :data:`JOURNAL_MIN`),
its save writes only them, atomically; a load applies the journal when it names the file it sits on (the file's
``saved_id``) and ignores one that names an older file (left by a save interrupted between rewriting the file and
deleting the journal). The journal is an ``.npz`` of plain arrays like the file: a JSON ``state`` (uint8) and the
upserted ``vectors`` (float32), no pickle. NumPy only.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from services.collection.vector_file import SnapshotError
from services.common.atomic import atomic_write_bytes
from services.common.schemas import ObjectMetadata

JOURNAL_SUFFIX = ".delta"
"""The journal of index file ``f`` is ``f`` + this suffix."""
JOURNAL_SHARE = 0.02
"""Changes a journal holds, as a share of the collection, before a save rewrites the whole file."""
JOURNAL_MIN = 64
FORMAT = "artwork-matcher/search-journal"


def journal_path(path: Path) -> Path:
    """Where the journal of the index file ``path`` lives."""
    return Path(path).with_name(Path(path).name + JOURNAL_SUFFIX)


@dataclass
class VectorJournal:
    """Changes since the base file ``base_path`` (identified by ``base_id``, at ``base_signature``) was written:
    per object id, its new vector and metadata, only its metadata (``vector`` None), or its removal (both None)."""

    base_id: str = ""
    base_path: Path | None = None
    base_signature: tuple[int, int] | None = None
    changes: dict[str, tuple[np.ndarray | None, ObjectMetadata | None]] = field(default_factory=dict)
    whole: bool = False
    """True after a change the journal cannot hold (a bulk add, a compression): the next save rewrites the file."""

    def upserted(self, vector: np.ndarray, metadata: ObjectMetadata) -> None:
        """Record a new or replaced object."""
        self.changes.pop(metadata.object_id, None)
        self.changes[metadata.object_id] = (np.array(vector, np.float32).reshape(-1), metadata)

    def metadata_updated(self, metadata: ObjectMetadata) -> None:
        """Record new catalogue fields of an object whose vector is unchanged."""
        vector, _ = self.changes.get(metadata.object_id, (None, None))
        self.changes[metadata.object_id] = (vector, metadata)

    def removed(self, object_id: str) -> None:
        """Record a removal."""
        self.changes.pop(object_id, None)
        self.changes[object_id] = (None, None)

    def fits(self, size: int) -> bool:
        """True when the changes are few enough, for a collection of ``size``, to be saved as a journal."""
        return not self.whole and len(self.changes) <= max(JOURNAL_MIN, JOURNAL_SHARE * size)

    def invalidate(self) -> None:
        """Give up on journaling until the next full save (changes too large or of another kind)."""
        self.whole = True
        self.changes = {}

    def reset(self, base_id: str, base_path: Path, base_signature: tuple[int, int] | None) -> None:
        """Start over from a base file just written or loaded."""
        self.base_id, self.base_path, self.base_signature = base_id, Path(base_path), base_signature
        self.changes = {}
        self.whole = False

    def encode(self, version: int, dimension: int) -> bytes:
        """The journal file's bytes."""
        upserts = [(k, v, m) for k, (v, m) in self.changes.items() if v is not None and m is not None]
        state = {
            "format": FORMAT,
            "base_id": self.base_id,
            "version": version,
            "removed": [k for k, (v, m) in self.changes.items() if m is None],
            "metadata": {
                k: msgspec.to_builtins(m) for k, (v, m) in self.changes.items() if v is None and m is not None
            },
            "upserts": [msgspec.to_builtins(m) for _, _, m in upserts],
        }
        vectors = np.vstack([v for _, v, _ in upserts]) if upserts else np.zeros((0, dimension), np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, state=np.frombuffer(json.dumps(state).encode("utf-8"), np.uint8), vectors=vectors)
        return buffer.getvalue()

    def write(self, path: Path, version: int, dimension: int) -> None:
        """Save the journal of the index file ``path`` atomically."""
        atomic_write_bytes(journal_path(path), self.encode(version, dimension))


@dataclass(frozen=True)
class JournalEntries:
    """A journal read back: what to apply, in this order, to the base it names."""

    version: int
    removed: list[str]
    metadata: list[ObjectMetadata]
    upserts: list[tuple[np.ndarray, ObjectMetadata]]


def read_journal(path: Path, base_id: str) -> JournalEntries | None:
    """The journal of the index file ``path`` when it names the base ``base_id``; None when there is none or it
    names another base.

    Raises:
        SnapshotError: the journal is unreadable or corrupt.
    """
    journal = journal_path(path)
    try:
        with np.load(journal, allow_pickle=False) as data:
            state: Any = json.loads(bytes(data["state"]).decode("utf-8"))
            vectors = np.asarray(data["vectors"], np.float32)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"search journal {journal} is unreadable: {exc}") from exc
    try:
        if state["format"] != FORMAT:
            raise ValueError(f"format {state['format']!r}")
        if not base_id or state["base_id"] != base_id:
            return None
        upserts = [msgspec.convert(m, ObjectMetadata) for m in state["upserts"]]
        if len(upserts) != len(vectors):
            raise ValueError(f"{len(upserts)} upserts but {len(vectors)} vectors")
        return JournalEntries(
            int(state["version"]),
            [str(object_id) for object_id in state["removed"]],
            [msgspec.convert(m, ObjectMetadata) for m in state["metadata"].values()],
            list(zip(vectors, upserts, strict=True)),
        )
    except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"search journal {journal} is corrupt: {exc}") from exc
