"""``artwork-matcher demo``: an end-to-end run needing nothing but the installed packages.

The collection is made of famous public-domain paintings that ship in this package (``paintings/``: Renoir, Van Gogh,
Hokusai, Hiroshige, Leonardo, Bruegel, ...; ``manifest.csv`` records each one's source, licence and why it is public
domain; ``bench/demo_paintings.py`` made them from Debian's ``gcompris-qt-data``). The queries are photo-like shots of
them (hung on a wall in a frame, seen at an angle, under uneven light, blurred, noisy, JPEG) plus photos of things
that are not in the collection, which must come back as "no match": paintings the collection leaves out (another
Arcimboldo, another Renoir, a Hiroshige, a Dürer) and everyday pictures that ship inside scikit-image.
"""

from __future__ import annotations

import csv
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TextIO

import cv2
import httpx
import numpy as np
from PIL import Image

PAINTINGS_DIR = Path(__file__).resolve().parent / "paintings"
"""The demo's paintings (``<object_id>.jpg``) and their manifest (``manifest.csv``)."""

EVERYDAY_PICTURES = ("coffee", "chelsea", "rocket")
"""scikit-image pictures photographed as things that are not in the collection (not paintings)."""

SHOTS_PER_PAINTING = 2
"""Photos taken of each painting of the collection: one from nearby, one from further away and more at an angle."""


@dataclass(frozen=True)
class DemoPainting:
    """One painting of the manifest; ``in_collection`` False: a photo of it must be answered "no match"."""

    object_id: str
    title: str
    artist: str
    date: str
    in_collection: bool


@dataclass(frozen=True)
class Query:
    """A demo photo and the object it shows ("" for none)."""

    path: Path
    expected: str


@cache
def demo_paintings() -> tuple[DemoPainting, ...]:
    """The manifest's paintings, in its order."""
    with open(PAINTINGS_DIR / "manifest.csv", newline="", encoding="utf-8") as handle:
        return tuple(
            DemoPainting(row["object_id"], row["title"], row["artist"], row["date"], row["role"] == "collection")
            for row in csv.DictReader(handle)
        )


def demo_works() -> dict[str, tuple[str, str, str]]:
    """The demo collection: object id → (title, artist, date)."""
    return {p.object_id: (p.title, p.artist, p.date) for p in demo_paintings() if p.in_collection}


def not_in_collection() -> tuple[str, ...]:
    """Pictures photographed as things the collection does not hold: left-out paintings, then everyday pictures."""
    return tuple(p.object_id for p in demo_paintings() if not p.in_collection) + EVERYDAY_PICTURES


def reference_image(name: str) -> np.ndarray:
    """The picture ``name`` (a painting of the manifest or one of :data:`EVERYDAY_PICTURES`), (H, W, 3) uint8 RGB.

    Raises:
        ValueError: ``name`` is neither.
    """
    path = PAINTINGS_DIR / f"{name}.jpg"
    if name in {p.object_id for p in demo_paintings()} and path.is_file():
        with Image.open(path) as image:
            return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    if name not in EVERYDAY_PICTURES:
        raise ValueError(f"no demo picture {name!r}")
    from skimage import data

    array = getattr(data, name)()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return np.ascontiguousarray(array[..., :3].astype(np.uint8))


