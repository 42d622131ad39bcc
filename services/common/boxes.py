"""Boxes in a photo, ``[x0, y0, x1, y1]`` fractions of its width and height: how two of them relate.

One owner for "these two boxes outline the same painting", which the gateway uses to tell a located painting that a
verified answer already explains from one it should look at closer, and ``evaluate`` uses to tell whether the
localiser found a painting whose reference verified. A reference may be cropped with or without its frame and a
located painting's quadrilateral usually includes the frame, so neither box need hold the other whole.
"""

from __future__ import annotations

from collections.abc import Sequence

SAME_PAINTING_SHARE = 0.5
"""Two boxes outline the same painting when the smaller one has at least this share of its area inside the other..."""
SAME_PAINTING_SIZE = 0.25
"""...and is at least this share of the other's area (a box around a whole wall is not the painting on it)."""
WITHIN_SHARE = 0.8
"""A box lies within another when at least this share of its area is inside it."""


def area(box: Sequence[float]) -> float:
    """A box's area (0 for an empty or inverted one)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Sequence[float], b: Sequence[float]) -> float:
    """The area two boxes share."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy


def same_painting(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether boxes ``a`` and ``b`` outline the same painting (see :data:`SAME_PAINTING_SHARE` and
    :data:`SAME_PAINTING_SIZE`)."""
    small, large = sorted((area(a), area(b)))
    if small <= 0 or small < SAME_PAINTING_SIZE * large:
        return False
    return intersection(a, b) >= SAME_PAINTING_SHARE * small


def within(inner: Sequence[float], outer: Sequence[float]) -> bool:
    """Whether box ``inner`` lies within ``outer`` (:data:`WITHIN_SHARE` of its area inside it)."""
    size = area(inner)
    return size > 0 and intersection(inner, outer) >= WITHIN_SHARE * size


def explained_by(located: Sequence[float], verified: Sequence[float]) -> bool:
    """Whether a verified answer's box ``verified`` explains the localiser's box ``located``: the same painting
    (:func:`same_painting`), or a part of it (:func:`within`: paintings do not hang inside paintings, so a smaller
    box inside a recognised one is its texture, a figure or a highlight)."""
    return same_painting(located, verified) or within(located, verified)
