"""Recognition-quality metrics over labelled photos and their ``/identify`` answers. Pure functions, no I/O.

Every answer is collected once with threshold 0 (every candidate with any confidence is named); the answers at an
operating threshold ``t`` are the named matches with confidence ≥ ``t``. That is exactly what the gateway would have
answered at ``t``: ``decide`` keeps answers greedily in confidence order, so a match above ``t`` is only ever
suppressed by a better one, which is above ``t`` too. One pass over the photos thus serves every threshold.

A near-duplicate partner the gateway answers right after an answer (``near_duplicate_of``, see
:mod:`services.decision.duplicates`) is a declared ambiguity, not a claim of its own: it is kept apart from the
matches (:attr:`Answer.near_duplicates`), so it never counts as an artwork named, and top-1 and precision count an
answer as right when the labelled artwork is the answer or its flagged partner (:meth:`Answer.right`); such an
answer is not a wrong artwork named or a failure either. Every other figure reads the matches alone, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from services.common.schemas import CandidateEvidence

HIT_RANKS = (1, 3, 5, 10)
STAGES = ("embedding_ms", "search_ms", "geometric_ms", "total_ms", "request_ms")
"""Latency stages: the gateway's ``timing`` fields and the round trip the client measured."""


@dataclass(frozen=True)
class LabelledPhoto:
    """One photo and its ground truth.

    Attributes:
        name: file name in the photo folder.
        shown: every labelled artwork in the photo.
        expected: the shown artworks that are in the index (``shown`` minus left-out ones).
    """

    name: str
    shown: frozenset[str]
    expected: frozenset[str]

    @property
    def group(self) -> str:
        """The name prefix before ``__`` (the photo series), or ``other``."""
        return self.name.split("__", 1)[0] if "__" in self.name else "other"

    @property
    def kind(self) -> str:
        """``collection`` (shows an indexed artwork), ``none`` (shows none) or ``excluded`` (only left-out ones)."""
        if self.expected:
            return "collection"
        return "excluded" if self.shown else "none"


@dataclass(frozen=True)
class Answer:
    """One ``/identify`` answer reduced to what the metrics read.

    Attributes:
        matches: ``(object_id, confidence)`` of every named artwork, best first (collected at threshold 0).
        candidates: the ``debug.candidates`` rows, in the gateway's order.
        timing: latency per stage, milliseconds.
        error: why the request failed, if it did (then there are no matches).
        degraded: the gateway answered without geometric verification although it was asked for.
        paintings: boxes ``(x0, y0, x1, y1)`` of the paintings the localiser found (``debug.paintings``).
        looked_closer: indexes in ``paintings`` of those verified on their own rectified crop.
        near_duplicates: ``(answer, partner)`` of every near-duplicate partner answered right after a match (its
            ``near_duplicate_of``); partners are not in ``matches``.
    """

    matches: tuple[tuple[str, float], ...] = ()
    candidates: tuple[CandidateEvidence, ...] = ()
    timing: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    degraded: bool = False
    paintings: tuple[tuple[float, ...], ...] = ()
    looked_closer: tuple[int, ...] = ()
    near_duplicates: tuple[tuple[str, str], ...] = ()

    def right(self, object_id: str, expected: frozenset[str]) -> bool:
        """Whether answering ``object_id`` is right: it is expected, or a near-duplicate partner flagged with it is
        (a declared ambiguity between two references of the same picture)."""
        return object_id in expected or any(a == object_id and p in expected for a, p in self.near_duplicates)

    def named(self, threshold: float) -> list[tuple[str, float]]:
        """The matches the gateway gives at ``threshold``."""
        return [(o, c) for o, c in self.matches if c >= threshold and c > 0]

    def rank_of(self, expected: frozenset[str]) -> int | None:
        """1-based rank of the first expected artwork in the candidate list, None when absent."""
        for i, row in enumerate(self.candidates, start=1):
            if row.object_id in expected:
                return i
        return None


