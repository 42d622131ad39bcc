"""Atomic file replacement: the target holds the old bytes or the new ones, never a mix, and no debris stays."""

from __future__ import annotations

import os

import pytest

from services.common.atomic import FileWatch, atomic_write, atomic_write_bytes, file_signature


def _debris(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_writes_a_new_file_creating_missing_directories(tmp_path):
    target = tmp_path / "deep" / "er" / "snapshot.bin"

    atomic_write_bytes(target, b"hello")

    assert target.read_bytes() == b"hello"
    assert _debris(target.parent) == []


def test_replaces_an_existing_file_completely(tmp_path):
    target = tmp_path / "snapshot.bin"
    target.write_bytes(b"a much longer previous content")

    atomic_write(target, lambda handle: handle.write(b"new"))

    assert target.read_bytes() == b"new"


def test_a_writer_failing_midway_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "snapshot.bin"
    target.write_bytes(b"previous")

    def crash(handle):
        handle.write(b"half of the new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, crash)

    assert target.read_bytes() == b"previous"
    assert _debris(tmp_path) == []


def test_a_crash_at_the_rename_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "snapshot.bin"
    target.write_bytes(b"previous")

    def failing_replace(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="power cut"):
        atomic_write_bytes(target, b"new content")

    assert target.read_bytes() == b"previous"
    assert _debris(tmp_path) == []


def test_the_new_content_is_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])

    atomic_write_bytes(tmp_path / "f.bin", b"x")

    # file fsync, rename, then the directory entry is fsynced
    assert events == ["fsync", "replace", "fsync"]


def test_file_signature_is_none_for_a_missing_file_and_changes_with_the_content(tmp_path):
    target = tmp_path / "f.bin"
    assert file_signature(target) is None

    atomic_write_bytes(target, b"one")
    first = file_signature(target)
    atomic_write_bytes(target, b"three")

    assert first is not None and first[1] == 3
    assert file_signature(target) != first


def test_file_watch_loads_a_replaced_file_once_and_never_its_own_writes_or_a_missing_file(tmp_path):
    target = tmp_path / "snapshot.bin"
    watch = FileWatch(target)
    loads: list[bytes] = []

    def load() -> None:
        watch.seen = watch.current()
        loads.append(target.read_bytes())

    assert watch.reload_if_replaced(load) is False  # no file yet

    atomic_write_bytes(target, b"from another writer")
    assert watch.reload_if_replaced(load) is True
    assert watch.reload_if_replaced(load) is False  # the same version again

    atomic_write_bytes(target, b"ours")
    watch.mark_written()
    assert watch.reload_if_replaced(load) is False  # our own write is not loaded back

    atomic_write_bytes(target, b"a newer one from another writer")
    assert watch.reload_if_replaced(load) is True
    assert loads == [b"from another writer", b"a newer one from another writer"]
