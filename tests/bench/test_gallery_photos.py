"""Simulated gallery pictures: ``--captions`` changes the pictures, never which paintings they show."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from bench.gallery_photos import caption, main


def collection(folder: Path, count: int = 4) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        texture = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(texture).resize((320, 240), Image.Resampling.BICUBIC).save(folder / f"ref_{i}.jpg")
    return folder


def labels(folder: Path) -> list[list[str]]:
    with open(folder / "labels.csv", newline="") as handle:
        return list(csv.reader(handle))


def test_captions_keep_the_pictures_and_labels_of_the_same_seed(tmp_path: Path) -> None:
    refs = collection(tmp_path / "refs")
    plain, captioned = tmp_path / "plain", tmp_path / "captioned"

    assert main(["--collection", str(refs), "--count", "8", "--seed", "5", "--out", str(plain)]) == 0
    assert main(["--collection", str(refs), "--count", "8", "--seed", "5", "--out", str(captioned), "--captions"]) == 0

    rows = labels(plain)
    assert rows == labels(captioned) and len(rows) == 9
    differs = []
    for name, shown in rows[1:]:
        a = np.asarray(Image.open(plain / "pictures" / name), dtype=np.int16)
        b = np.asarray(Image.open(captioned / "pictures" / name), dtype=np.int16)
        differs.append(bool(np.abs(a - b).max() > 40))
        if not shown:  # an empty wall has nothing to caption
            assert not differs[-1]
    assert any(differs)


def test_a_caption_is_a_plate_with_text_inside_the_painting() -> None:
    painting = np.full((200, 300, 3), 128, dtype=np.uint8)

    out = caption(painting, np.random.default_rng(3))

    assert out.shape == painting.shape and not np.shares_memory(out, painting)
    changed = np.abs(out.astype(np.int16) - painting).max(axis=2) > 50
    ys, xs = np.nonzero(changed)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert 0.25 * 300 - 1 <= width <= 0.9 * 300 + 1 and 0.08 * 200 - 1 <= height <= 0.18 * 200 + 1
    plate = out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32).mean(axis=2)
    assert 0.05 < (np.abs(plate - np.median(plate)) > 60).mean() < 0.6  # text strokes on a plain plate