@dataclass
class Summary:
    """Counts over a set of photos at one threshold; rates are derived from them (None when undefined)."""

    photos: int = 0
    collection: int = 0
    top1_right: int = 0
    none: int = 0
    none_right: int = 0
    excluded: int = 0
    excluded_right: int = 0
    answered: int = 0
    answered_right: int = 0
    multi: int = 0
    multi_complete: int = 0
    wrong_named: int = 0
    errors: int = 0
    reciprocal_ranks: float = 0.0
    hits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(HIT_RANKS, 0))

    def rates(self) -> dict[str, float | None]:
        """Top-1, correct "no match" (original and made by exclusion), precision, complete answers, MRR, Hit@k."""
        rates = {
            "top1": ratio(self.top1_right, self.collection),
            "no_match": ratio(self.none_right, self.none),
            "no_match_excluded": ratio(self.excluded_right, self.excluded),
            "precision": ratio(self.answered_right, self.answered),
            "complete": ratio(self.multi_complete, self.multi),
            "mrr": ratio(self.reciprocal_ranks, self.collection),
        }
        rates.update({f"hit@{k}": ratio(self.hits[k], self.collection) for k in HIT_RANKS})
        return rates


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, None for an empty denominator."""
    return numerator / denominator if denominator else None


def add_photo(summary: Summary, photo: LabelledPhoto, answer: Answer, threshold: float) -> None:
    """Count one photo's answer at ``threshold`` into ``summary``."""
    named = [o for o, _ in answer.named(threshold)]
    summary.photos += 1
    summary.errors += answer.error is not None
    summary.wrong_named += sum(not answer.right(o, photo.expected) for o in named)
    if named:
        summary.answered += 1
        summary.answered_right += answer.right(named[0], photo.expected)
    if photo.kind == "none":
        summary.none += 1
        summary.none_right += not named
    elif photo.kind == "excluded":
        summary.excluded += 1
        summary.excluded_right += not named
    else:
        summary.collection += 1
        summary.top1_right += bool(named) and answer.right(named[0], photo.expected)
        rank = answer.rank_of(photo.expected)
        summary.reciprocal_ranks += 1.0 / rank if rank else 0.0
        for k in HIT_RANKS:
            summary.hits[k] += rank is not None and rank <= k
        if len(photo.expected) > 1:
            summary.multi += 1
            summary.multi_complete += photo.expected <= set(named)


def summarise(photos: Sequence[LabelledPhoto], answers: Sequence[Answer], threshold: float) -> Summary:
    """Counts over every photo."""
    summary = Summary()
    for photo, answer in zip(photos, answers, strict=True):
        add_photo(summary, photo, answer, threshold)
    return summary


def by_group(photos: Sequence[LabelledPhoto], answers: Sequence[Answer], threshold: float) -> dict[str, Summary]:
    """Counts per photo group, groups sorted by name."""
    groups: dict[str, Summary] = {}
    for photo, answer in zip(photos, answers, strict=True):
        add_photo(groups.setdefault(photo.group, Summary()), photo, answer, threshold)
    return dict(sorted(groups.items()))


STAGE_KEYS = ("paintings", "embedding", "voted", "shortlisted", "verified", "answered")
"""Columns of the stage breakdown: labelled paintings, and how many of them reached each stage."""


def stage_breakdown(
    photos: Sequence[LabelledPhoto], answers: Sequence[Answer], threshold: float
) -> dict[str, dict[str, Any]]:
    """Per photo group, where each labelled painting of the collection was lost.

    Stages: among the embedding's candidates (``embedding_rank`` > 0), voted for by the local features
    (``votes`` > 0), shortlisted by either, verified geometrically, answered at ``threshold``. ``missed`` counts why
    each painting that was not answered was lost: ``not shortlisted``, the geometric check's ``reason``, or
    ``below threshold`` (verified, but its confidence did not reach the cut).
    """
    groups: dict[str, dict[str, Any]] = {}
    for photo, answer in zip(photos, answers, strict=True):
        if photo.kind != "collection" or answer.error:
            continue
        g = groups.setdefault(photo.group, dict.fromkeys(STAGE_KEYS, 0) | {"missed": {}})
        named = {o for o, _ in answer.named(threshold)}
        rows = {row.object_id: row for row in answer.candidates}
        for object_id in sorted(photo.expected):
            row = rows.get(object_id)
            g["paintings"] += 1
            if row is not None:
                g["shortlisted"] += 1
                g["embedding"] += int(row.embedding_rank > 0)
                g["voted"] += int(row.votes > 0)
                g["verified"] += int(bool(row.verified))
            if object_id in named:
                g["answered"] += 1
                continue
            reason = (
                "not shortlisted"
                if row is None
                else "below threshold"
                if row.verified
                else str(row.reason or "not verified")
            )
            g["missed"][reason] = g["missed"].get(reason, 0) + 1
    return dict(sorted(groups.items()))


