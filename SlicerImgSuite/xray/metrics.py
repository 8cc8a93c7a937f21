"""Metrics of a binary classifier and patient-grouped folds (numpy/scipy only).

AUROC is the Mann-Whitney statistic (ties count one half); its 95 % CI comes from DeLong's variance
(DeLong, DeLong & Clarke-Pearson 1988, via the placement values) and from a bootstrap over patients.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import ImgSuiteError


def auroc(labels, scores) -> float:
    """Area under the ROC curve; ties count one half.

    Examples
    --------
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, float)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def delong_ci(labels, scores, level: float = 0.95) -> tuple[float, float, float]:
    """AUROC, and its CI from DeLong's variance (clipped to [0, 1]).

    Examples
    --------
    >>> a, lo, hi = delong_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.6, 0.5, 0.8, 0.9])
    >>> round(a, 3), lo < a < hi
    (0.889, True)
    """
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, float)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        raise ImgSuiteError(f"DeLong's CI needs two images of each class, got {m} positive and {n} negative")
    # placement values: V10 for each positive, V01 for each negative
    compare = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = compare.mean(axis=1), compare.mean(axis=0)
    area = float(v10.mean())
    se = np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    z = stats.norm.ppf(0.5 + level / 2)
    return area, float(max(0.0, area - z * se)), float(min(1.0, area + z * se))


def delong_difference_ci(labels, scores_a, scores_b, level: float = 0.95) -> tuple[float, float, float]:
    """``AUROC(a) - AUROC(b)`` on the same images and its CI from DeLong's paired covariance (DeLong 1988).

    Examples
    --------
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> d, lo, hi = delong_difference_ci(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0.1, 0.2, 0.6, 0.5, 0.8, 0.9])
    >>> round(d, 3), lo < d < hi
    (0.111, True)
    """
    labels = np.asarray(labels).astype(bool)
    placements = []
    for scores in (np.asarray(scores_a, float), np.asarray(scores_b, float)):
        pos, neg = scores[labels], scores[~labels]
        compare = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        placements.append((compare.mean(axis=1), compare.mean(axis=0)))
    m, n = int(labels.sum()), int((~labels).sum())
    if m < 2 or n < 2:
        raise ImgSuiteError(f"DeLong's CI needs two images of each class, got {m} positive and {n} negative")
    diff = float(placements[0][0].mean() - placements[1][0].mean())
    s10 = np.cov(placements[0][0], placements[1][0])
    s01 = np.cov(placements[0][1], placements[1][1])
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(max(var, 0.0))
    return diff, float(diff - half), float(diff + half)


def _patient_resamples(groups, resamples: int, seed: int):
    """Index arrays of ``resamples`` bootstrap samples that draw whole patients with replacement."""
    names, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(names))]
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield np.concatenate([members[g] for g in rng.integers(0, len(names), len(names))])


def _percentiles(values, level: float) -> tuple[float, float]:
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    q = (1 - level) / 2
    return float(np.quantile(values, q)), float(np.quantile(values, 1 - q))


def bootstrap_ci(labels, scores, groups, *, resamples: int = 2000, seed: int = 0, level: float = 0.95,
                 metric=auroc) -> tuple[float, float]:
    """Percentile CI of ``metric`` with patients (``groups``) resampled with replacement."""
    labels, scores = np.asarray(labels), np.asarray(scores, float)
    return _percentiles((metric(labels[i], scores[i]) for i in _patient_resamples(groups, resamples, seed)), level)


def paired_bootstrap(labels, scores_a, scores_b, groups, *, resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ``AUROC(a) - AUROC(b)`` on the same images, patients resampled together."""
    labels, a, b = np.asarray(labels), np.asarray(scores_a, float), np.asarray(scores_b, float)
    return _percentiles((auroc(labels[i], a[i]) - auroc(labels[i], b[i])
                         for i in _patient_resamples(groups, resamples, seed)), level)


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (descending), thresholds."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, float)
    thresholds = np.r_[np.inf, np.unique(scores)[::-1]]
    tpr = np.array([(scores[labels] >= t).mean() for t in thresholds])
    fpr = np.array([(scores[~labels] >= t).mean() for t in thresholds])
    return fpr, tpr, thresholds


def at_threshold(labels, scores, threshold: float) -> dict:
    """Sensitivity, specificity and the confusion matrix ``[[TN, FP], [FN, TP]]`` at ``score >= threshold``.

    Examples
    --------
    >>> at_threshold([0, 0, 1, 1], [0.2, 0.7, 0.6, 0.9], 0.5)["confusion"]
    [[1, 1], [0, 2]]
    """
    labels, predicted = np.asarray(labels).astype(bool), np.asarray(scores, float) >= threshold
    tp, fn = int((predicted & labels).sum()), int((~predicted & labels).sum())
    tn, fp = int((~predicted & ~labels).sum()), int((predicted & ~labels).sum())
    return {"threshold": float(threshold), "sensitivity": tp / max(tp + fn, 1), "specificity": tn / max(tn + fp, 1),
            "confusion": [[tn, fp], [fn, tp]]}


def youden(labels, scores) -> dict:
    """The threshold maximising sensitivity + specificity - 1, with its figures."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    best = int(np.argmax(tpr - fpr))
    return at_threshold(labels, scores, float(thresholds[best]) if np.isfinite(thresholds[best]) else 1.0)


def calibration(labels, scores, bins: int = 10) -> dict:
    """Brier score and a calibration curve (mean predicted vs observed rate per probability bin)."""
    labels, scores = np.asarray(labels, float), np.asarray(scores, float)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    curve = [(float(scores[which == b].mean()), float(labels[which == b].mean()), int((which == b).sum()))
             for b in range(bins) if (which == b).any()]
    return {"brier": float(np.mean((scores - labels) ** 2)), "curve": curve}


def grouped_folds(labels, groups, k: int, seed: int = 0) -> np.ndarray:
    """Fold index per image: whole patients per fold, positives balanced across folds.

    Patients are shuffled (``seed``), sorted by their positive count, and dealt to the fold with the
    fewest positives (then fewest images) so far.

    Examples
    --------
    >>> folds = grouped_folds([0, 1, 0, 1, 0, 1], ["a", "a", "b", "b", "c", "c"], 3)
    >>> sorted(folds.tolist()) == [0, 0, 1, 1, 2, 2], bool(folds[0] == folds[1])
    (True, True)
    """
    labels, groups = np.asarray(labels).astype(int), np.asarray(groups)
    names, inverse = np.unique(groups, return_inverse=True)
    if k < 2 or k > len(names):
        raise ImgSuiteError(f"{k} folds need between 2 and {len(names)} (the number of patients) folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    positives = np.bincount(inverse, weights=labels, minlength=len(names))
    sizes = np.bincount(inverse, minlength=len(names))
    order = order[np.argsort(-positives[order], kind="stable")]
    fold_pos, fold_size, fold_of = np.zeros(k), np.zeros(k), np.zeros(len(names), int)
    for g in order:
        f = min(range(k), key=lambda j: (fold_pos[j], fold_size[j]) if positives[g] else (fold_size[j], fold_pos[j]))
        fold_of[g] = f
        fold_pos[f] += positives[g]
        fold_size[f] += sizes[g]
    return fold_of[inverse]
