"""Turning request images and regions into embeddings; no HTTP here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from services.common.errors import InvalidFields
from services.embeddings.batching import MicroBatcher
from services.embeddings.model import Embedder

FULL_IMAGE = (0.0, 0.0, 1.0, 1.0)


def crop_regions(image: Image.Image, regions: Sequence[Sequence[float]]) -> list[Image.Image]:
    """Crop each ``[x0, y0, x1, y1]`` region (fractions of width and height) out of ``image``.

    Raises:
        InvalidFields: a region with x1 <= x0 or y1 <= y0, or one smaller than a pixel.
    """
    width, height = image.size
    crops = []
    for number, (x0, y0, x1, y1) in enumerate(regions):
        if x1 <= x0 or y1 <= y0:
            raise InvalidFields(
                "a region needs x0 < x1 and y0 < y1", details={"region": number, "box": [x0, y0, x1, y1]}
            )
        box = (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            raise InvalidFields("a region is smaller than one pixel", details={"region": number})
        crops.append(image if box == (0, 0, width, height) else image.crop(box))
    return crops


class EmbeddingPipeline:
    """Crops request images and embeds them through one :class:`MicroBatcher`: a single worker thread runs the
    model, so one pass at a time keeps the CPU uncontended, and requests that queue meanwhile share a pass."""

    def __init__(self, embedder: Embedder, *, max_images: int = 64, max_batch: int = 16, max_queue: int = 16) -> None:
        """Args:
        embedder: the model.
        max_images: most crops (images times regions) one request may ask for.
        max_batch: most crops of queued requests embedded together in one pass.
        max_queue: most requests waiting for the model; one more is refused at once with ``overloaded``.
        """
        self.embedder = embedder
        self.max_images = max_images
        self.batcher: MicroBatcher[Image.Image] = MicroBatcher(
            lambda crops: embedder.embed(crops), max_batch=max_batch, max_queue=max_queue
        )

    def embed(
        self, images: Sequence[Image.Image], regions: Sequence[Sequence[float]] | None = None
    ) -> tuple[np.ndarray, int]:
        """Embed every region of every image; returns ``(N × R, D)`` rows and R (regions per image).

        Raises:
            InvalidFields: too many crops, or a bad region.
            Overloaded: the model's queue is full.
        """
        boxes = list(regions) if regions else [FULL_IMAGE]
        total = len(images) * len(boxes)
        if total > self.max_images:
            raise InvalidFields(
                f"{total} crops requested; at most {self.max_images} per request",
                details={"requested": total, "max": self.max_images},
            )
        crops = [crop for image in images for crop in crop_regions(image, boxes)]
        return self.batcher.submit(crops), len(boxes)

    def close(self) -> None:
        """Stop the model's worker thread."""
        self.batcher.close()
