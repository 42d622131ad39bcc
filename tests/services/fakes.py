"""Test doubles and synthetic images shared by the service tests: no model, no network, seeded."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

THUMB = 8
"""Side of the grey thumbnail the fake embedder reads."""


class FakeEmbedder:
    """A deterministic :class:`services.embeddings.model.Embedder`: an 8x8 grey thumbnail, centred, L2-normalised.

    Different pictures give different vectors and the same picture (re-encoded or rescaled) nearly the same one,
    which is all the search and decision code needs. A constant last component keeps flat images non-zero.
    """

    def __init__(self, name: str = "fake-thumbnail") -> None:
        self._name = name
        self.loaded = False
        self.calls: list[int] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return THUMB * THUMB + 1

    def load(self) -> None:
        self.loaded = True

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls.append(len(images))
        rows = [self._vector(image) for image in images]
        return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self.dimension), np.float32)

    @staticmethod
    def _vector(image: Image.Image) -> np.ndarray:
        grey = np.asarray(image.convert("L").resize((THUMB, THUMB), Image.Resampling.BILINEAR), dtype=np.float64)
        centred = (grey.ravel() - grey.mean()) / 255.0
        vector = np.append(centred, 0.05)
        return vector / np.linalg.norm(vector)


def textured(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A seeded picture of random rectangles and ellipses: rich in ORB corners, unlike any other seed's."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(70):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        x1 = x0 + int(rng.integers(6, max(7, width // 4)))
        y1 = y0 + int(rng.integers(6, max(7, height // 4)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    """``image`` encoded in ``fmt`` (JPEG quality 95 unless told)."""
    if fmt == "JPEG":
        options.setdefault("quality", 95)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    """Plain base64 text of ``data``."""
    return base64.b64encode(data).decode("ascii")


def in_frame(image: Image.Image, scale: float = 0.8, canvas: tuple[int, int] = (400, 300)) -> Image.Image:
    """``image`` scaled and hung off-centre on a plain wall: a visitor's photo of the reference."""
    wall = Image.new("RGB", canvas, (200, 196, 190))
    small = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    wall.paste(small, (30, 20))
    return wall
