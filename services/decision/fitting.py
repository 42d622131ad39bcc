"""Fitting the decision's logistic weights and operating threshold on labelled photos. Pure numerics, no I/O.

The evidence is the gateway's ``debug.candidates`` rows of every photo, collected once with threshold 0. Answers for
new parameters are recomputed offline with the gateway's own :func:`decide`, so the fit and the service never
disagree about what a parameter means.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.schemas import MatchResult
from services.gateway.decision import (
    Candidate,
    DecisionParams,
    counts_as_verified,
    decide,
    geometric_features,
    top_margin,
)
from tools.cli.metrics import Answer, LabelledPhoto, choose_threshold, summarise, top_answers

Rows = Sequence[Mapping[str, Any]]
"""One photo's ``debug.candidates`` rows, in the gateway's order (best similarity first)."""


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    l2: float = 1.0,
    nonnegative: bool = False,
    max_iter: int = 100,
    prior: tuple[Sequence[float], float] | None = None,
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (IRLS) with step halving.

    Features are standardised for the fit (the penalty ``l2 / 2 · |w|²`` acts on standardised weights, the bias
    gets a tiny one so that single-class data stays finite); the returned weights apply to the raw features.
    With ``nonnegative``, a feature whose weight comes out negative is fixed at 0 and the rest refitted (evidence
    that should only ever raise confidence, such as more inliers, never lowers it because of a few odd samples).
    With a ``prior``, the penalty pulls the weights toward it instead of toward 0: when a labelled set is nearly
    separable (every verified answer right), the fit then moves the level of confidence and keeps a graded
    response to the evidence instead of declaring every sample certain.

    Args:
        x: (N, D) float features.
        y: (N,) labels in {0, 1}.
        l2: penalty strength on the standardised weights.
        nonnegative: constrain every weight to be ≥ 0.
        max_iter: Newton steps at most per fit.
        prior: ``(weights, bias)`` on the raw features the penalty pulls toward; None: toward 0.

    Returns:
        ``(weights (D,), bias)`` with ``P(y=1) = sigmoid(x @ weights + bias)``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise ValueError(f"need x (N, D) and y (N,) with N > 0, got {x.shape} and {y.shape}")
    prior_w = np.zeros(x.shape[1]) if prior is None else np.asarray(prior[0], dtype=np.float64)
    prior_b = 0.0 if prior is None else float(prior[1])
    free = np.ones(x.shape[1], dtype=bool)
    while True:
        weights = np.zeros(x.shape[1])
        weights[free], bias = _newton(x[:, free], y, l2, max_iter, prior_w[free], prior_b)
        if not nonnegative or np.all(weights >= 0):
            return weights, bias
        free[int(np.argmin(weights))] = False


def _newton(
    x: np.ndarray, y: np.ndarray, l2: float, max_iter: int, prior_w: np.ndarray, prior_b: float
) -> tuple[np.ndarray, float]:
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd < 1e-12] = 1.0
    design = np.hstack([(x - mean) / sd, np.ones((x.shape[0], 1))])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 1e-6
    # the prior in the standardised design: same predictions as (prior_w, prior_b) on the raw features
    centre = np.append(prior_w * sd, prior_b + float(np.sum(prior_w * mean)))
    beta = centre.copy()

    def loss(b: np.ndarray) -> float:
        z = design @ b
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * (b - centre) ** 2))

    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -60, 60)))
        grad = design.T @ (p - y) + penalty * (beta - centre)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + np.diag(penalty)
        step = np.linalg.solve(hessian, grad)
        current, scale = loss(beta), 1.0
        while scale > 1e-6 and loss(beta - scale * step) > current:
            scale /= 2
        beta = beta - scale * step
        if np.max(np.abs(scale * step)) < 1e-9:
            break
    return beta[:-1] / sd, float(beta[-1] - np.sum(beta[:-1] * mean / sd))


def to_candidates(rows: Rows) -> list[Candidate]:
    """Gateway candidates rebuilt from ``debug.candidates`` rows (rows without geometric fields: not checked)."""
    out = []
    for row in rows:
        geometric = None
        if "verified" in row:
            geometric = MatchResult(
                reference_id=str(row["object_id"]),
                verified=bool(row["verified"]),
                inliers=int(row.get("inliers", 0)),
                good_matches=int(row.get("good_matches", 0)),
                inlier_ratio=float(row.get("inlier_ratio", 0.0)),
                score=float(row.get("score", 0.0)),
                spread=float(row.get("spread", 0.0)),
                reason=row.get("reason"),
                query_box=row.get("query_box"),
                interior_inliers=int(row.get("interior_inliers", 0)),
            )
        out.append(Candidate(str(row["object_id"]), float(row["similarity"]), None, geometric))
    return out


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
            y.append(rows[0]["object_id"] in photo.expected)
    return np.array(x, dtype=np.float64).reshape(-1, 2), np.array(y, dtype=np.float64)


def unverified_samples(
    photos: Sequence[LabelledPhoto], evidence: Sequence[Rows], min_inliers: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top candidate of each photo where verification ran and verified nothing: (similarity, lead), shown."""
    x, y = [], []
    for photo, rows in zip(photos, evidence, strict=True):
        candidates = to_candidates(rows)
        checked = [c.geometric for c in candidates if c.geometric is not None]
        if not candidates or not checked or any(counts_as_verified(g, min_inliers) for g in checked):
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
    ux, uy = unverified_samples(photos, evidence, min_inliers)
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
) -> tuple[list[LabelledPhoto], list[list[Mapping[str, Any]]]]:
    """For each photo showing indexed artworks, a copy as if they were not in the collection.

    The copy's candidate rows lack the shown artworks and its right answer is "no match": an offline open-set
    simulation (a real index without them would also bring in the next candidate, which the rows cannot know).
    """
    out_photos, out_rows = [], []
    for photo, rows in zip(photos, evidence, strict=True):
        if photo.expected:
            out_photos.append(LabelledPhoto(photo.name + "#open", photo.shown, frozenset()))
            out_rows.append([r for r in rows if r["object_id"] not in photo.expected])
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
) -> tuple[list[LabelledPhoto], list[list[Mapping[str, Any]]]]:
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
