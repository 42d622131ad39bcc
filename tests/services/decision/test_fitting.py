"""Fitting the decision: the logistic fit against known weights, offline re-decisions through the gateway's own
decide()."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from services.common.schemas import CandidateEvidence
from services.decision.evidence import to_candidates
from services.decision.fitting import (
    FitSettings,
    cross_validate,
    embedding_samples,
    fit_params,
    geometric_samples,
    open_set_copies,
    redecide,
    split_folds,
    unverified_samples,
)
from services.decision.logistic import fit_logistic
from services.decision.metrics import LabelledPhoto, summarise
from services.decision.rule import DecisionParams, embedding_confidence, geometric_confidence


def _row(object_id: str, similarity: float, inliers: int | None = None) -> CandidateEvidence:
    if inliers is None:  # not checked geometrically
        return CandidateEvidence(object_id=object_id, similarity=similarity)
    return CandidateEvidence(
        object_id=object_id,
        similarity=similarity,
        inliers=inliers,
        good_matches=inliers * 2,
        inlier_ratio=0.5,
        spread=0.3,
        verified=inliers >= 8,
    )


def test_logistic_fit_recovers_known_weights() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 2)) * [1.0, 3.0] + [0.0, 5.0]
    true_w, true_b = np.array([2.0, -1.0]), 4.5
    y = (rng.random(20000) < 1 / (1 + np.exp(-(x @ true_w + true_b)))).astype(float)

    w, b = fit_logistic(x, y, l2=1e-3)

    np.testing.assert_allclose(w, true_w, atol=0.1)
    assert b == pytest.approx(true_b, abs=0.3)


def test_nonnegative_fit_zeroes_a_weight_that_would_come_out_negative() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 3))
    y = (rng.random(5000) < 1 / (1 + np.exp(-(x @ np.array([1.5, -2.0, 0.5]))))).astype(float)

    free, _ = fit_logistic(x, y, l2=1e-3)
    constrained, _ = fit_logistic(x, y, l2=1e-3, nonnegative=True)

    assert free[1] < -1.5
    assert constrained[1] == 0.0 and constrained[0] > 0.8 and constrained[2] > 0.2


def test_a_prior_keeps_the_graded_response_when_every_sample_is_right() -> None:
    x = np.random.default_rng(4).uniform(2.5, 5.0, size=(300, 1))  # log1p(inliers) of verified answers
    y = np.ones(300)

    flat, _ = fit_logistic(x, y, l2=1.0)
    graded, bias = fit_logistic(x, y, l2=1.0, prior=([3.0], -8.2))

    assert abs(flat[0]) < 0.5  # toward 0: "always certain", whatever the evidence
    assert graded[0] == pytest.approx(3.0, abs=0.3)  # the slope stays near the prior's
    assert bias > -8.2  # the level rises: every verified answer was right
    # the prior itself is the fit when the data agree with it
    rng = np.random.default_rng(5)
    z = rng.normal(size=(20000, 1))
    labels = (rng.random(20000) < 1 / (1 + np.exp(-(2.0 * z[:, 0] - 1.0)))).astype(float)
    w, b = fit_logistic(z, labels, l2=1.0, prior=([2.0], -1.0))
    assert w[0] == pytest.approx(2.0, abs=0.1) and b == pytest.approx(-1.0, abs=0.1)


def test_logistic_fit_stays_finite_on_separable_and_single_class_data() -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])

    w, b = fit_logistic(x, np.array([0.0, 0.0, 1.0, 1.0]), l2=1.0)
    w1, b1 = fit_logistic(x, np.ones(4), l2=1.0)

    assert np.all(np.isfinite(w)) and w[0] > 0 and math.isfinite(b)
    assert np.all(np.isfinite(w1)) and math.isfinite(b1) and b1 > 0
    with pytest.raises(ValueError):
        fit_logistic(np.zeros((0, 2)), np.zeros(0))


def test_debug_rows_become_candidates_and_redecide_uses_the_gateways_decision() -> None:
    rows = [_row("A", 0.9, 60), _row("B", 0.8, 3), _row("C", 0.7)]
    params = DecisionParams()

    candidates = to_candidates(rows)
    full, = redecide([rows], params, use_geometric=True)  # fmt: skip
    degraded, = redecide([rows], params, use_geometric=False)  # fmt: skip

    assert candidates[0].geometric is not None and candidates[0].geometric.inliers == 60
    assert candidates[2].geometric is None
    assert full.matches == (("A", pytest.approx(geometric_confidence(candidates[0].geometric, 0.9, params))),)
    assert degraded.matches[0] == ("A", pytest.approx(embedding_confidence(0.9, 0.1, params)))


def _evidence(n: int, seed: int) -> tuple[list[LabelledPhoto], list[list[CandidateEvidence]]]:
    """Photos whose shown artwork verifies with many inliers and a clear lead; chance matches verify weakly."""
    rng = np.random.default_rng(seed)
    photos, evidence = [], []
    for i in range(n):
        right = f"r{i}"
        shown = frozenset({right}) if i % 4 else frozenset()
        rows = [_row(f"w{i}_{j}", float(0.6 - 0.05 * j), int(rng.integers(0, 20))) for j in range(4)]
        if shown:
            rows.insert(0, _row(right, float(rng.uniform(0.65, 0.9)), int(rng.integers(15, 80))))
        photos.append(LabelledPhoto(f"g{i % 2}__{i}", shown, shown))
        evidence.append(rows)
    return photos, evidence


def test_samples_are_verified_candidates_and_top_candidates() -> None:
    photos, evidence = _evidence(8, seed=1)

    gx, gy = geometric_samples(photos, evidence, min_inliers=12)
    ex, ey = embedding_samples(photos, evidence)

    expected = sum(1 for rows in evidence for r in rows if r.verified and (r.inliers or 0) >= 12)
    assert gx.shape == (expected, 4) and gy.shape == (expected,)
    assert ex.shape == (8, 2) and ey.sum() == 6  # photos 0 and 4 show none
    assert ex[1, 1] == pytest.approx(evidence[1][0].similarity - evidence[1][1].similarity)


def test_unverified_samples_are_top_candidates_of_photos_where_nothing_verified() -> None:
    photos = [
        LabelledPhoto("g__low-texture", frozenset({"A"}), frozenset({"A"})),
        LabelledPhoto("g__verified", frozenset({"C"}), frozenset({"C"})),
        LabelledPhoto("g__none", frozenset(), frozenset()),
        LabelledPhoto("g__unchecked", frozenset({"F"}), frozenset({"F"})),
    ]
    evidence = [
        [_row("A", 0.84, 7), _row("B", 0.56, 2)],
        [_row("C", 0.7, 40), _row("D", 0.6, 3)],
        [_row("E", 0.5, 4), _row("A", 0.45, 0)],
        [_row("F", 0.9), _row("G", 0.5)],  # geometric did not run: the embedding-only model's samples
    ]

    x, y = unverified_samples(photos, evidence, min_inliers=12)

    np.testing.assert_allclose(x, [[0.84, 0.28], [0.5, 0.05]])
    assert y.tolist() == [1.0, 0.0]
    # a top candidate with fewer ratio-test matches than the rule asks (E: 8) is never answered, so never a sample
    x, y = unverified_samples(photos, evidence, min_inliers=12, min_matches=10)
    np.testing.assert_allclose(x, [[0.84, 0.28]])
    assert y.tolist() == [1.0]


def test_fitted_parameters_reach_the_target_and_mean_what_decide_computes() -> None:
    photos, evidence = _evidence(200, seed=2)

    params = fit_params(photos, evidence, DecisionParams(), FitSettings(target_precision=0.99), {"seed": 2})

    at_threshold = summarise(photos, redecide(evidence, params, use_geometric=True), params.threshold).rates()
    assert at_threshold["precision"] is not None and at_threshold["precision"] >= 0.99
    assert at_threshold["top1"] is not None and at_threshold["top1"] > 0.9
    assert 0.5 <= params.threshold <= 1.0
    # each mode has its own operating point, the embedding-only one never below the full one
    assert params.threshold == params.fitted_on["threshold_full"]
    assert params.embedding_threshold is not None and params.embedding_threshold >= params.threshold
    degraded = summarise(photos, redecide(evidence, params, use_geometric=False), params.cut(False)).rates()
    assert degraded["precision"] is None or degraded["precision"] >= 0.99
    samples = params.fitted_on["geometric_samples"]
    assert params.fitted_on["seed"] == 2 and isinstance(samples, int) and samples > 0
    assert DecisionParams.from_mapping(params.to_mapping()) == params
    # the embedding model was fitted on the same (similarity, margin) that decide() feeds it
    _, ey = embedding_samples(photos, evidence)
    confidences = [a.matches[0][1] for a in redecide(evidence, params, use_geometric=False) if a.matches]
    right_share = ey.mean()
    assert np.mean(confidences) == pytest.approx(right_share, abs=0.1)


def test_min_inliers_setting_is_used_when_given() -> None:
    photos, evidence = _evidence(40, seed=3)

    params = fit_params(photos, evidence, DecisionParams(), FitSettings(min_inliers=30))

    assert params.min_inliers == 30
    kept = dataclasses.replace(params, min_inliers=DecisionParams().min_inliers)
    assert fit_params(photos, evidence, kept, FitSettings()).min_inliers == DecisionParams().min_inliers


def test_open_set_copies_drop_the_shown_artworks_and_expect_no_match() -> None:
    photos, evidence = _evidence(4, seed=4)

    copies, rows = open_set_copies(photos, evidence)

    assert [p.name for p in copies] == [f"{p.name}#open" for p in photos if p.expected]
    assert all(p.kind == "excluded" for p in copies)
    assert all(r.object_id not in photos[1].expected for r in rows[0])
    assert len(rows[0]) == len(evidence[1]) - 1


def test_folds_are_disjoint_cover_every_photo_and_split_each_group_evenly() -> None:
    photos = [LabelledPhoto(f"{'a' if i < 7 else 'b'}__{i}", frozenset(), frozenset()) for i in range(12)]

    folds = split_folds(photos, 2, seed=5)

    assert sorted(folds[0] + folds[1]) == list(range(12))
    assert abs(len(folds[0]) - len(folds[1])) <= 1
    assert abs(sum(i < 7 for i in folds[0]) - sum(i < 7 for i in folds[1])) <= 1
    assert split_folds(photos, 2, seed=5) == folds
    assert split_folds(photos, 2, seed=6) != folds


def test_two_fold_reports_fitted_and_held_out_rates_both_ways() -> None:
    photos, evidence = _evidence(120, seed=6)

    results = cross_validate(photos, evidence, DecisionParams(), FitSettings(), folds=2, seed=0)

    assert [r["fold"] for r in results] == [0, 1]
    assert results[0]["fitted_photos"] == results[1]["held_out_photos"] == 60
    for r in results:
        for side in ("fitted", "held_out"):
            assert set(r[side]) == {"full", "embedding_only"}
            assert r[side]["full"]["no_match_excluded"] is not None  # the open-set copies
            assert abs(r["fitted"]["full"]["top1"] - r["held_out"]["full"]["top1"]) < 0.15


def test_two_fold_measures_the_held_out_photos_of_each_set_on_their_own() -> None:
    photos, evidence = _evidence(120, seed=7)
    sets = {p.name: ("small-museum" if i % 10 == 0 else "large-museum") for i, p in enumerate(photos)}

    results = cross_validate(photos, evidence, DecisionParams(), FitSettings(), folds=2, seed=0, sets=sets)

    for r in results:
        per_set = r["held_out_by_set"]
        assert sorted(per_set) == ["large-museum", "small-museum"]
        assert sum(s["photos"] for s in per_set.values()) == r["held_out_photos"]
        assert set(per_set["small-museum"]) == {"photos", "full", "embedding_only"}
    assert sum(r["held_out_by_set"]["small-museum"]["photos"] for r in results) == 12
    assert (
        cross_validate(photos, evidence, DecisionParams(), FitSettings(), folds=2, seed=0)[0]["held_out_by_set"] == {}
    )
