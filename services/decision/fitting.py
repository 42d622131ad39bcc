"""Fitting the decision's logistic weights and operating threshold on labelled photos. Pure numerics, no I/O.

The evidence is the gateway's ``debug.candidates`` rows of every photo (:mod:`services.decision.evidence`), collected
once with threshold 0. Answers for new parameters are recomputed offline with the gateway's own :func:`decide`, so
the fit and the service never disagree about what a parameter means.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.schemas import CandidateEvidence
from services.decision.evidence import Rows, to_candidates
from services.decision.logistic import fit_logistic
from services.decision.metrics import Answer, LabelledPhoto, summarise
from services.decision.reliability import choose_threshold, top_answers
from services.decision.rule import (
    DecisionParams,
    counts_as_verified,
    decide,
    geometric_features,
    has_local_evidence,
    top_margin,
)


def redecide(evidence: Sequence[Rows], params: DecisionParams, *, use_geometric: bool) -> list[Answer]:
    """Each photo's answer under ``params``, at threshold 0 (apply thresholds with :meth:`Answer.named`)."""
    answers = []
    for rows in evidence:
        decision = decide(to_candidates(rows), params, use_geometric=use_geometric, threshold=0.0)
        matches = tuple((s.candidate.object_id, s.confidence) for s in decision.matches)
        answers.append(Answer(matches=matches, candidates=tuple(rows)))
    return answers


