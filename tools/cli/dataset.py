"""A labelled evaluation set on disk (the ``museum-dev`` layout) and the artworks left out of the index."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from services.collection.sources import scan_images
from services.decision.metrics import LabelledPhoto


@dataclass(frozen=True)
class Dataset:
    """Where the parts of a labelled set live.

    Attributes:
        collection: folder of reference images, the file stem is the object id.
        catalogue: CSV ``object_id,title,artist,...`` or None.
        photos: folder of visitor photos.
        labels: CSV ``picture_image_path,painting_image_paths`` (``;``-separated object files, empty: none).
    """

    collection: Path
    catalogue: Path | None
    photos: Path
    labels: Path

    @classmethod
    def locate(
        cls,
        data: Path | None,
        *,
        collection: Path | None = None,
        catalogue: Path | None = None,
        photos: Path | None = None,
        labels: Path | None = None,
    ) -> Dataset:
        """The parts under ``data`` (``objects/``, ``objects.csv``, ``pictures/``, ``labels.csv``), each overridable.

        Raises:
            FileNotFoundError: a part is missing; the message names it and the option that sets it.
        """
        default_catalogue = data / "objects.csv" if data is not None else None
        found = cls(
            collection=collection or _under(data, "objects", "--collection"),
            catalogue=catalogue or (default_catalogue if default_catalogue and default_catalogue.exists() else None),
            photos=photos or _under(data, "pictures", "--photos"),
            labels=labels or _under(data, "labels.csv", "--labels"),
        )
        for path, option in (
            (found.collection, "--collection"),
            (found.photos, "--photos"),
            (found.labels, "--labels"),
        ):
            if not path.exists():
                raise FileNotFoundError(f"{path} does not exist (set it with --data or {option})")
        return found

    def object_ids(self) -> list[str]:
        """The collection's object ids, sorted."""
        images, _ = scan_images(self.collection)
        return [i.object_id for i in images]


def _under(data: Path | None, name: str, option: str) -> Path:
    if data is None:
        raise FileNotFoundError(f"give --data or {option}")
    return data / name


def read_labels(path: Path) -> dict[str, frozenset[str]]:
    """Photo file name → the object ids it shows (file stems of the labels); empty: no collection artwork."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"picture_image_path", "painting_image_paths"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs the columns picture_image_path,painting_image_paths")
        return {
            row["picture_image_path"].strip(): frozenset(
                Path(p.strip()).stem for p in (row["painting_image_paths"] or "").split(";") if p.strip()
            )
            for row in reader
        }


def choose_excluded(object_ids: Iterable[str], fraction: float, seed: int) -> frozenset[str]:
    """A seeded random ``fraction`` of the artworks (rounded) to leave out of the index."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the excluded fraction must be in [0, 1), got {fraction}")
    ids = sorted(object_ids)
    return frozenset(random.Random(seed).sample(ids, round(fraction * len(ids))))


def labelled_photos(labels: dict[str, frozenset[str]], excluded: frozenset[str] = frozenset()) -> list[LabelledPhoto]:
    """The photos sorted by name; each expects the artworks it shows that are not excluded.

    A photo showing only excluded artworks expects "no match"; one showing an excluded and an included artwork
    still expects the included one.
    """
    return [LabelledPhoto(name, shown, shown - excluded) for name, shown in sorted(labels.items())]


def link_collection(dataset: Dataset, excluded: frozenset[str], target: Path) -> Path:
    """A folder of symlinks to the collection's images minus ``excluded`` (replacing ``target``'s links)."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if old.is_symlink():
            old.unlink()
    images, _ = scan_images(dataset.collection)
    for image in images:
        if image.object_id not in excluded:
            (target / image.path.name).symlink_to(image.path.resolve())
    return target
