"""How far the answers' confidences can be trusted, over labelled photos. Pure functions, no I/O.

Every photo's best answer at threshold 0 (:func:`top_answers`) is enough to tell what any operating threshold would
give (see :mod:`services.decision.metrics`): precision against coverage at every threshold, the share right per
confidence bin, and the lowest threshold that reaches a target precision (what ``calibrate`` sets).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from services.decision.metrics import Answer, LabelledPhoto, ratio

CONFIDENCE_BINS = tuple(b / 10 for b in range(11))
"""Edges of the reliability table's confidence bins."""


def top_answers(photos: Sequence[LabelledPhoto], answers: Sequence[Answer]) -> list[tuple[float, bool, str]]:
    """``(confidence, right, photo kind)`` of the best answer of every photo that has one at threshold 0 (right as
    :meth:`~services.decision.metrics.Answer.right` says: its flagged near-duplicate partner counts)."""
    out = []
    for photo, answer in zip(photos, answers, strict=True):
        named = answer.named(0.0)
        if named:
            out.append((named[0][1], answer.right(named[0][0], photo.expected), photo.kind))
    return out


@dataclass(frozen=True)
class SweepPoint:
    """The answers at one threshold: share of collection photos answered, and the precision of all answers."""

    threshold: float
    coverage: float | None
    precision: float | None
    answered: int
    wrong: int


def point_at(tops: Sequence[tuple[float, bool, str]], collection: int, threshold: float) -> SweepPoint:
    """The answers of ``tops`` (see :func:`top_answers`) with confidence ≥ ``threshold``, out of ``collection``
    photos showing an indexed artwork."""
    given = [(right, kind) for c, right, kind in tops if c >= threshold and c > 0]
    right = sum(r for r, _ in given)
    covered = sum(kind == "collection" for _, kind in given)
    return SweepPoint(threshold, ratio(covered, collection), ratio(right, len(given)), len(given), len(given) - right)


def precision_coverage(photos: Sequence[LabelledPhoto], answers: Sequence[Answer]) -> list[SweepPoint]:
    """Precision versus coverage at every distinct answer confidence (each a threshold), lowest threshold first.

    Coverage is the share of photos showing an indexed artwork that get any answer; precision counts every answer,
    including those given on photos that show none (always wrong).
    """
    tops = top_answers(photos, answers)
    collection = sum(p.kind == "collection" for p in photos)
    return [point_at(tops, collection, t) for t in sorted({c for c, _, _ in tops})]


def reliability(
    tops: Sequence[tuple[float, bool, str]], edges: Sequence[float] = CONFIDENCE_BINS
) -> list[dict[str, float | int | None]]:
    """Confidence bins → share of answers right; ``at_least``: the share right among answers with confidence ≥ lo.

    A calibrated confidence has ``share_right`` about the bin's mean confidence, and ``at_least`` ≥ ``lo``.
    The last bin includes its upper edge.
    """
    rows: list[dict[str, float | int | None]] = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        inside = [(c, r) for c, r, _ in tops if lo <= c < hi or (last and c == hi)]
        above = [r for c, r, _ in tops if c >= lo]
        rows.append(
            {
                "lo": lo,
                "hi": hi,
                "answers": len(inside),
                "right": sum(r for _, r in inside),
                "share_right": ratio(sum(r for _, r in inside), len(inside)),
                "mean_confidence": ratio(sum(c for c, _ in inside), len(inside)),
                "at_least": ratio(sum(above), len(above)),
            }
        )
    return rows


def choose_threshold(tops: Sequence[tuple[float, bool, str]], target: float, floor: float = 0.0) -> float | None:
    """The lowest answer confidence whose answers (all with confidence ≥ it) reach ``target`` precision.

    Raised to ``floor`` when lower (a confidence under one half says an answer is more likely wrong than right);
    None when no threshold reaches the target.
    """
    for threshold in sorted({c for c, _, _ in tops}):
        given = [r for c, r, _ in tops if c >= threshold]
        if sum(given) / len(given) >= target:
            return max(threshold, floor)
    return None
