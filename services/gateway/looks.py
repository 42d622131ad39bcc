"""A closer look at the paintings the whole photo left unexplained. No HTTP framework here.

The geometric service locates the framed paintings of a photo (``/extract`` with ``paintings``). After the whole
photo's candidates are verified, a located painting that no verified candidate's box covers is a painting we have
not recognised yet: small, far, dark, glare-washed or cut by the photo's edge, where the whole photo's keypoints are
too few. Up to ``looks`` of them (no larger than ``max_area`` of the photo: big ones are described well by the whole
photo) are sent to ``/match/paintings``, which rectifies each at a higher resolution and verifies against it the
references its own features vote for, plus the candidates whose failed check placed them on that painting. What
verifies there joins the candidates with its box in the photo, and the decision weighs it like any other verified
candidate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from services.common.boxes import explained_by, same_painting
from services.common.schemas import LocatedPainting, MatchPaintingsResponse, MatchResult, PaintingQuery, SearchHit
from services.decision.rule import Candidate


@dataclass(frozen=True)
class PaintingLooks:
    """How many located paintings get a closer look, how many references each, and up to what size.

    Attributes:
        looks: most located paintings looked at per photo; 0 turns closer looks off.
        shortlist: references verified per look, those its features vote for most.
        max_area: largest painting looked at, as a share of the photo's area.
    """

    looks: int = 2
    shortlist: int = 4
    max_area: float = 0.35


def quad_area(painting: LocatedPainting) -> float:
    """A located painting's area as a share of the photo (shoelace formula over its corners)."""
    xs = [c[0] for c in painting.corners]
    ys = [c[1] for c in painting.corners]
    return abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2.0


def _verified_box(candidate: Candidate) -> list[float] | None:
    g = candidate.geometric
    return g.query_box if g is not None and g.verified else None


def unexplained(
    paintings: Sequence[LocatedPainting], candidates: Sequence[Candidate], looks: PaintingLooks
) -> list[int]:
    """Indexes of the located paintings to look at closer: no larger than ``max_area``, explained by no verified
    candidate's box (:func:`~services.common.boxes.explained_by`: the same painting, or a part of it), at most
    ``looks`` of them. Those an unverified candidate's failed check placed on come first (the whole photo already
    half saw a collection painting there), then the rest in the localiser's order (largest first)."""
    boxes = [b for b in (_verified_box(c) for c in candidates) if b is not None]
    open_ = [
        index
        for index, painting in enumerate(paintings)
        if quad_area(painting) <= looks.max_area and not any(explained_by(painting.box, box) for box in boxes)
    ]
    placed = {index for index in open_ if _placed_on(paintings[index], candidates)}
    return sorted(open_, key=lambda index: index not in placed)[: looks.looks]


def _placed_on(painting: LocatedPainting, candidates: Sequence[Candidate]) -> list[str]:
    """The unverified candidates whose check placed them on ``painting`` (their box the same painting)."""
    return [
        c.object_id
        for c in candidates
        if c.geometric is not None
        and not c.geometric.verified
        and c.geometric.query_box is not None
        and same_painting(c.geometric.query_box, painting.box)
    ]


def queries(
    paintings: Sequence[LocatedPainting], chosen: Sequence[int], candidates: Sequence[Candidate]
) -> list[PaintingQuery]:
    """The ``/match/paintings`` queries of the chosen paintings, each with the unverified candidates whose check
    placed them on it (a homography too weak to verify on the whole photo, its box the same painting)."""
    return [
        PaintingQuery(corners=paintings[index].corners, reference_ids=_placed_on(paintings[index], candidates))
        for index in chosen
    ]


def verified_results(response: MatchPaintingsResponse, chosen: Sequence[int]) -> dict[str, tuple[MatchResult, int]]:
    """Per reference, its best verified result over the looks (most inliers), with ``painting`` set to the located
    painting's index in ``debug.paintings``, and the votes it got from that painting's features."""
    best: dict[str, tuple[MatchResult, int]] = {}
    for look, index in zip(response.paintings, chosen, strict=True):
        votes = {v.reference_id: v.votes for v in look.shortlist}
        for result in look.results:
            if not result.verified:
                continue
            if result.reference_id not in best or result.inliers > best[result.reference_id][0].inliers:
                placed = msgspec.structs.replace(result, painting=index)
                best[result.reference_id] = (placed, votes.get(result.reference_id, 0))
    return best


def merge(
    candidates: Sequence[Candidate], found: dict[str, tuple[MatchResult, int]], hits: dict[str, SearchHit]
) -> list[Candidate]:
    """The candidates with the closer looks' verified results: a candidate that did not verify on the whole photo
    takes its painting's result; a reference only a painting voted for joins, scored by the search's ``hits``."""
    merged = []
    for c in candidates:
        if c.object_id in found and (c.geometric is None or not c.geometric.verified):
            result, votes = found[c.object_id]
            c = dataclasses.replace(c, geometric=result, votes=max(c.votes, votes))
        merged.append(c)
    known = {c.object_id for c in candidates}
    for object_id, (result, votes) in found.items():
        if object_id in known:
            continue
        hit = hits.get(object_id)
        similarity, metadata = (hit.score, hit.metadata) if hit is not None else (0.0, None)
        merged.append(Candidate(object_id, similarity, metadata, result, votes=votes))
    return merged
