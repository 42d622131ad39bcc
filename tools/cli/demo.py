"""``artwork-matcher demo``: an end-to-end run needing nothing but the installed packages.

The collection is made of images that ship inside scikit-image; the queries are photograph-like variants of them
(perspective, lighting, blur, sensor noise, JPEG, a wall around the picture) plus photos of things that are not in
the collection, which must come back as "no match".
"""

from __future__ import annotations

import csv
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import cv2
import httpx
import numpy as np
from PIL import Image

DEMO_WORKS = {
    "astronaut": ("Astronaut Eileen Collins", "NASA", "1999"),
    "chelsea": ("Chelsea the Cat", "Stefan van der Walt", ""),
    "coffee": ("A Cup of Coffee", "Rachel Michetti", ""),
    "rocket": ("Soyuz Rocket", "Bill Ingalls, NASA", "2016"),
    "hubble_deep_field": ("Hubble Deep Field", "NASA", "1995"),
    "retina": ("Human Retina", "Häggström, Mikael", "2014"),
    "immunohistochemistry": ("Immunohistochemistry", "", ""),
}
NOT_IN_COLLECTION = ("camera", "moon", "coins")


@dataclass(frozen=True)
class Query:
    """A demo photo and the object it shows ("" for none)."""

    path: Path
    expected: str


def reference_image(name: str) -> np.ndarray:
    """The scikit-image picture ``name`` (a key of :data:`DEMO_WORKS` or :data:`NOT_IN_COLLECTION`), (H, W, 3) uint8."""
    from skimage import data

    array = getattr(data, name)()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return np.ascontiguousarray(array[..., :3].astype(np.uint8))


def photograph(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo-like variant: the picture on a wall, seen in perspective, with light, blur, noise and JPEG."""
    h, w = image.shape[:2]
    wall = np.full((int(h * 1.5), int(w * 1.5), 3), rng.integers(150, 230, size=3), np.uint8)
    oy, ox = (wall.shape[0] - h) // 2, (wall.shape[1] - w) // 2
    wall[oy - 8 : oy + h + 8, ox - 8 : ox + w + 8] = (40, 30, 20)  # a frame
    wall[oy : oy + h, ox : ox + w] = image
    wall_h, wall_w = wall.shape[:2]
    jitter = rng.uniform(-0.08, 0.08, size=(4, 2)) * (wall_w, wall_h)
    src = np.array([[0, 0], [wall_w, 0], [wall_w, wall_h], [0, wall_h]], dtype=np.float32)
    dst = (src + jitter).astype(np.float32)
    warped = cv2.warpPerspective(
        wall, cv2.getPerspectiveTransform(src, dst), (wall_w, wall_h), borderMode=cv2.BORDER_REFLECT
    )
    lit = np.clip(warped.astype(np.float32) * rng.uniform(0.7, 1.2) + rng.uniform(-20, 20), 0, 255)
    blurred = cv2.GaussianBlur(lit, (0, 0), rng.uniform(0.5, 1.5))
    noisy: np.ndarray = np.clip(blurred + rng.normal(0, 6, blurred.shape), 0, 255).astype(np.uint8)
    return noisy


def make_demo(workdir: Path, seed: int = 7) -> tuple[Path, Path, list[Query]]:
    """Write the collection (images + catalogue CSV) and the query photos under ``workdir``."""
    rng = np.random.default_rng(seed)
    collection, photos = workdir / "collection", workdir / "photos"
    collection.mkdir(parents=True, exist_ok=True)
    photos.mkdir(parents=True, exist_ok=True)
    catalogue = workdir / "catalogue.csv"
    with open(catalogue, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["object_id", "title", "artist", "date", "room"])
        for object_id, (title, artist, date) in DEMO_WORKS.items():
            Image.fromarray(reference_image(object_id)).save(collection / f"{object_id}.png")
            writer.writerow([object_id, title, artist, date, "Demo room"])
    queries = []
    for object_id in list(DEMO_WORKS) + list(NOT_IN_COLLECTION):
        path = photos / f"photo_of_{object_id}.jpg"
        Image.fromarray(photograph(reference_image(object_id), rng)).save(path, quality=int(rng.integers(60, 90)))
        queries.append(Query(path, object_id if object_id in DEMO_WORKS else ""))
    return collection, catalogue, queries


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(workdir: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Build, serve, identify, summarise; returns 0 when every demo photo is answered right."""
    from services.collection.local import load_embedder
    from tools.cli.build import build_collection
    from tools.cli.identify import describe, identify_file
    from tools.cli.local_stack import SERVICES, LocalStack

    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="artwork-matcher-demo-")) if workdir is None else Path(workdir)
    try:
        collection, catalogue, queries = make_demo(root)
        print(f"demo collection: {len(DEMO_WORKS)} images from scikit-image; {len(queries)} photos", file=out)
        embedder = load_embedder()  # the EMBEDDINGS_* settings the stack's embeddings service reads too
        snapshot = root / "snapshot"
        report = build_collection(collection, snapshot, embedder, catalogue=catalogue)
        print(f"indexed {report.total} artworks into {snapshot}", file=out)
        stack = LocalStack(snapshot, ports={n: _free_port() for n in SERVICES}, log_dir=root / "logs")
        right = 0
        with stack.running() as running, httpx.Client(timeout=60) as client:
            print(f"stack up; gateway at {running.url('gateway')}", file=out)
            for query in queries:
                started = time.perf_counter()
                answer = identify_file(client, running.url("gateway"), query.path)
                got = answer.match.object_id if answer.match else ""
                ok = got == query.expected
                right += ok
                want = query.expected or "no match"
                print(
                    f"  {'ok ' if ok else 'BAD'} {query.path.name:<34} want {want:<22} got {describe(answer)}", file=out
                )
                _ = started
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
