"""Atomic file replacement: write a temporary file beside the target, fsync, rename, fsync the directory.

A crash at any point leaves either the previous file or the new one in place, never a torn mix. Readers tell a
replaced file by its signature (:func:`file_signature`, :class:`FileWatch`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Replace ``path`` atomically with what ``write`` puts into the file object it is given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``."""

    def write(handle: BinaryIO) -> None:
        handle.write(data)

    atomic_write(path, write)


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry change (a rename) to disk, where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_signature(path: Path) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of a file, or None when it does not exist: cheap change detection for replicas."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class FileWatch:
    """The version of a file this process last loaded or wrote (its :func:`file_signature`), to tell when another
    writer has replaced it: how replicas pick up a newer snapshot without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: tuple[int, int] | None = None
        """The signature last loaded or written here; None before either."""

    def current(self) -> tuple[int, int] | None:
        """The file's signature now; None when it does not exist."""
        return file_signature(self.path)

    def mark_written(self) -> None:
        """Record the file as it is now, just written by this process (so it is not loaded back)."""
        self.seen = file_signature(self.path)

    def reload_if_replaced(self, load: Callable[[], object]) -> bool:
        """Call ``load`` when the file exists and is not the version last seen; True when it was called.

        ``load`` records what it read in :attr:`seen`.
        """
        signature = file_signature(self.path)
        if signature is None or signature == self.seen:
            return False
        load()
        return True


class JournaledFileWatch:
    """:class:`FileWatch` for a file and the journal saved beside it: the versions of both last loaded or written
    here, to tell when another writer changed either."""

    def __init__(self, path: Path, journal: Path) -> None:
        """Watch ``path`` and its ``journal``."""
        self.path, self.journal = Path(path), Path(journal)
        self.seen: tuple[tuple[int, int], tuple[int, int] | None] | None = None
        """The signatures last loaded or written here; None before either."""

    def current(self) -> tuple[tuple[int, int], tuple[int, int] | None] | None:
        """The file's and its journal's signatures now; None when the file does not exist."""
        base = file_signature(self.path)
        return None if base is None else (base, file_signature(self.journal))

    def mark_written(self) -> None:
        """Record both as they are now, just written by this process (so they are not loaded back)."""
        self.seen = self.current()

    def reload_if_replaced(self, load: Callable[[], object]) -> bool:
        """Call ``load`` when the file exists and it or its journal is not the version last seen; True if called."""
        signature = self.current()
        if signature is None or signature == self.seen:
            return False
        load()
        return True
