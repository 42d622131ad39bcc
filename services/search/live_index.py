"""The search service's state: a :class:`VectorIndex` bound to its snapshot file, reloadable by replicas."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from services.collection.vector_file import RECALL_TARGET
from services.collection.vector_journal import journal_path
from services.collection.vectors import COMPRESS_ABOVE, Hit, IndexKind, VectorIndex
from services.common.atomic import JournaledFileWatch
from services.common.errors import InvalidFields, NotFound
from services.common.schemas import ObjectMetadata

log = logging.getLogger(__name__)


class LiveIndex:
    """Owns the index, saves it after every change and picks up newer snapshots written by others.

    Args:
        path: the snapshot file.
        kind, ivf_lists, ivf_probe: index options for a new index (a loaded snapshot keeps its own).
        compression: ``auto``'s options for a new index (``compress_above``, ``expected_size``, ``recall_target``).
        autosave: save after each mutation (the embedded default); off for read-only replicas.
    """

    def __init__(
        self,
        path: Path,
        *,
        kind: IndexKind = "flat",
        ivf_lists: int = 256,
        ivf_probe: int = 16,
        compression: dict[str, float] | None = None,
        autosave: bool = True,
    ) -> None:
        self.path = Path(path)
        self.kind: IndexKind = kind
        self.ivf_lists = ivf_lists
        self.ivf_probe = ivf_probe
        self.compression = dict(compression or {})
        self.autosave = autosave
        self.index: VectorIndex | None = None
        self._watch = JournaledFileWatch(self.path, journal_path(self.path))
        self._save_lock = threading.Lock()
        self._saved_version = -1

    @property
    def size(self) -> int:
        """Objects in the index."""
        return len(self.index) if self.index is not None else 0

    @property
    def dimension(self) -> int | None:
        """Vector length, or None while the index is empty and new."""
        return self.index.dimension if self.index is not None else None

    def load(self) -> bool:
        """Load the snapshot if present; True when one was loaded."""
        signature = self._watch.current()
        if signature is None:
            log.info("no snapshot at %s: starting empty", self.path)
            return False
        self.index = VectorIndex.load(self.path)
        self._watch.seen = signature
        self._saved_version = self.index.version
        log.info("loaded %d objects from %s", len(self.index), self.path)
        return True

    def reload_if_changed(self) -> bool:
        """Load the snapshot again when another writer replaced it; True when reloaded."""
        return self._watch.reload_if_replaced(self.load)

    def search(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        """Top-k per vector; an empty index answers empty lists."""
        if self.index is None:
            return [[] for _ in range(len(vectors))]
        try:
            return self.index.search(vectors, k)
        except ValueError as exc:
            raise InvalidFields(str(exc), details={"dimension": self.index.dimension}) from exc

    def score(self, vectors: np.ndarray, object_ids: list[str]) -> list[Hit]:
        """Best scores over the vectors of the named objects (unknown ids left out)."""
        if self.index is None or not object_ids:
            return []
        try:
            return self.index.score(vectors, object_ids)
        except ValueError as exc:
            raise InvalidFields(str(exc), details={"dimension": self.index.dimension}) from exc

    def find(self, object_id: str) -> ObjectMetadata | None:
        """Metadata of one object, or None."""
        return self.index.get(object_id) if self.index is not None else None

    def get(self, object_id: str) -> ObjectMetadata:
        """Metadata of one object."""
        meta = self.find(object_id)
        if meta is None:
            raise NotFound(f"object {object_id!r} is not in the collection", details={"object_id": object_id})
        return meta

    def page(self, offset: int, limit: int) -> tuple[list[ObjectMetadata], int]:
        """A page of metadata and the total."""
        return self.index.page(offset, limit) if self.index is not None else ([], 0)

    def upsert(self, vector: list[float], metadata: ObjectMetadata, *, model: str = "") -> bool:
        """Add or replace an object, then save; True when replaced."""
        array = np.asarray(vector, dtype=np.float32)
        try:
            # A new index is kept only once its first vector is accepted, so a bad one cannot fix its dimension.
            index = self.index
            if index is None:
                index = VectorIndex(
                    array.shape[0],
                    kind=self.kind,
                    ivf_lists=self.ivf_lists,
                    ivf_probe=self.ivf_probe,
                    compress_above=int(self.compression.get("compress_above", COMPRESS_ABOVE)),
                    expected_size=int(self.compression.get("expected_size", 0)),
                    recall_target=float(self.compression.get("recall_target", RECALL_TARGET)),
                    model=model,
                )
            replaced = index.upsert(array, metadata)
        except ValueError as exc:
            raise InvalidFields(str(exc), details={"dimension": self.dimension}) from exc
        self.index = index
        self._autosave()
        return replaced

    def update_metadata(self, metadata: ObjectMetadata) -> None:
        """Replace an object's catalogue metadata, keeping its vector, then save.

        Raises:
            NotFound: the object is not in the index.
        """
        try:
            if self.index is None:
                raise KeyError(metadata.object_id)
            self.index.update_metadata(metadata)
        except KeyError as exc:
            raise NotFound(
                f"object {metadata.object_id!r} is not in the collection", details={"object_id": metadata.object_id}
            ) from exc
        self._autosave()

    def remove(self, object_id: str) -> None:
        """Remove an object, then save."""
        if self.index is None or not self.index.remove(object_id):
            raise NotFound(f"object {object_id!r} is not in the collection", details={"object_id": object_id})
        self._autosave()

    def save(self) -> int:
        """Write the snapshot now (skipped when nothing changed since the last save); returns the version."""
        if self.index is None:
            return 0
        with self._save_lock:
            if self.index.version == self._saved_version and self.path.exists():
                return self._saved_version
            version = self.index.save(self.path)
            self._saved_version = version
            self._watch.mark_written()
            return version

    def _autosave(self) -> None:
        if self.autosave:
            self.save()
