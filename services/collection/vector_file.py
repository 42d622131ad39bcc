"""The format of the snapshot's ``search.npz``: one ``.npz`` with a JSON ``state`` (as uint8 bytes) and the FAISS
index serialised by FAISS (``index``, uint8 bytes). No pickle.

``state`` holds ``format`` (:data:`FORMAT_VERSION`), ``dimension``, ``kind``, ``model`` and ``preprocessing`` (the
model stamp, see :mod:`services.collection.stamp`), ``next_label``, ``labels`` (object id → FAISS label),
``metadata`` (object id → catalogue fields) and ``ivf`` (lists, probe, train_factor). This module reads and writes
the container without FAISS, so the gateway can read the stamp; :mod:`services.collection.vectors` gives the index
bytes meaning.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1


class SnapshotError(ValueError):
    """A snapshot file is missing parts, corrupt or of an unknown format."""


def encode_vector_file(state: dict[str, Any], index_bytes: np.ndarray) -> bytes:
    """The file's bytes for ``state`` (``format`` is set here) and FAISS's serialised index."""
    buffer = io.BytesIO()
    payload = json.dumps({**state, "format": FORMAT_VERSION}).encode("utf-8")
    np.savez(buffer, state=np.frombuffer(payload, dtype=np.uint8), index=np.asarray(index_bytes, np.uint8))
    return buffer.getvalue()


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


def _read(path: Path, *, with_index: bool) -> tuple[dict[str, Any], np.ndarray]:
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            state = json.loads(bytes(data["state"]).decode("utf-8"))
            index = np.ascontiguousarray(data["index"]) if with_index else np.zeros(0, np.uint8)
    except (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"search snapshot {path} is unreadable: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found = state.get("format") if isinstance(state, dict) else state
        raise SnapshotError(f"search snapshot {path} has unknown format {found!r}")
    return state, index