def flagged_pairs(photos: Sequence[LabelledPhoto], answers: Sequence[Answer], threshold: float) -> list[dict[str, Any]]:
    """Every photo answered at ``threshold`` with a near-duplicate partner: the photo, what was expected, the answer
    and its partner, and whether the pair holds the expected artwork (right by :meth:`Answer.right`)."""
    found = []
    for photo, answer in zip(photos, answers, strict=True):
        named = {o for o, _ in answer.named(threshold)}
        for leader, partner in answer.near_duplicates:
            if leader in named:
                found.append(
                    {
                        "photo": photo.name,
                        "expected": sorted(photo.expected),
                        "answered": leader,
                        "partner": partner,
                        "right": answer.right(leader, photo.expected),
                    }
                )
    return found


def _evidence(answer: Answer, object_id: str | None) -> dict[str, Any] | None:
    for rank, row in enumerate(answer.candidates, start=1):
        if row.object_id == object_id:
            fields = msgspec.structs.asdict(row)
            return {"rank": rank, **{k: v for k, v in fields.items() if v is not None}}
    return None


def failures(photos: Sequence[LabelledPhoto], answers: Sequence[Answer], threshold: float) -> list[dict[str, Any]]:
    """Every failure at ``threshold``: wrong answers, wrong extra artworks, misses, incomplete answers, errors.

    Each names the photo, what was expected, the wrong artwork with its confidence and candidate evidence
    (rank, similarity, inliers, ...), and the evidence of the best-ranked expected artwork.
    """
    found: list[dict[str, Any]] = []
    for photo, answer in zip(photos, answers, strict=True):
        named = answer.named(threshold)
        ids = [o for o, _ in named]
        rank = answer.rank_of(photo.expected)
        truth = answer.candidates[rank - 1].object_id if rank else None
        base = {"photo": photo.name, "kind": photo.kind, "expected": sorted(photo.expected)}
        if answer.error is not None:
            found.append({**base, "failure": "error", "message": answer.error})
            continue
        for position, (object_id, confidence) in enumerate(named):
            if not answer.right(object_id, photo.expected):
                failure = "wrong answer" if position == 0 else "wrong extra artwork"
                found.append(
                    {
                        **base,
                        "failure": failure,
                        "answered": object_id,
                        "confidence": confidence,
                        "wrong_evidence": _evidence(answer, object_id),
                        "expected_evidence": _evidence(answer, truth),
                    }
                )
        if photo.expected and not ids:
            found.append({**base, "failure": "missed", "expected_evidence": _evidence(answer, truth)})
        elif len(photo.expected) > 1 and ids and not photo.expected <= set(ids):
            missing = sorted(photo.expected - set(ids))
            evidence = [_evidence(answer, m) for m in missing]
            found.append(
                {**base, "failure": "incomplete", "missing": missing, "answered": ids, "missing_evidence": evidence}
            )
    return found


def latency(answers: Sequence[Answer]) -> dict[str, dict[str, float]]:
    """p50/p95/p99 and mean per stage (milliseconds) over the answers that have the stage."""
    table: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        values = np.array([a.timing[stage] for a in answers if stage in a.timing], dtype=np.float64)
        if values.size:
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            table[stage] = {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(values.mean())}
    return table
