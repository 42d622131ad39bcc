"""L2-regularised logistic regression by Newton's method, the fit behind every confidence of the decision.

numpy only: the decision package imports nothing beyond the base dependencies (no scikit-learn).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
