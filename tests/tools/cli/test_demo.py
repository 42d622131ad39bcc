"""The demo's paintings and photos: shipped within budget with their provenance, and a seeded, complete demo set."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.cli.demo import (
    EVERYDAY_PICTURES,
    PAINTINGS_DIR,
    SHOTS_PER_PAINTING,
    demo_paintings,
    demo_works,
    make_demo,
    not_in_collection,
    reference_image,
)

BUDGET_BYTES = 2_000_000


def manifest() -> list[dict[str, str]]:
    with open(PAINTINGS_DIR / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_paintings_ship_within_two_megabytes_each_with_source_licence_and_public_domain_reason() -> None:
    rows = manifest()
    files = sorted(p.name for p in PAINTINGS_DIR.glob("*.jpg"))

    assert files == sorted(f"{row['object_id']}.jpg" for row in rows), "one image per manifest row, nothing else"
    assert sum(p.stat().st_size for p in PAINTINGS_DIR.iterdir()) <= BUDGET_BYTES
    for row in rows:
        assert row["source"] and row["source_licence"] and row["title"] and row["artist"], row["object_id"]
        assert int(row["artist_died"]) < date.today().year - 100, f"{row['object_id']}: painter dead > 100 years"
        assert str(row["artist_died"]) in row["public_domain"]
        assert row["role"] in {"collection", "outsider"}


def test_the_collection_and_the_outsiders_are_the_manifests_paintings_plus_everyday_pictures() -> None:
    works = demo_works()

    assert len(works) == 15 and works["leonardo_mona_lisa"] == ("Mona Lisa", "Leonardo da Vinci", "1503–1519")
    outsiders = not_in_collection()
    assert set(outsiders) & set(works) == set()
    assert outsiders[-len(EVERYDAY_PICTURES) :] == EVERYDAY_PICTURES
    assert len(demo_paintings()) == len(works) + len(outsiders) - len(EVERYDAY_PICTURES)


def test_reference_images_are_rgb_arrays_and_an_unknown_name_is_refused() -> None:
    mona = reference_image("leonardo_mona_lisa")

    assert mona.dtype == np.uint8 and mona.ndim == 3 and mona.shape[2] == 3 and max(mona.shape[:2]) <= 640
    with pytest.raises(ValueError, match="no demo picture"):
        reference_image("astronaut")


def test_make_demo_writes_the_collection_its_catalogue_and_seeded_photos(tmp_path: Path) -> None:
    collection, catalogue, queries = make_demo(tmp_path / "a")
    _, _, again = make_demo(tmp_path / "b")

    assert sorted(p.stem for p in collection.iterdir()) == sorted(demo_works())
    with open(catalogue, newline="", encoding="utf-8") as handle:
        assert {row["object_id"]: row["title"] for row in csv.DictReader(handle)} == {
            k: v[0] for k, v in demo_works().items()
        }
    expected = [q.expected for q in queries]
    assert len(queries) == SHOTS_PER_PAINTING * len(demo_works()) + len(not_in_collection())
    assert expected.count("") == len(not_in_collection())
    assert all(expected.count(object_id) == SHOTS_PER_PAINTING for object_id in demo_works())
    assert [q.path.read_bytes() for q in queries] == [q.path.read_bytes() for q in again], "seeded"
    with Image.open(queries[0].path) as photo, Image.open(collection / f"{queries[0].expected}.png") as reference:
        assert photo.width > reference.width, "the painting hangs on a wall larger than itself"