def geometric_samples(
    photos: Sequence[LabelledPhoto], evidence: Sequence[Rows], min_inliers: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every verified candidate with at least ``min_inliers`` inliers: its evidence vector, and whether it is shown."""
    x, y = [], []
    for photo, rows in zip(photos, evidence, strict=True):
        for candidate in to_candidates(rows):
            g = candidate.geometric
            if g is not None and counts_as_verified(g, min_inliers):
                x.append(geometric_features(g, candidate.similarity))
                y.append(candidate.object_id in photo.expected)
    return np.array(x, dtype=np.float64).reshape(-1, 4), np.array(y, dtype=np.float64)


def embedding_samples(photos: Sequence[LabelledPhoto], evidence: Sequence[Rows]) -> tuple[np.ndarray, np.ndarray]:
    """Each photo's top candidate: (similarity, lead over the runner-up), and whether it is shown."""
    x, y = [], []
    for photo, rows in zip(photos, evidence, strict=True):
        if rows:
            candidates = to_candidates(rows)
            x.append((candidates[0].similarity, top_margin(candidates)))
            y.append(rows[0].object_id in photo.expected)
    return np.array(x, dtype=np.float64).reshape(-1, 2), np.array(y, dtype=np.float64)


def unverified_samples(
    photos: Sequence[LabelledPhoto], evidence: Sequence[Rows], min_inliers: int, min_matches: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The top candidate of each photo where verification ran and verified nothing, when it shares at least
    ``min_matches`` ratio-test matches with the photo (the others are never answered so): (similarity, lead),
    shown."""
    x, y = [], []
    for photo, rows in zip(photos, evidence, strict=True):
        candidates = to_candidates(rows)
        checked = [c.geometric for c in candidates if c.geometric is not None]
        if not candidates or not checked or any(counts_as_verified(g, min_inliers) for g in checked):
            continue
        if not has_local_evidence(candidates[0], min_matches):
            continue
        x.append((candidates[0].similarity, top_margin(candidates)))
        y.append(candidates[0].object_id in photo.expected)
    return np.array(x, dtype=np.float64).reshape(-1, 2), np.array(y, dtype=np.float64)


@dataclass(frozen=True)
class FitSettings:
    """How to fit.

    Attributes:
        target_precision: the operating threshold is the lowest confidence whose answers reach this precision.
        floor: the threshold is never below this.
        l2: logistic penalty on standardised weights.
        min_inliers: fewest inliers of a geometric answer; None keeps the base parameters' value.
        nonnegative: every evidence weight ≥ 0 (more inliers or similarity never lower the confidence).
    """

    target_precision: float = 0.99
    floor: float = 0.5
    l2: float = 1.0
    min_inliers: int | None = None
    nonnegative: bool = True


def fit_params(
    photos: Sequence[LabelledPhoto],
    evidence: Sequence[Rows],
    base: DecisionParams,
    settings: FitSettings,
    fitted_on: dict[str, object] | None = None,
) -> DecisionParams:
    """Decision parameters fitted on ``photos``: both logistic models, then the threshold for the target precision.

    ``threshold`` is the lowest confidence whose full-mode answers reach the target; ``embedding_threshold`` the
    same for embedding-only answers (geometric down), never below ``threshold``, so that answers stay as
    trustworthy while geometric verification is down. A mode whose target is out of reach asks for 1.0 (answer
    only with certainty).
    """
    min_inliers = base.min_inliers if settings.min_inliers is None else settings.min_inliers
    params = dataclasses.replace(base, min_inliers=min_inliers)
    gx, gy = geometric_samples(photos, evidence, min_inliers)
    if len(gy):
        w, b = fit_logistic(
            gx, gy, l2=settings.l2, nonnegative=settings.nonnegative, prior=(base.geo_weights, base.geo_bias)
        )
        params = dataclasses.replace(
            params, geo_weights=(float(w[0]), float(w[1]), float(w[2]), float(w[3])), geo_bias=b
        )
    ex, ey = embedding_samples(photos, evidence)
    if len(ey):
        w, b = fit_logistic(ex, ey, l2=settings.l2, nonnegative=settings.nonnegative)
        params = dataclasses.replace(params, emb_weights=(float(w[0]), float(w[1])), emb_bias=b)
    ux, uy = unverified_samples(photos, evidence, min_inliers, base.unverified_min_matches)
    if len(uy):
        w, b = fit_logistic(
            ux,
            uy,
            l2=settings.l2,
            nonnegative=settings.nonnegative,
            prior=(base.unverified_weights, base.unverified_bias),
        )
        params = dataclasses.replace(params, unverified_weights=(float(w[0]), float(w[1])), unverified_bias=b)
    info: dict[str, object] = {
        "geometric_samples": len(gy),
        "geometric_right": int(gy.sum()),
        "embedding_samples": len(ey),
        "unverified_samples": len(uy),
        "unverified_right": int(uy.sum()),
    }
    thresholds = {}
    for mode, geometric in (("full", True), ("embedding_only", False)):
        tops = top_answers(photos, redecide(evidence, params, use_geometric=geometric))
        found = choose_threshold(tops, settings.target_precision, settings.floor)
        info[f"threshold_{mode}"] = found
        thresholds[mode] = 1.0 if found is None else found
    info.update(fitted_on or {})
    full = thresholds["full"]
    embedding = max(full, thresholds["embedding_only"])
    return dataclasses.replace(params, threshold=full, embedding_threshold=embedding, fitted_on=info)


def open_set_copies(
    photos: Sequence[LabelledPhoto], evidence: Sequence[Rows]
) -> tuple[list[LabelledPhoto], list[list[CandidateEvidence]]]:
    """For each photo showing indexed artworks, a copy as if they were not in the collection.

    The copy's candidate rows lack the shown artworks and its right answer is "no match": an offline open-set
    simulation (a real index without them would also bring in the next candidate, which the rows cannot know).
    """
    out_photos, out_rows = [], []
    for photo, rows in zip(photos, evidence, strict=True):
        if photo.expected:
            out_photos.append(LabelledPhoto(photo.name + "#open", photo.shown, frozenset()))
            out_rows.append([r for r in rows if r.object_id not in photo.expected])
    return out_photos, out_rows


def split_folds(photos: Sequence[LabelledPhoto], folds: int, seed: int) -> list[list[int]]:
    """Photo indices in ``folds`` folds, each photo group dealt evenly across them in a seeded random order."""
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in range(folds)]
    groups: dict[str, list[int]] = {}
    for i, photo in enumerate(photos):
        groups.setdefault(photo.group, []).append(i)
    offset = 0
    for name in sorted(groups):
        for j, i in enumerate(rng.permutation(groups[name])):
            out[(j + offset) % folds].append(int(i))
        offset += len(groups[name])
    return [sorted(f) for f in out]


def _subset(
    photos: Sequence[LabelledPhoto], evidence: Sequence[Rows], idx: list[int], open_set: bool
) -> tuple[list[LabelledPhoto], list[list[CandidateEvidence]]]:
    p, e = [photos[i] for i in idx], [list(evidence[i]) for i in idx]
    if open_set:
        extra_p, extra_e = open_set_copies(p, e)
        p, e = p + extra_p, e + extra_e
    return p, e


def measure(photos: Sequence[LabelledPhoto], evidence: Sequence[Rows], params: DecisionParams) -> dict[str, Any]:
    """Rates in full and embedding-only mode, each at its own operating threshold (:meth:`DecisionParams.cut`)."""
    out: dict[str, Any] = {}
    for mode, geometric in (("full", True), ("embedding_only", False)):
        answers = redecide(evidence, params, use_geometric=geometric)
        out[mode] = summarise(photos, answers, params.cut(geometric)).rates()
    return out


def cross_validate(
    photos: Sequence[LabelledPhoto],
    evidence: Sequence[Rows],
    base: DecisionParams,
    settings: FitSettings,
    *,
    folds: int = 2,
    seed: int = 0,
    open_set: bool = True,
    sets: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Fit on each fold, measure on it (fitted) and on the other photos (held out).

    ``held_out_answers`` are the held-out photos' best full-mode answers ``(confidence, right, kind)``: pooled over
    the folds they give an honest reliability table. With ``sets`` (photo name → the labelled set it comes from,
    e.g. one museum's photos), ``held_out_by_set`` measures the held-out photos of each set on their own, so a large
    set's rates cannot hide a small one's.

    With ``open_set``, each side is augmented with its own photos' open-set copies (never the other side's).
    """
    parts = split_folds(photos, folds, seed)
    results = []
    for k, part in enumerate(parts):
        rest = sorted(set(range(len(photos))) - set(part))
        fit_p, fit_e = _subset(photos, evidence, part, open_set)
        held_p, held_e = _subset(photos, evidence, rest, open_set)
        params = fit_params(fit_p, fit_e, base, settings, {"fold": k, "seed": seed})
        results.append(
            {
                "fold": k,
                "fitted_photos": len(part),
                "held_out_photos": len(rest),
                "threshold": params.threshold,
                "fitted": measure(fit_p, fit_e, params),
                "held_out": measure(held_p, held_e, params),
                "held_out_answers": top_answers(held_p, redecide(held_e, params, use_geometric=True)),
                "held_out_by_set": _by_set(photos, evidence, rest, sets, open_set, params) if sets else {},
            }
        )
    return results


def _by_set(
    photos: Sequence[LabelledPhoto],
    evidence: Sequence[Rows],
    idx: list[int],
    sets: Mapping[str, str],
    open_set: bool,
    params: DecisionParams,
) -> dict[str, Any]:
    """:func:`measure` of the photos ``idx`` of each set, sets sorted by name."""
    members: dict[str, list[int]] = {}
    for i in idx:
        members.setdefault(sets.get(photos[i].name, "other"), []).append(i)
    out = {}
    for name in sorted(members):
        p, e = _subset(photos, evidence, members[name], open_set)
        out[name] = {"photos": len(members[name]), **measure(p, e, params)}
    return out
