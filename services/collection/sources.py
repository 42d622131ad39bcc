"""The sources of a snapshot: a folder of reference images (the file stem is the object id) and its catalogue CSV."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import msgspec

from services.collection.images import is_image_file, is_object_id
from services.common.schemas import ObjectMetadata

log = logging.getLogger(__name__)
KNOWN_COLUMNS = ("object_id", "title", "artist", "date", "room", "description", "link")
"""Catalogue columns with a field of their own; any other column goes to ``extra``."""


@dataclass(frozen=True)
class SourceImage:
    """One reference image file and the object id taken from its stem."""

    object_id: str
    path: Path


def scan_images(directory: Path) -> tuple[list[SourceImage], list[str]]:
    """Image files of ``directory`` (jpg/jpeg/png/webp, any letter case), sorted by id, and problems found.

    A stem that is not a valid object id, or a stem seen twice (``a.jpg`` and ``a.png``), is skipped and reported.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    found: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(directory.iterdir()):
        if not is_image_file(path):
            continue
        stem = path.stem
        if not is_object_id(stem):
            problems.append(f"{path.name}: file name is not a valid object id; skipped")
        elif stem in found:
            problems.append(f"{path.name}: object id {stem!r} already taken by {found[stem].name}; skipped")
        else:
            found[stem] = path
    return [SourceImage(k, v) for k, v in sorted(found.items())], problems


def read_catalogue(path: Path | None) -> dict[str, ObjectMetadata]:
    """Catalogue rows keyed by object id (``object_id,title,artist,date,room,...``; other columns go to extra)."""
    if path is None:
        return {}
    rows: dict[str, ObjectMetadata] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "object_id" not in reader.fieldnames:
            raise ValueError(f"{path}: the catalogue needs an 'object_id' column")
        for row in reader:
            object_id = (row.get("object_id") or "").strip()
            if not object_id:
                continue
            rows[object_id] = _row_metadata(path, reader.line_num, object_id, row)
    return rows


def _row_metadata(path: Path, line: int, object_id: str, row: dict[str, str | None]) -> ObjectMetadata:
    """One catalogue row as metadata, validated like the wire's (a link must be an absolute http(s) URL)."""
    fields = {k: (row.get(k) or "").strip() for k in KNOWN_COLUMNS if k != "object_id"}
    extra = {k: (v or "").strip() for k, v in row.items() if k and k not in KNOWN_COLUMNS and v}
    try:
        return msgspec.convert({"object_id": object_id, **fields, "extra": extra}, ObjectMetadata)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{path}, line {line} ({object_id}): {exc}") from exc