def _hang(image: np.ndarray, rng: np.random.Generator, margin: float) -> np.ndarray:
    """The picture in a frame (gilded or dark wood, with a lighter inner edge) on a plain wall of random colour."""
    h, w = image.shape[:2]
    frame = max(6, int(0.05 * max(h, w) * rng.uniform(0.6, 1.4)))
    wall = np.empty((int(h * margin) + 2 * frame, int(w * margin) + 2 * frame, 3), np.uint8)
    wall[:] = rng.integers(150, 235, size=3)
    oy, ox = (wall.shape[0] - h) // 2, (wall.shape[1] - w) // 2
    colour = (150, 115, 45) if rng.random() < 0.5 else (55, 38, 25)
    wall[oy - frame : oy + h + frame, ox - frame : ox + w + frame] = colour
    edge = max(2, frame // 4)
    wall[oy - edge : oy + h + edge, ox - edge : ox + w + edge] = np.clip(np.array(colour) * 1.4, 0, 255)
    wall[oy : oy + h, ox : ox + w] = image
    return wall


def photograph(image: np.ndarray, rng: np.random.Generator, *, far: bool = False, framed: bool = True) -> np.ndarray:
    """A photo-like shot: the picture framed on a wall, at an angle, under uneven light, blurred and noisy.

    ``far``: the picture smaller in the shot and seen more at an angle. ``framed`` False: the picture is the scene
    itself (a photo of a cup or a cat), only seen at an angle, lit, blurred and noisy.
    """
    wall = _hang(image, rng, rng.uniform(1.7, 2.1) if far else rng.uniform(1.25, 1.5)) if framed else image
    wall_h, wall_w = wall.shape[:2]
    tilt = 0.12 if far else 0.07
    src = np.array([[0, 0], [wall_w, 0], [wall_w, wall_h], [0, wall_h]], dtype=np.float32)
    dst = (src + rng.uniform(-tilt, tilt, size=(4, 2)) * (wall_w, wall_h)).astype(np.float32)
    warped = cv2.warpPerspective(
        wall, cv2.getPerspectiveTransform(src, dst), (wall_w, wall_h), borderMode=cv2.BORDER_REFLECT
    ).astype(np.float32)
    # Light from one side: a brightness ramp across the shot, a colour cast, then the camera's exposure.
    ramp = np.linspace(rng.uniform(0.65, 0.9), rng.uniform(1.0, 1.2), wall_w, dtype=np.float32)
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    lit = warped * ramp[None, :, None] * rng.uniform(0.92, 1.08, size=3) + rng.uniform(-15, 15)
    blurred = cv2.GaussianBlur(np.clip(lit, 0, 255), (0, 0), rng.uniform(0.6, 1.6))
    noisy: np.ndarray = np.clip(blurred + rng.normal(0, rng.uniform(3, 8), blurred.shape), 0, 255).astype(np.uint8)
    return noisy


def make_demo(workdir: Path, seed: int = 7) -> tuple[Path, Path, list[Query]]:
    """Write the collection (images + catalogue CSV) and the query photos under ``workdir``."""
    rng = np.random.default_rng(seed)
    collection, photos = workdir / "collection", workdir / "photos"
    collection.mkdir(parents=True, exist_ok=True)
    photos.mkdir(parents=True, exist_ok=True)
    catalogue = workdir / "catalogue.csv"
    works = demo_works()
    with open(catalogue, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["object_id", "title", "artist", "date", "room"])
        for room, (object_id, (title, artist, date)) in enumerate(works.items(), start=1):
            Image.fromarray(reference_image(object_id)).save(collection / f"{object_id}.png")
            writer.writerow([object_id, title, artist, date, f"Demo room {1 + room % 3}"])
    queries = []
    for object_id in list(works) + list(not_in_collection()):
        shots = (False, True) if object_id in works else (False,)
        for far in shots:
            path = photos / f"photo_of_{object_id}{'_far' if far else ''}.jpg"
            shot = photograph(reference_image(object_id), rng, far=far, framed=object_id not in EVERYDAY_PICTURES)
            Image.fromarray(shot).save(path, quality=int(rng.integers(60, 90)))
            queries.append(Query(path, object_id if object_id in works else ""))
    return collection, catalogue, queries


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(workdir: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Build, serve, identify, summarise; returns 0 when every demo photo is answered right."""
    from services.collection.local import DeferredEmbedder
    from tools.cli.build import build_collection
    from tools.cli.identify import describe, identify_file
    from tools.cli.local_stack import SERVICES, LocalStack

    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="artwork-matcher-demo-")) if workdir is None else Path(workdir)
    try:
        collection, catalogue, queries = make_demo(root)
        print(
            f"demo collection: {len(demo_works())} public-domain paintings; {len(queries)} photos "
            f"({sum(1 for q in queries if not q.expected)} of things not in the collection)",
            file=out,
        )
        embedder = DeferredEmbedder()  # the EMBEDDINGS_* settings the stack's embeddings service reads too
        snapshot = root / "snapshot"
        report = build_collection(collection, snapshot, embedder, catalogue=catalogue)
        print(f"indexed {report.total} artworks into {snapshot}", file=out)
        stack = LocalStack(snapshot, ports={n: _free_port() for n in SERVICES}, log_dir=root / "logs")
        right = 0
        with stack.running() as running, httpx.Client(timeout=60) as client:
            print(f"stack up; gateway at {running.url('gateway')}", file=out)
            for query in queries:
                answer = identify_file(client, running.url("gateway"), query.path)
                got = answer.match.object_id if answer.match else ""
                ok = got == query.expected
                right += ok
                want = query.expected or "no match"
                print(
                    f"  {'ok ' if ok else 'BAD'} {query.path.name:<44} want {want:<28} got {describe(answer)}", file=out
                )
        print(
            f"summary: {right}/{len(queries)} photos answered right "
            f"({sum(1 for q in queries if q.expected)} collection photos, "
            f"{sum(1 for q in queries if not q.expected)} not in the collection)",
            file=out,
        )
        return 0 if right == len(queries) else 1
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)
