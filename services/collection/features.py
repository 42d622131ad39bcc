"""The reference features of the collection, keyed by object id, kept in memory and saved atomically to one file.

Reference features are extracted once, when an artwork is added, so a request only extracts the query's. The store
is copy-on-write: a mutation publishes a new immutable snapshot, so readers never wait for a writer and a save
writes one consistent version. The file is an ``.npz`` of plain arrays (no pickle): all keypoints and descriptors
concatenated, per-object offsets and frame sizes, and a JSON header (ids, version, save time, extractor stamp) as a
uint8 array.

This module owns the file format and the :class:`FeatureSet` array contract; it needs only NumPy (the extractor,
with OpenCV, is the geometric service's ``verify.py``). Used by the geometric service and ``index build``.

Loaded ``mapped``, the file's arrays stay on disk, memory-mapped (:mod:`services.collection.feature_map`), and a
reference's features are read when asked for: the store's memory then does not grow with the collection. A save
streams the references into the file one at a time (never all of them concatenated in memory).

A mapped store saves a few changes as a journal beside the file (``features.npz.delta``, same format, naming the
base file's save time and the ids removed from it) instead of rewriting every reference: adding one artwork to a
large collection writes one reference, not gigabytes. A load applies the journal when it names the base it sits on;
a full save rewrites the base and then deletes the journal (a crash between the two leaves a journal naming an
older base, which loads ignore). The journal is folded into the base when it grows past :data:`JOURNAL_SHARE`.
"""

from __future__ import annotations

import json
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from services.collection.feature_map import LayeredItems, MappedFile, MappedItems
from services.common.atomic import JournaledFileWatch, atomic_write, file_signature, fsync_dir

__all__ = [
    "DESCRIPTOR_SIZE",
    "FeatureSet",
    "FeatureStore",
    "FeatureStoreError",
    "OutdatedFeatures",
    "describe_array",
    "file_signature",
]

FORMAT = "artwork-matcher/geometric-features"
FORMAT_VERSION = 2
"""2: quantised RootSIFT descriptors (128 columns) and the extractor stamp in the header; 1 held ORB descriptors."""
_ARRAYS = ("header", "keypoints", "descriptors", "offsets", "sizes")
JOURNAL_SUFFIX = ".delta"
"""The journal of a feature file ``f`` is ``f`` + this suffix."""
JOURNAL_SHARE = 0.02
"""Changes (added plus removed references) a journal holds, as a share of the base, before a save rewrites the base
(at least :data:`JOURNAL_MIN`)."""
JOURNAL_MIN = 64


DESCRIPTOR_SIZE = 128
"""Columns of a descriptor row: SIFT's 4 × 4 cells × 8 orientations."""


