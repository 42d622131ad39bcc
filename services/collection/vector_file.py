"""The format of the snapshot's ``search.npz``: one ``.npz`` with a JSON ``state`` (as uint8 bytes) and the FAISS
index serialised by FAISS (``index``, uint8 bytes). No pickle.

``state`` holds ``format`` (:data:`FORMAT_VERSION`), ``dimension``, ``kind``, ``model`` and ``preprocessing`` (the
model stamp, see :mod:`services.collection.stamp`), ``next_label``, ``labels`` (object id → FAISS label),
``metadata`` (object id → catalogue fields) and ``ivf`` (lists, probe, train_factor). This module reads and writes
the container without FAISS, so the gateway can read the stamp; :mod:`services.collection.vectors` gives the index
bytes meaning.

Both arrays are stored uncompressed, so a large index is streamed: :func:`write_vector_file` writes the index bytes
as FAISS produces them and :func:`open_index_stream` hands them to FAISS as it reads, never holding a second copy of
a gigabyte-sized index in memory. Files written either way read the same.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FORMAT_VERSION = 1
RECALL_TARGET = 0.97
"""Recall@10 against exact search the compressed index's probe count is tuned to, on the collection's own vectors.
Photos are noisier than the stored vectors the tuning queries with: a 0.95 target gave 0.950 on noisy queries at
100 000 artworks (``bench/scale.py``), so the default keeps a margin."""
COMPRESS_ABOVE = 50_000
"""Vectors from which an ``auto`` index is compressed (exact search over 50 000 vectors of 1280 floats takes a few
milliseconds on one core; above, the inverted file is faster and four times smaller). Declared here, FAISS-free, so
that the infrastructure's sizing reads the same number."""


class SnapshotError(ValueError):
    """A snapshot file is missing parts, corrupt or of an unknown format."""


def encode_vector_file(state: dict[str, Any], index_bytes: np.ndarray) -> bytes:
    """The file's bytes for ``state`` (``format`` is set here) and FAISS's serialised index."""
    buffer = io.BytesIO()
    payload = json.dumps({**state, "format": FORMAT_VERSION}).encode("utf-8")
    np.savez(buffer, state=np.frombuffer(payload, dtype=np.uint8), index=np.asarray(index_bytes, np.uint8))
    return buffer.getvalue()


def write_vector_file(
    handle: BinaryIO, state: dict[str, Any], index_size: int, write_index: Callable[[Callable[[bytes], object]], None]
) -> None:
    """Write the file into ``handle`` (seekable) streaming the index: ``write_index(sink)`` must pass exactly
    ``index_size`` bytes to ``sink``, in order.

    Raises:
        SnapshotError: ``write_index`` wrote another number of bytes than ``index_size``.
    """
    payload = np.frombuffer(json.dumps({**state, "format": FORMAT_VERSION}).encode("utf-8"), dtype=np.uint8)
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("state.npy", "w") as member:
            np.lib.format.write_array(member, payload, allow_pickle=False)
        with archive.open("index.npy", "w", force_zip64=True) as member:
            header = {"descr": "|u1", "fortran_order": False, "shape": (index_size,)}
            np.lib.format.write_array_header_1_0(member, header)
            written = 0

            def sink(chunk: bytes) -> None:
                nonlocal written
                written += len(chunk)
                member.write(chunk)

            write_index(sink)
    if written != index_size:
        raise SnapshotError(f"the index wrote {written} bytes, {index_size} were announced")


@contextlib.contextmanager
def open_index_stream(
    path: Path, decode: Callable[[bytes], dict[str, Any]] = json.loads
) -> Iterator[tuple[dict[str, Any], Callable[[int], bytes]]]:
    """The ``state`` of a vector file and a ``read(n)`` over its serialised index, for FAISS to read from without a
    copy of the whole index in memory. ``decode`` turns the state's JSON bytes into the mapping (a typed decoder can
    keep large parts undecoded); it raises ValueError on bytes it cannot read.

    Raises:
        SnapshotError: the file is missing, unreadable, or of an unknown format.
    """
    state = _read(path, with_index=False, decode=decode)[0]
    try:
        archive = zipfile.ZipFile(Path(path))
        member = archive.open("index.npy")
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"search snapshot {path} is unreadable: {exc}") from exc
    with archive, member:
        try:
            major, _ = np.lib.format.read_magic(member)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(member)
        except ValueError as exc:
            raise SnapshotError(f"search snapshot {path} is unreadable: {exc}") from exc
        if dtype != np.uint8 or len(shape) != 1:
            raise SnapshotError(f"search snapshot {path}: the index is not a byte array")
        yield state, member.read


def read_vector_file(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    """The ``state`` mapping of a file written by :func:`encode_vector_file` and its serialised index (uint8).

    Raises:
        SnapshotError: the file is missing, unreadable, or of an unknown format.
    """
    return _read(path, with_index=True)


def read_vector_state(path: Path) -> dict[str, Any]:
    """Only the ``state`` mapping of a vector file (the index bytes are not read): cheap, and needs no FAISS.

    Raises:
        SnapshotError: the file is missing, unreadable, or of an unknown format.
    """
    return _read(path, with_index=False)[0]


def _read(
    path: Path, *, with_index: bool, decode: Callable[[bytes], dict[str, Any]] = json.loads
) -> tuple[dict[str, Any], np.ndarray]:
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            state = decode(bytes(data["state"]))
            index = np.ascontiguousarray(data["index"]) if with_index else np.zeros(0, np.uint8)
    except (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"search snapshot {path} is unreadable: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found = state.get("format") if isinstance(state, dict) else state
        raise SnapshotError(f"search snapshot {path} has unknown format {found!r}")
    return state, index
