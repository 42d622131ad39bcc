"""Where in a visitor's photo to look: the regions embedded besides the whole photo.

Whole-photo embeddings of wall photos are dominated by wall and frame; embedding centred and side crops too puts
the painting itself in at least one of the views. Regions are fractions ``[x0, y0, x1, y1]`` of the photo.
"""

from __future__ import annotations

WHOLE = [0.0, 0.0, 1.0, 1.0]


def centred(fraction: float) -> list[float]:
    """The centred region covering ``fraction`` of each side."""
    margin = (1.0 - fraction) / 2.0
    return [margin, margin, 1.0 - margin, 1.0 - margin]


def propose_regions(width: int, height: int) -> list[list[float]]:
    """Regions to embed for a ``width`` × ``height`` photo, the whole photo first.

    Besides the whole photo: centred crops at three scales (a painting in the middle of a wall photo), and the two
    halves along the longer side (photos with two paintings side by side, or one off-centre).
    """
    regions = [WHOLE, centred(0.8), centred(0.6), centred(0.4)]
    if width >= height:
        regions += [[0.0, 0.1, 0.55, 0.9], [0.45, 0.1, 1.0, 0.9]]
    else:
        regions += [[0.1, 0.0, 0.9, 0.55], [0.1, 0.45, 0.9, 1.0]]
    regions.append([0.15, 0.05, 0.85, 0.75])
    return regions