@dataclass(frozen=True)
class FeatureSet:
    """SIFT keypoints and quantised RootSIFT descriptors of one image, in the (downscaled) frame they were extracted in.

    Attributes:
        keypoints: (N, 2) float32 pixel coordinates (x, y) in the ``width`` × ``height`` frame.
        descriptors: (N, 128) uint8 quantised RootSIFT descriptors, row i for keypoint i.
        width: width in pixels of the frame the keypoints are in (after the extractor's downscale).
        height: height in pixels of that frame.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        kp, desc = self.keypoints, self.descriptors
        if not isinstance(kp, np.ndarray) or kp.dtype != np.float32 or kp.ndim != 2 or kp.shape[1] != 2:
            raise ValueError(f"keypoints must be an (N, 2) float32 array, got {describe_array(kp)}")
        if (
            not isinstance(desc, np.ndarray)
            or desc.dtype != np.uint8
            or desc.ndim != 2
            or desc.shape[1] != DESCRIPTOR_SIZE
        ):
            raise ValueError(f"descriptors must be an (N, {DESCRIPTOR_SIZE}) uint8 array, got {describe_array(desc)}")
        if kp.shape[0] != desc.shape[0]:
            raise ValueError(f"{kp.shape[0]} keypoints but {desc.shape[0]} descriptors: counts must be equal")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not np.isfinite(kp).all():
            raise ValueError("keypoints must be finite")

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @classmethod
    def empty(cls, width: int, height: int) -> FeatureSet:
        """A feature set with no keypoints (a blank or featureless image) in a ``width`` × ``height`` frame."""
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_SIZE), np.uint8), width, height)


def describe_array(value: object) -> str:
    """An array's shape and dtype (or a non-array's type name), for error messages."""
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} dtype {value.dtype}"
    return type(value).__name__


class FeatureStoreError(ValueError):
    """A feature file is unreadable or breaks the format; the message names the file."""


class OutdatedFeatures(FeatureStoreError):
    """A whole feature file written in an older format or by another extractor: its references must be extracted
    again (``artwork-matcher index build`` does that by itself)."""


@dataclass(frozen=True)
class _Snapshot:
    """One published state of the store; never mutated after publication."""

    version: int
    items: Mapping[str, FeatureSet] = field(default_factory=dict)


class FeatureStore:
    """Thread-safe map from object id to its reference :class:`FeatureSet`, with atomic persistence.

    ``version`` increases by one on every mutation; ``saved_at`` is the Unix time of the last save or of the save
    that produced the loaded file, so a replica can tell whether a newer snapshot exists.
    """

    def __init__(self, items: Mapping[str, FeatureSet] | None = None, *, version: int = 0, extractor: str = "") -> None:
        """A store of ``items``; ``extractor`` names the settings the features were made with
        (:meth:`VerifyParams.extractor_stamp`), saved in the file's header."""
        items = dict(items or {})
        self.extractor = extractor
        for object_id, features in items.items():
            _check_entry(object_id, features)
        self._snapshot = _Snapshot(version, items)
        self._write_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self.saved_at: float | None = None

    @property
    def version(self) -> int:
        """Mutation counter of the current state."""
        return self._snapshot.version

    def get(self, object_id: str) -> FeatureSet | None:
        """The features of ``object_id``, or None when it is not stored."""
        return self._snapshot.items.get(object_id)

    def put(self, object_id: str, features: FeatureSet) -> None:
        """Store the features of ``object_id``, replacing any previous ones."""
        _check_entry(object_id, features)
        with self._write_lock:
            current = self._snapshot.items
            items: Mapping[str, FeatureSet]
            if isinstance(current, LayeredItems):
                items = current.put(object_id, features)
            else:
                items = {**current, object_id: features}
            self._snapshot = _Snapshot(self._snapshot.version + 1, items)

    def remove(self, object_id: str) -> bool:
        """Forget ``object_id``; False when it was not stored (the version is then unchanged)."""
        with self._write_lock:
            current = self._snapshot.items
            if object_id not in current:
                return False
            items: Mapping[str, FeatureSet]
            if isinstance(current, LayeredItems):
                items = current.without(object_id)
            else:
                items = {k: v for k, v in current.items() if k != object_id}
            self._snapshot = _Snapshot(self._snapshot.version + 1, items)
            return True

    def ids(self) -> list[str]:
        """The stored object ids, in insertion order."""
        return list(self._snapshot.items)

    def __len__(self) -> int:
        return len(self._snapshot.items)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._snapshot.items

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def save(self, path: Path) -> int:
        """Write the current state to ``path`` atomically and durably; returns the version written.

        The file is written beside ``path``, flushed and fsynced, renamed over ``path`` and the directory fsynced:
        a crash at any point leaves the previous file whole. Concurrent saves are serialised so that an older
        snapshot never replaces a newer one.
        """
        path = Path(path)
        with self._save_lock:
            snapshot = self._snapshot
            saved_at = time.time()
            items = snapshot.items
            if isinstance(items, LayeredItems) and _journaled(items, path):
                base = (items.base.saved_at, sorted(items.removed))  # type: ignore[attr-defined]
                changes = _Snapshot(snapshot.version, items.added)
                atomic_write(
                    journal_path(path), lambda h: _write_streamed(h, changes, saved_at, self.extractor, base=base)
                )
                self.saved_at = saved_at
                return snapshot.version
            atomic_write(path, lambda handle: _write_streamed(handle, snapshot, saved_at, self.extractor))
            journal_path(path).unlink(missing_ok=True)  # folded into the base just written
            fsync_dir(path.parent)
            self.saved_at = saved_at
            if isinstance(items, LayeredItems):
                self._remap(path, snapshot)
            return snapshot.version

    def _remap(self, path: Path, saved: _Snapshot) -> None:
        """After saving a mapped store: map the file just written, so the overlay of changes and the old file's
        mapping are let go (unless a change arrived meanwhile; the next save does it then)."""
        fresh = _load_mapped(path)[1]
        with self._write_lock:
            if self._snapshot is saved:
                self._snapshot = _Snapshot(saved.version, LayeredItems(fresh))

    def keypoints_total(self) -> int:
        """Keypoints (descriptors) over every stored reference, counted without reading mapped features."""
        items = self._snapshot.items
        if isinstance(items, LayeredItems):
            return items.keypoints_total()
        return sum(len(features) for features in items.values())

    def release(self) -> None:
        """Let go of the mapped file's pages read so far (they stay in the page cache); nothing when not mapped."""
        items = self._snapshot.items
        if isinstance(items, LayeredItems) and isinstance(items.base, MappedItems):
            items.base.file.release()

    def items(self) -> Mapping[str, FeatureSet]:
        """Every stored object's features, in insertion order (the current state; never mutated afterwards)."""
        return self._snapshot.items

    @staticmethod
    def write(path: Path, items: Mapping[str, FeatureSet], *, extractor: str, version: int = 1) -> None:
        """Write a feature file of ``items`` atomically, streaming: ``items`` may make each reference's features when
        asked (a generator-backed mapping), so a file larger than memory can be written (benchmarks, imports)."""
        atomic_write(
            Path(path), lambda handle: _write_streamed(handle, _Snapshot(version, items), time.time(), extractor)
        )

    @classmethod
    def load(cls, path: Path, *, extractor: str | None = None, mapped: bool = False) -> FeatureStore:
        """Read a file written by :meth:`save`; with ``extractor`` (the reader's stamp), refuse features made by
        another extractor and stamp an unstamped file's store with it; ``mapped`` leaves the arrays on disk,
        memory-mapped, and reads a reference's features when asked for.

        Raises:
            FileNotFoundError: there is no file at ``path``.
            OutdatedFeatures: the file is of an older format, or made by another extractor than ``extractor``.
            FeatureStoreError: the file is truncated, not a feature file, or its arrays are inconsistent.
        """
        path = Path(path)
        if mapped:
            return cls._load_mapped(path, extractor)
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [name for name in _ARRAYS if name not in npz.files]
                if missing:
                    raise FeatureStoreError(f"{path}: not a feature file, missing arrays {missing}")
                arrays = {name: npz[name] for name in _ARRAYS}
        except (FileNotFoundError, FeatureStoreError):
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise FeatureStoreError(f"{path}: unreadable feature file ({exc})") from exc
        try:
            header, items = _from_arrays(arrays)
        except OutdatedFeatures as exc:
            raise OutdatedFeatures(f"{path}: {exc}; run `artwork-matcher index build` to extract them again") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise FeatureStoreError(f"{path}: corrupt feature file: {exc}") from exc
        journal = _read_journal(path, header["saved_at"])
        if journal is not None:
            header, added, removed = journal
            items = {k: v for k, v in items.items() if k not in removed and k not in added} | added
        return cls._stamped(path, header, items, extractor)

    @classmethod
    def _stamped(
        cls, path: Path, header: dict[str, Any], items: Mapping[str, FeatureSet], extractor: str | None
    ) -> FeatureStore:
        stamp = str(header.get("extractor", ""))
        if extractor is not None and stamp and stamp != extractor:
            raise OutdatedFeatures(
                f"{path}: features made by extractor {stamp!r}, this one extracts {extractor!r}; "
                "run `artwork-matcher index build` to extract them again"
            )
        store = cls(version=header["version"], extractor=stamp or extractor or "")
        store._snapshot = _Snapshot(header["version"], items)  # checked when read
        store.saved_at = header["saved_at"]
        return store

    @classmethod
    def _load_mapped(cls, path: Path, extractor: str | None) -> FeatureStore:
        try:
            header, items = _load_mapped(path)
        except (FileNotFoundError, FeatureStoreError):
            raise
        except OutdatedFeatures as exc:
            raise OutdatedFeatures(f"{path}: {exc}; run `artwork-matcher index build` to extract them again") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise FeatureStoreError(f"{path}: corrupt feature file: {exc}") from exc
        journal = _read_journal(path, header["saved_at"])
        if journal is None:
            return cls._stamped(path, header, LayeredItems(items), extractor)
        header, added, removed = journal
        hidden = frozenset((removed | set(added)) & set(items))
        return cls._stamped(path, header, LayeredItems(items, added, hidden), extractor)

    @classmethod
    def load_or_empty(cls, path: Path, *, extractor: str | None = None, mapped: bool = False) -> FeatureStore:
        """:meth:`load` the file, or an empty store (stamped ``extractor``) when it does not exist yet; a corrupt
        or outdated file still raises."""
        try:
            return cls.load(path, extractor=extractor, mapped=mapped)
        except FileNotFoundError:
            return cls(extractor=extractor or "")


