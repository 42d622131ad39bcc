"""Reference features read from their file on demand: the arrays of a feature file are memory-mapped, and one
reference's :class:`FeatureSet` is made when it is asked for, so a process holding a large collection keeps only the
ids and offsets in memory (about 100 bytes a reference) and the operating system pages descriptors in and out.

A feature file is an ``.npz`` whose members are stored uncompressed (``np.savez``), so each ``.npy`` member is a
contiguous run of the file that can be mapped where it lies. Changes made after loading live in a small overlay
(:class:`LayeredItems`) until the store is saved and mapped again. NumPy only.
"""

from __future__ import annotations

import mmap
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from services.collection.features import FeatureSet

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
"""A zip local file header: signature, versions, flags, method, time, date, crc, sizes, name and extra lengths."""


class MappedFile:
    """The uncompressed ``.npy`` members of one ``.npz`` file, as read-only arrays over one shared mapping."""

    def __init__(self, path: Path) -> None:
        """Map ``path``.

        Raises:
            OSError: the file cannot be opened.
            ValueError: it is not a zip of uncompressed ``.npy`` members.
        """
        self.path = Path(path)
        with zipfile.ZipFile(self.path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
        with open(self.path, "rb") as handle:
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._infos = infos

    def has(self, name: str) -> bool:
        """True when the file has a member ``<name>.npy``."""
        return f"{name}.npy" in self._infos

    def array(self, name: str) -> np.ndarray:
        """The member ``<name>.npy`` as a read-only array over the mapping (no copy).

        Raises:
            ValueError: the member is missing, compressed, or not a plain array.
        """
        info = self._infos.get(f"{name}.npy")
        if info is None or info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{name} is missing or compressed: it cannot be mapped")
        fields = _LOCAL_HEADER.unpack_from(self._map, info.header_offset)
        start = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
        view = memoryview(self._map)[start : start + info.file_size]
        reader = _BufferReader(view)
        major, _ = np.lib.format.read_magic(reader)  # type: ignore[arg-type]
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(reader)  # type: ignore[arg-type]
        if fortran or dtype.hasobject:
            raise ValueError(f"{name} is not a C-ordered plain array")
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self._map, dtype=dtype, count=count, offset=start + reader.position).reshape(shape)

    def release(self) -> None:
        """Drop the pages read so far from this process's resident set (the page cache keeps them)."""
        self._map.madvise(mmap.MADV_DONTNEED)


class _BufferReader:
    """A minimal file-like ``read`` over a buffer, for NumPy's ``.npy`` header parser."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self.position = 0

    def read(self, size: int) -> bytes:
        chunk = bytes(self._view[self.position : self.position + size])
        self.position += len(chunk)
        return chunk


class MappedItems(Mapping[str, "FeatureSet"]):
    """Object id → :class:`FeatureSet`, made on access from mapped arrays (checked against the contract then)."""

    def __init__(
        self,
        file: MappedFile,
        ids: list[str],
        offsets: np.ndarray,
        sizes: np.ndarray,
        *,
        make: Callable[[np.ndarray, np.ndarray, int, int], FeatureSet],
    ) -> None:
        """Items over ``file``'s ``keypoints`` and ``descriptors``: reference i owns rows ``offsets[i]:offsets[i+1]``
        in a ``sizes[i]`` (width, height) frame; ``make`` is :class:`FeatureSet` (passed in: that module imports
        this one)."""
        self.file = file
        self.saved_at = 0.0
        """The save time in the mapped file's header (a journal names its base by it)."""
        self._make = make
        self._keypoints = file.array("keypoints")
        self._descriptors = file.array("descriptors")
        self._ids = ids
        self._position = {object_id: i for i, object_id in enumerate(ids)}
        self._offsets = offsets
        self._sizes = sizes

    def __getitem__(self, object_id: str) -> FeatureSet:
        i = self._position[object_id]
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        width, height = (int(v) for v in self._sizes[i])
        return self._make(self._keypoints[start:end], self._descriptors[start:end], width, height)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._position

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def keypoints_total(self) -> int:
        """Keypoints over every reference."""
        return int(self._offsets[-1]) if len(self._offsets) else 0

    def count(self, object_id: str) -> int:
        """Keypoints of ``object_id`` without making its feature set."""
        i = self._position[object_id]
        return int(self._offsets[i + 1] - self._offsets[i])


class LayeredItems(Mapping[str, "FeatureSet"]):
    """A base mapping with changes over it: ``added`` entries (new or replacing) and ``removed`` base ids.

    Invariants: ``removed`` ⊆ base ids; no added id is a base id still visible. Immutable: :meth:`put` and
    :meth:`without` return a new mapping sharing the base.
    """

    def __init__(
        self,
        base: Mapping[str, FeatureSet],
        added: dict[str, FeatureSet] | None = None,
        removed: frozenset[str] = frozenset(),
    ) -> None:
        """Layer ``added`` and ``removed`` over ``base``."""
        self.base = base
        self.added = dict(added or {})
        self.removed = removed

    def put(self, object_id: str, features: FeatureSet) -> LayeredItems:
        """This mapping with ``object_id`` set to ``features``."""
        removed = self.removed | {object_id} if object_id in self.base else self.removed
        added = {k: v for k, v in self.added.items() if k != object_id}
        added[object_id] = features
        return LayeredItems(self.base, added, removed)

    def without(self, object_id: str) -> LayeredItems:
        """This mapping without ``object_id``."""
        added = {k: v for k, v in self.added.items() if k != object_id}
        removed = self.removed | {object_id} if object_id in self.base else self.removed
        return LayeredItems(self.base, added, removed)

    def keypoints_total(self) -> int:
        """Keypoints over every visible reference; a mapped base's counted from its offsets, not read."""
        if isinstance(self.base, MappedItems):
            base = self.base.keypoints_total() - sum(self.base.count(object_id) for object_id in self.removed)
        else:
            base = sum(len(self.base[object_id]) for object_id in self.base if object_id not in self.removed)
        return base + sum(len(features) for features in self.added.values())

    def __getitem__(self, object_id: str) -> FeatureSet:
        if object_id in self.added:
            return self.added[object_id]
        if object_id in self.removed:
            raise KeyError(object_id)
        return self.base[object_id]

    def __contains__(self, object_id: object) -> bool:
        return object_id in self.added or (object_id not in self.removed and object_id in self.base)

    def __iter__(self) -> Iterator[str]:
        yield from (object_id for object_id in self.base if object_id not in self.removed)
        yield from self.added

    def __len__(self) -> int:
        return len(self.base) - len(self.removed) + len(self.added)
