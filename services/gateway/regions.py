"""Where in a visitor's photo to look: the regions embedded besides the whole photo.

Whole-photo embeddings of wall photos are dominated by wall and frame. So besides the whole photo we embed the
paintings we can locate — areas that differ from the wall colour or are textured, found on a small thumbnail — and a
few fixed views (centred crops, the two halves along the longer side) that catch what localisation misses.
Regions are fractions ``[x0, y0, x1, y1]`` of the photo. Pure numpy, a few milliseconds per photo.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from PIL import Image

WHOLE = [0.0, 0.0, 1.0, 1.0]
THUMBNAIL_SIDE = 96
"""Longest side, pixels, of the thumbnail paintings are located on."""
MAX_LOCATED = 4
"""Most located paintings embedded per photo."""


def centred(fraction: float) -> list[float]:
    """The centred region covering ``fraction`` of each side."""
    margin = (1.0 - fraction) / 2.0
    return [margin, margin, 1.0 - margin, 1.0 - margin]


def halves(width: int, height: int) -> list[list[float]]:
    """The two overlapping halves along the longer side (two paintings side by side, or one off-centre)."""
    if width >= height:
        return [[0.0, 0.1, 0.55, 0.9], [0.45, 0.1, 1.0, 0.9]]
    return [[0.1, 0.0, 0.9, 0.55], [0.1, 0.45, 0.9, 1.0]]


def propose_regions(image: Image.Image, limit: int = 8) -> list[list[float]]:
    """Regions to embed for a photo, the whole photo first, at most ``limit`` (1..8)."""
    width, height = image.size
    located = locate_paintings(image)[:MAX_LOCATED]
    if located:
        fixed = [centred(0.7), *halves(width, height)]
    else:
        fixed = [centred(0.8), centred(0.6), centred(0.4), *halves(width, height), [0.15, 0.05, 0.85, 0.75]]
    cap = max(1, min(8, limit))
    return [WHOLE, *located, *fixed][:cap]


def _close(mask: np.ndarray) -> np.ndarray:
    """Morphological closing (3×3 dilation twice, erosion twice): joins a painting's pieces, drops specks."""
    h, w = mask.shape

    def shifted(m: np.ndarray, fill: bool) -> list[np.ndarray]:
        p = np.pad(m, 1, constant_values=fill)
        return [p[i : i + h, j : j + w] for i in range(3) for j in range(3)]

    for _ in range(2):
        mask = np.max(shifted(mask, False), axis=0)
    for _ in range(2):
        mask = np.min(shifted(mask, True), axis=0)
    return mask


def foreground_mask(image: Image.Image) -> np.ndarray:
    """Thumbnail pixels that are not wall: far from the border's median colour, or on strong edges."""
    small = image.convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    distance = np.sqrt(((pixels - np.median(border, axis=0)) ** 2).sum(axis=-1))
    grey = pixels.mean(axis=-1)
    gradient = np.abs(np.diff(grey, axis=1, append=grey[:, -1:])) + np.abs(np.diff(grey, axis=0, append=grey[-1:]))
    threshold = max(25.0, float(np.percentile(distance, 50)) * 1.5)
    return _close((distance > threshold) | (gradient > 30.0))


def _components(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Bounding boxes ``(x0, y0, x1, y1, pixel_count)`` of the 4-connected components of ``mask``."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    boxes = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        queue = deque([(int(y0), int(x0))])
        seen[y0, x0] = True
        ys, xs = [], []
        while queue:
            y, x = queue.popleft()
            ys.append(y)
            xs.append(x)
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        boxes.append((min(xs), min(ys), max(xs) + 1, max(ys) + 1, len(ys)))
    return boxes


def _runs(filled: np.ndarray, min_gap: int, min_run: int) -> list[tuple[int, int]]:
    """Runs of True in ``filled``, joined across gaps shorter than ``min_gap``, dropping runs shorter than
    ``min_run``."""
    runs: list[list[int]] = []
    for i, value in enumerate(filled):
        if not value:
            continue
        if runs and i - runs[-1][1] < min_gap:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [(a, b) for a, b in runs if b - a >= min_run]


def _split(mask: np.ndarray, box: tuple[int, int, int, int], axis: int) -> list[tuple[int, int, int, int]]:
    """Split a box where a band of nearly empty columns (axis 0) or rows (axis 1) separates two paintings."""
    x0, y0, x1, y1 = box
    profile = mask[y0:y1, x0:x1].mean(axis=axis)
    side = mask.shape[1 - axis]
    pieces = _runs(profile >= 0.25, max(2, int(0.02 * side)), max(3, int(0.08 * side)))
    if len(pieces) < 2:
        return [box]
    if axis == 0:
        return [(x0 + a, y0, x0 + b, y1) for a, b in pieces]
    return [(x0, y0 + a, x1, y0 + b) for a, b in pieces]


def locate_paintings(image: Image.Image, *, min_area: float = 0.02, pad: float = 0.02) -> list[list[float]]:
    """Boxes of likely paintings, largest first: non-wall blobs covering 2–90 % of the photo, mostly filled."""
    mask = foreground_mask(image)
    h, w = mask.shape
    boxes: list[tuple[float, list[float]]] = []
    for x0, y0, x1, y1, count in _components(mask):
        if count / ((x1 - x0) * (y1 - y0)) < 0.4:
            continue
        for piece in (p for q in _split(mask, (x0, y0, x1, y1), 0) for p in _split(mask, q, 1)):
            px0, py0, px1, py1 = piece
            area = (px1 - px0) * (py1 - py0) / (w * h)
            if min_area <= area <= 0.9:
                region = [
                    max(0.0, px0 / w - pad),
                    max(0.0, py0 / h - pad),
                    min(1.0, px1 / w + pad),
                    min(1.0, py1 / h + pad),
                ]
                boxes.append((area, region))
    boxes.sort(key=lambda item: item[0], reverse=True)
    return [region for _, region in boxes]