def _check_entry(object_id: object, features: object) -> None:
    if not isinstance(object_id, str) or not object_id:
        raise ValueError(f"object id must be a non-empty string, got {object_id!r}")
    if not isinstance(features, FeatureSet):
        raise ValueError(f"features of {object_id!r} must be a FeatureSet, got {type(features).__name__}")


def _write_streamed(
    handle: BinaryIO,
    snapshot: _Snapshot,
    saved_at: float,
    extractor: str,
    *,
    base: tuple[float, list[str]] | None = None,
) -> None:
    """Write the file's arrays into ``handle`` one reference at a time (a plain ``np.savez`` layout: uncompressed
    ``.npy`` members, so a reader can map them); with ``base`` (its save time, the ids removed from it), a journal."""
    ids = list(snapshot.items)
    header: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "version": snapshot.version}
    header |= {"saved_at": saved_at, "ids": ids, "extractor": extractor}
    if base is not None:
        header |= {"base_saved_at": base[0], "removed": base[1]}
    counts = np.array([len(snapshot.items[object_id]) for object_id in ids], dtype=np.int64)
    sizes = np.zeros((len(ids), 2), np.int64)
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in (
            ("header", np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)),
            ("offsets", np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)),
        ):
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
        total = int(counts.sum())
        for name, dtype, width in (("keypoints", "<f4", 2), ("descriptors", "|u1", DESCRIPTOR_SIZE)):
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                shape = {"descr": dtype, "fortran_order": False, "shape": (total, width)}
                np.lib.format.write_array_header_2_0(member, shape)
                for i, object_id in enumerate(ids):
                    features = snapshot.items[object_id]
                    sizes[i] = (features.width, features.height)
                    member.write(np.ascontiguousarray(getattr(features, name)).tobytes())
        with archive.open("sizes.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, sizes, allow_pickle=False)


def _layout(arrays: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The header, offsets and sizes of a file's arrays, their dtypes, shapes and offsets checked."""
    header = _read_header(arrays["header"])
    ids = header["ids"]
    keypoints = _expect(arrays["keypoints"], np.float32, 2, "keypoints")
    descriptors = _expect(arrays["descriptors"], np.uint8, 2, "descriptors")
    offsets = _expect(arrays["offsets"], np.int64, 1, "offsets")
    sizes = _expect(arrays["sizes"], np.int64, 2, "sizes")
    if len(offsets) != len(ids) + 1 or len(sizes) != len(ids):
        raise ValueError(f"{len(ids)} ids but {len(offsets)} offsets and {len(sizes)} sizes")
    if keypoints.shape[1] != 2 or descriptors.shape[1] != DESCRIPTOR_SIZE:
        columns = (keypoints.shape[1], descriptors.shape[1])
        raise ValueError(f"keypoints and descriptors have {columns} columns, expected (2, {DESCRIPTOR_SIZE})")
    if len(keypoints) != len(descriptors):
        raise ValueError(f"{len(keypoints)} keypoints but {len(descriptors)} descriptors")
    if offsets[0] != 0 or offsets[-1] != len(keypoints) or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets are not increasing from 0 to the number of keypoints")
    if not all(isinstance(object_id, str) and object_id for object_id in ids):
        raise ValueError("object ids must be non-empty strings")
    if len(sizes) and sizes.min() < 1:
        raise ValueError("frame sizes (width, height) must be positive integers")
    return header, offsets, sizes


def _from_arrays(arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, FeatureSet]]:
    """The header and each reference's features from the file's arrays, checked."""
    header, offsets, sizes = _layout(arrays)
    keypoints, descriptors = arrays["keypoints"], arrays["descriptors"]
    items = {}
    for i, object_id in enumerate(header["ids"]):
        start, end = int(offsets[i]), int(offsets[i + 1])
        width, height = (int(v) for v in sizes[i])
        items[object_id] = FeatureSet(keypoints[start:end], descriptors[start:end], width, height)
    return header, items


def _load_mapped(path: Path) -> tuple[dict[str, Any], MappedItems]:
    """The header and the memory-mapped items of a feature file; keypoints checked finite here, in chunks, and the
    pages read let go afterwards."""
    try:
        mapped = MappedFile(path)
        missing = [name for name in _ARRAYS if not mapped.has(name)]
        if missing:
            raise FeatureStoreError(f"{path}: not a feature file, missing arrays {missing}")
        arrays = {name: mapped.array(name) for name in _ARRAYS}
    except (FileNotFoundError, FeatureStoreError):
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FeatureStoreError(f"{path}: unreadable feature file ({exc})") from exc
    header, offsets, sizes = _layout(arrays)
    keypoints = arrays["keypoints"]
    for start in range(0, len(keypoints), 1 << 20):
        if not np.isfinite(keypoints[start : start + (1 << 20)]).all():
            raise ValueError("keypoints must be finite")
    mapped.release()
    items = MappedItems(mapped, list(header["ids"]), np.array(offsets), np.array(sizes), make=FeatureSet)
    items.saved_at = float(header["saved_at"])
    return header, items


def _read_header(array: np.ndarray) -> dict[str, Any]:
    """The file's JSON header, checked: format, format version, version, save time, distinct ids."""
    header = json.loads(_expect(array, np.uint8, 1, "header").tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"header does not name the format {FORMAT!r}")
    if header.get("format_version") != FORMAT_VERSION:
        found = header.get("format_version")
        if isinstance(found, int) and 0 < found < FORMAT_VERSION:
            raise OutdatedFeatures(f"features in format version {found}, this version reads {FORMAT_VERSION}")
        raise ValueError(f"format version {found!r}, expected {FORMAT_VERSION}")
    ids, version, saved_at = header["ids"], header["version"], header["saved_at"]
    if not isinstance(version, int) or version < 0 or not isinstance(saved_at, int | float):
        raise ValueError("header version or saved_at is invalid")
    if not isinstance(ids, list) or len(set(ids)) != len(ids):
        raise ValueError("header ids must be a list of distinct object ids")
    return header


def _expect(array: np.ndarray, dtype: type, ndim: int, name: str) -> np.ndarray:
    if array.dtype != dtype or array.ndim != ndim:
        raise ValueError(f"{name} is {array.dtype} with {array.ndim} dimensions, expected {np.dtype(dtype)}, {ndim}")
    return array


def journal_path(path: Path) -> Path:
    """Where the journal of the feature file ``path`` lives."""
    return Path(path).with_name(Path(path).name + JOURNAL_SUFFIX)


class FeatureFileWatch(JournaledFileWatch):
    """The watch of a feature file and its journal (a replica reloads when either changed)."""

    def __init__(self, path: Path) -> None:
        """Watch the feature file ``path`` and its journal."""
        super().__init__(path, journal_path(path))


def _journaled(items: LayeredItems, path: Path) -> bool:
    """True when the changes over a mapped base of ``path`` are few enough to be saved as its journal."""
    base = items.base
    if not isinstance(base, MappedItems) or base.file.path != path:
        return False
    return len(items.added) + len(items.removed) <= max(JOURNAL_MIN, JOURNAL_SHARE * len(base))


def _read_journal(path: Path, base_saved_at: float) -> tuple[dict[str, Any], dict[str, FeatureSet], set[str]] | None:
    """The journal of ``path`` when it sits on the base saved at ``base_saved_at``: its header, the references it
    adds or replaces, and the ids it removes from the base; None when there is none or it names another base.

    Raises:
        FeatureStoreError: the journal is unreadable or corrupt.
    """
    journal = journal_path(path)
    try:
        with np.load(journal, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _ARRAYS}
        header, added = _from_arrays(arrays)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        raise FeatureStoreError(f"{journal}: unreadable feature journal ({exc})") from exc
    if header.get("base_saved_at") != base_saved_at:
        return None  # left by a save interrupted after rewriting the base: its changes are in the base
    removed = header.get("removed", [])
    if not isinstance(removed, list) or not all(isinstance(object_id, str) for object_id in removed):
        raise FeatureStoreError(f"{journal}: corrupt feature journal: removed ids are not a list of ids")
    return header, added, set(removed)
