"""A FAISS inner-product index keyed by object id, with catalogue metadata beside each vector.

Contract: vectors are (N, D) float32 with L2-normalised rows, so inner product is cosine similarity. An object id
is stored at most once: adding an existing id replaces its vector and metadata. The whole state (FAISS index,
id table, metadata, model stamp) is saved as one file, atomically, so a crash mid-save leaves the previous snapshot
usable; the file's layout is :mod:`services.collection.vector_file`'s.

Kinds: ``flat`` is exact; ``auto`` is exact until the collection reaches ``compress_above`` vectors and then
becomes the compressed inverted file of :mod:`services.collection.compressed` (trained once on the vectors present,
then updated in place: an add or a remove never retrains); ``ivf`` is the older uncompressed inverted file. A
trained index is saved whole and loaded without retraining.

Imports FAISS: only the search service and ``index build`` use this module.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import faiss
import msgspec
import numpy as np

from services.collection.compressed import train_compressed
from services.collection.stamp import ModelStamp
from services.collection.vector_file import (
    COMPRESS_ABOVE,
    FORMAT_VERSION,
    RECALL_TARGET,
    SnapshotError,
    encode_vector_file,
    open_index_stream,
    write_vector_file,
)
from services.collection.vector_journal import VectorJournal, journal_path, read_journal
from services.common.atomic import atomic_write, file_signature, fsync_dir
from services.common.schemas import ObjectMetadata

__all__ = ["COMPRESS_ABOVE", "FORMAT_VERSION", "Hit", "IndexKind", "SnapshotError", "VectorIndex", "check_vectors"]

IndexKind = Literal["flat", "ivf", "auto"]


class _FileState(msgspec.Struct):
    """What :meth:`VectorIndex.load` reads of a vector file's state; the metadata entries stay undecoded JSON."""

    dimension: int
    next_label: int
    labels: dict[str, int]
    metadata: dict[str, msgspec.Raw]
    format: Any = None
    kind: str = "flat"
    model: str = ""
    preprocessing: str = ""
    ivf: dict[str, Any] = msgspec.field(default_factory=dict)
    saved_id: str = ""


def _decode_state(payload: bytes) -> dict[str, Any]:
    try:
        return msgspec.structs.asdict(msgspec.json.decode(payload, type=_FileState))
    except msgspec.MsgspecError as exc:
        raise ValueError(f"its state does not fit the format: {exc}") from exc


class PackedMetadata:
    """Catalogue entries kept as MessagePack bytes, decoded when read.

    A decoded :class:`ObjectMetadata` costs about 600 bytes of Python objects even when most of its fields are
    empty; its JSON encoding about 150. At a million artworks that is ~0.6 GB against ~0.15 GB of the search
    service's memory (``bench/scale.py``), and a search decodes only the few entries it returns. A snapshot's
    entries are kept as the file's own JSON bytes (:meth:`from_raw`), never built as Python objects all at once.
    """

    _encoder = msgspec.json.Encoder()
    _decoder = msgspec.json.Decoder(ObjectMetadata)

    def __init__(self) -> None:
        """An empty table."""
        self._packed: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._packed

    def ids(self) -> set[str]:
        """The object ids held."""
        return set(self._packed)

    def sorted_ids(self) -> list[str]:
        """The object ids held, sorted."""
        return sorted(self._packed)

    def get(self, object_id: str) -> ObjectMetadata | None:
        """The decoded entry of ``object_id``, or None."""
        packed = self._packed.get(object_id)
        return None if packed is None else self._decoder.decode(packed)

    def put(self, metadata: ObjectMetadata) -> None:
        """Store (or replace) one entry."""
        self._packed[metadata.object_id] = self._encoder.encode(metadata)

    def discard(self, object_id: str) -> None:
        """Forget ``object_id``'s entry, if any."""
        self._packed.pop(object_id, None)

    def to_builtins(self) -> dict[str, Any]:
        """Every entry as plain data, keyed by object id (what the snapshot file stores)."""
        return {k: msgspec.json.decode(v) for k, v in self._packed.items()}

    @classmethod
    def from_raw(cls, entries: dict[str, msgspec.Raw]) -> PackedMetadata:
        """Entries as a snapshot file holds them (JSON), each validated against :class:`ObjectMetadata` and kept
        as its bytes.

        Raises:
            msgspec.ValidationError: an entry does not fit the schema.
        """
        table = cls()
        for object_id, raw in entries.items():
            table._decoder.decode(raw)
            table._packed[object_id] = bytes(raw)
        return table


@dataclass(frozen=True)
class Hit:
    """One search result with the metadata stored beside its vector, read under the same lock as the vector."""

    object_id: str
    score: float
    rank: int
    metadata: ObjectMetadata | None = None


def check_vectors(vectors: np.ndarray, dimension: int, *, tolerance: float = 1e-3) -> np.ndarray:
    """Validate "(N, D) float32, finite, L2-normalised rows" and return the array C-contiguous.

    Raises:
        ValueError: with the violated part of the contract.
    """
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(f"vectors must have shape (N, {dimension}), got {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(array, axis=1)
    if array.shape[0] and np.abs(norms - 1.0).max() > tolerance:
        raise ValueError("vector rows must be L2-normalised (norm 1)")
    return array


class VectorIndex:
    """Thread-safe id-keyed vector index with metadata.

    Args:
        dimension: vector length D.
        kind: ``flat`` (exact inner product), ``auto`` (exact, then compressed from ``compress_above`` vectors) or
            ``ivf`` (inverted lists, trained on the vectors present once there are ``ivf_train_factor × ivf_lists``
            of them, exact until then).
        ivf_lists: number of IVF lists (``ivf``; ``auto`` chooses its own from the expected size).
        ivf_probe: lists visited per query (``ivf``; ``auto`` tunes its own to ``recall_target``).
        compress_above: ``auto``: collection size that triggers compression.
        expected_size: ``auto``: the size the collection is expected to reach (sizes the inverted lists).
        recall_target: ``auto``: recall@10 against exact search the probe count is tuned to.
        model: name of the embedding model the vectors come from, kept so mismatches can be detected.
        preprocessing: how that model saw the images (:attr:`ModelStamp.preprocessing`; "" when unknown).
    """

    def __init__(
        self,
        dimension: int,
        *,
        kind: IndexKind = "flat",
        ivf_lists: int = 256,
        ivf_probe: int = 16,
        ivf_train_factor: int = 39,
        compress_above: int = COMPRESS_ABOVE,
        expected_size: int = 0,
        recall_target: float = RECALL_TARGET,
        model: str = "",
        preprocessing: str = "",
    ) -> None:
        if dimension < 1:
            raise ValueError("dimension must be positive")
        self.dimension = dimension
        self.kind: IndexKind = kind
        self.ivf_lists = ivf_lists
        self.ivf_probe = ivf_probe
        self.ivf_train_factor = ivf_train_factor
        self.compress_above = compress_above
        self.expected_size = expected_size
        self.recall_target = recall_target
        self.tuned_recall: float | None = None
        self.model = model
        self.preprocessing = preprocessing
        self.version = 0
        self._lock = threading.RLock()
        self._labels: dict[str, int] = {}
        self._ids: dict[int, str] = {}
        self._metadata = PackedMetadata()
        self._next_label = 0
        self._index: Any = self._new_flat()
        self.journal = VectorJournal()
        """Changes since the file was last written or loaded, saved as its journal while they are few."""

    @property
    def stamp(self) -> ModelStamp:
        """Which model, at which dimension and preprocessing, made the vectors."""
        return ModelStamp(self.model, self.dimension, self.preprocessing)

    # --- queries ------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return len(self._labels)

    def __contains__(self, object_id: object) -> bool:
        with self._lock:
            return object_id in self._labels

    def get(self, object_id: str) -> ObjectMetadata | None:
        """The metadata of ``object_id``, or None."""
        with self._lock:
            return self._metadata.get(object_id)

    def page(self, offset: int = 0, limit: int = 100) -> tuple[list[ObjectMetadata], int]:
        """A page of metadata sorted by object id, and the total count."""
        with self._lock:
            ids = self._metadata.sorted_ids()
            return [m for i in ids[offset : offset + limit] if (m := self._metadata.get(i)) is not None], len(ids)

    def vector(self, object_id: str) -> np.ndarray | None:
        """The stored vector of ``object_id`` (D,), or None."""
        with self._lock:
            label = self._labels.get(object_id)
            if label is None:
                return None
            return np.asarray(self._index.reconstruct(label), dtype=np.float32)

    def search(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        """Top-``k`` hits per query row, best first; fewer when the index holds fewer objects."""
        queries = check_vectors(vectors, self.dimension)
        with self._lock:
            count = len(self._labels)
            if count == 0:
                return [[] for _ in range(queries.shape[0])]
            scores, labels = self._index.search(queries, min(k, count))
            results: list[list[Hit]] = []
            for row_scores, row_labels in zip(scores, labels, strict=True):
                hits = [
                    Hit(self._ids[int(label)], float(score), 0)
                    for score, label in zip(row_scores, row_labels, strict=True)
                    if label >= 0 and int(label) in self._ids
                ]
                results.append(
                    [
                        Hit(h.object_id, h.score, rank, self._metadata.get(h.object_id))
                        for rank, h in enumerate(hits, start=1)
                    ]
                )
            return results

    def score(self, vectors: np.ndarray, object_ids: list[str]) -> list[Hit]:
        """The best score over the query rows of each of ``object_ids`` that is indexed, in the order given, rank 0
        (scored on request, not ranked); ids not in the index are left out."""
        queries = check_vectors(vectors, self.dimension)
        with self._lock:
            hits = []
            for object_id in dict.fromkeys(object_ids):
                label = self._labels.get(object_id)
                if label is None:
                    continue
                stored = np.asarray(self._index.reconstruct(label), dtype=np.float32)
                best = float(np.max(queries @ stored))
                hits.append(Hit(object_id, best, 0, self._metadata.get(object_id)))
            return hits

    # --- mutations ----------------------------------------------------------------------------------------------

    def upsert(self, vector: np.ndarray, metadata: ObjectMetadata) -> bool:
        """Add or replace one object; True when it replaced an existing one."""
        row = check_vectors(np.asarray(vector).reshape(1, -1), self.dimension)
        with self._lock:
            replaced = self._remove_locked(metadata.object_id)
            label = self._next_label
            self._next_label += 1
            self._index.add_with_ids(row, np.array([label], dtype=np.int64))
            self._labels[metadata.object_id] = label
            self._ids[label] = metadata.object_id
            self._metadata.put(metadata)
            self.journal.upserted(row[0], metadata)
            self._maybe_train_ivf()
            self.version += 1
            return replaced

    def add_many(self, vectors: np.ndarray, metadata: list[ObjectMetadata]) -> None:
        """Add objects in bulk (a build, a benchmark): row i of ``vectors`` for ``metadata[i]``; ids already stored
        are replaced.

        Raises:
            ValueError: the vectors break the contract or their count differs from the metadata's.
        """
        rows = check_vectors(vectors, self.dimension)
        if len(rows) != len(metadata):
            raise ValueError(f"{len(rows)} vectors for {len(metadata)} metadata entries")
        with self._lock:
            for meta in metadata:
                self._remove_locked(meta.object_id)
            labels = np.arange(self._next_label, self._next_label + len(rows), dtype=np.int64)
            self._next_label += len(rows)
            self._index.add_with_ids(rows, labels)
            for label, meta in zip(labels.tolist(), metadata, strict=True):
                self._labels[meta.object_id] = label
                self._ids[label] = meta.object_id
                self._metadata.put(meta)
            self.journal.invalidate()  # a bulk add: the next save rewrites the file
            self._maybe_train_ivf()
            self.version += 1

    def compress(self, sample: np.ndarray | None = None) -> None:
        """Make this index the compressed inverted file now, trained on ``sample`` (rows like the collection's) or
        on the vectors it holds; the vectors it holds move over. Used by ``auto`` at ``compress_above`` and by a
        build that knows its collection will be large.

        Raises:
            ValueError: too few vectors to train (see :func:`~services.collection.compressed.train_compressed`).
        """
        with self._lock:
            labels = np.array(sorted(self._ids), dtype=np.int64)
            held = self._reconstruct(labels)
            training = held if sample is None else check_vectors(sample, self.dimension)
            expected = max(self.expected_size, len(training), len(labels))
            trained = train_compressed(training, expected=expected, recall_target=self.recall_target)
            if len(labels):
                trained.index.add_with_ids(held, labels)
            self._index = trained.index
            self.journal.invalidate()
            self.kind = "auto"
            self.ivf_lists, self.ivf_probe, self.tuned_recall = trained.lists, trained.probe, trained.recall

    @property
    def compressed(self) -> bool:
        """True once the vectors are held in an inverted file (``auto`` compressed, or ``ivf`` trained)."""
        return isinstance(self._index, faiss.IndexIVF)

    def _reconstruct(self, labels: np.ndarray) -> np.ndarray:
        if not len(labels):
            return np.zeros((0, self.dimension), np.float32)
        return np.vstack([self._index.reconstruct(int(label)) for label in labels]).astype(np.float32)

    def update_metadata(self, metadata: ObjectMetadata) -> None:
        """Replace the metadata of an existing object, keeping its vector."""
        with self._lock:
            if metadata.object_id not in self._labels:
                raise KeyError(metadata.object_id)
            self._metadata.put(metadata)
            self.journal.metadata_updated(metadata)
            self.version += 1

    def remove(self, object_id: str) -> bool:
        """Remove one object; False when it was not there."""
        with self._lock:
            removed = self._remove_locked(object_id)
            if removed:
                self.journal.removed(object_id)
                self.version += 1
            return removed

    def _remove_locked(self, object_id: str) -> bool:
        label = self._labels.pop(object_id, None)
        if label is None:
            return False
        self._index.remove_ids(np.array([label], dtype=np.int64))
        del self._ids[label]
        self._metadata.discard(object_id)
        return True

    # --- FAISS structures ---------------------------------------------------------------------------------------

    def _new_flat(self) -> Any:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    def _maybe_train_ivf(self) -> None:
        """Move from exact search to IVF once there are enough vectors to train the coarse quantiser."""
        if self.compressed:
            return
        if self.kind == "auto":
            if len(self._labels) >= self.compress_above:
                self.compress()
            return
        if self.kind != "ivf":
            return
        if len(self._labels) < self.ivf_train_factor * self.ivf_lists:
            return
        labels = np.array(sorted(self._ids), dtype=np.int64)
        vectors = self._reconstruct(labels)
        quantizer = faiss.IndexFlatIP(self.dimension)
        ivf = faiss.IndexIVFFlat(quantizer, self.dimension, self.ivf_lists, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        ivf.add_with_ids(vectors, labels)
        ivf.nprobe = self.ivf_probe
        self._index = ivf

    # --- persistence --------------------------------------------------------------------------------------------

    def to_bytes(self) -> tuple[int, bytes]:
        """The whole state as one ``.npz`` payload, and the version it captures (small indexes; :meth:`save`
        streams)."""
        with self._lock:
            state = self._state()
            index_bytes = faiss.serialize_index(self._index)
            version = self.version
        return version, encode_vector_file(state, index_bytes)

    def _state(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "dimension": self.dimension,
            "kind": self.kind,
            "model": self.model,
            "preprocessing": self.preprocessing,
            "next_label": self._next_label,
            "labels": self._labels,
            "metadata": self._metadata.to_builtins(),
            "ivf": {
                "lists": self.ivf_lists,
                "probe": self.ivf_probe,
                "train_factor": self.ivf_train_factor,
                "compress_above": self.compress_above,
                "expected_size": self.expected_size,
                "recall_target": self.recall_target,
                "tuned_recall": self.tuned_recall,
            },
        }

    def save(self, path: Path) -> int:
        """Write the state atomically to ``path``, streaming the FAISS index into the file (no in-memory copy of
        it); returns the version saved."""
        path = Path(path)
        with self._lock:
            version = self.version
            journal = self.journal
            if (
                journal.base_path == path
                and journal.base_id  # a file written before journals has no id to name: rewrite it once
                and journal.fits(len(self._labels))
                and file_signature(path) == journal.base_signature
            ):
                journal.write(path, version, self.dimension)  # only the changes since the file
                return version
            state = self._state() | {"saved_id": uuid.uuid4().hex}
            size = _serialised_size(self._index)

            def write(handle: BinaryIO) -> None:
                write_vector_file(handle, state, size, lambda sink: _serialise(self._index, sink))

            atomic_write(path, write)
            journal_path(path).unlink(missing_ok=True)  # its changes are in the file just written
            fsync_dir(path.parent)
            journal.reset(state["saved_id"], path, file_signature(path))
        return version

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read a snapshot written by :meth:`save`.

        Raises:
            SnapshotError: the file (or its journal) is unreadable, incomplete or inconsistent.
        """
        path = Path(path)
        signature = file_signature(path)
        with open_index_stream(path, _decode_state) as (state, read):
            try:
                index = faiss.read_index(faiss.PyCallbackIOReader(read, 1 << 20))  # type: ignore[attr-defined]
            except RuntimeError as exc:
                raise SnapshotError(f"search snapshot {path} is unreadable: {exc}") from exc
        ivf = state.get("ivf", {})
        result = cls(
            int(state["dimension"]),
            kind=state.get("kind", "flat"),
            ivf_lists=int(ivf.get("lists", 256)),
            ivf_probe=int(ivf.get("probe", 16)),
            ivf_train_factor=int(ivf.get("train_factor", 39)),
            compress_above=int(ivf.get("compress_above", COMPRESS_ABOVE)),
            expected_size=int(ivf.get("expected_size", 0)),
            recall_target=float(ivf.get("recall_target", RECALL_TARGET)),
            model=state.get("model", ""),
            preprocessing=state.get("preprocessing", ""),
        )
        result._index = index
        result.tuned_recall = ivf.get("tuned_recall")
        result._next_label = int(state["next_label"])
        result._labels = state["labels"]  # decoded as dict[str, int]: used as it is, no copy
        result._ids = {v: k for k, v in result._labels.items()}
        try:
            result._metadata = PackedMetadata.from_raw(state["metadata"])
        except msgspec.ValidationError as exc:
            raise SnapshotError(f"search snapshot {path} has an invalid catalogue entry: {exc}") from exc
        if result._metadata.ids() != set(result._labels) or index.ntotal != len(result._labels):
            raise SnapshotError(
                f"search snapshot {path} is inconsistent: {index.ntotal} vectors, "
                f"{len(result._labels)} ids, {len(result._metadata)} metadata entries"
            )
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = result.ivf_probe
        result.journal.reset(str(state.get("saved_id", "")), path, signature)
        result._apply_journal(path)
        return result

    def _apply_journal(self, path: Path) -> None:
        """Replay the journal of ``path`` when it sits on the file just loaded (the replayed changes are the
        journal's again, so the next small save writes all of them)."""
        entries = read_journal(path, self.journal.base_id)
        if entries is None:
            return
        for object_id in entries.removed:
            self.remove(object_id)
        for metadata in entries.metadata:
            if metadata.object_id in self:
                self.update_metadata(metadata)
        for vector, metadata in entries.upserts:
            self.upsert(vector, metadata)
        self.version = entries.version


def _serialise(index: Any, sink: Callable[[bytes], object]) -> None:
    writer = faiss.PyCallbackIOWriter(sink, 1 << 20)  # type: ignore[attr-defined]
    faiss.write_index(index, writer)
    del writer  # flushes its last block


def _serialised_size(index: Any) -> int:
    """Bytes FAISS writes for ``index`` (a counting pass: no copy of the index is held)."""
    size = 0

    def count(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    _serialise(index, count)
    return size
