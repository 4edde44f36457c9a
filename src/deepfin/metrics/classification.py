"""Credit scoring metrics: AUC, Gini, KS, Brier, log loss, calibration, PSI and cut-off tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from deepfin.errors import DataError

# scorecard scale: 600 points at 50:1 good:bad odds, 20 points to double the odds
BASE_POINTS, BASE_ODDS, POINTS_TO_DOUBLE_ODDS = 600.0, 50.0, 20.0
APPROVAL_RATES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
PSI_FLOOR = 1e-4  # an empty bin would make PSI infinite; this stands in for its share


def _labels_and_probability(
    labels: npt.ArrayLike, probability: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Check labels are 0/1, probabilities in [0, 1], both 1-D, finite and equally long."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or y.size != p.size or y.size == 0:
        raise DataError(
            f"labels {y.shape} and probabilities {p.shape} must be 1-D, non-empty and equally long"
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("labels must be 0 (repaid) or 1 (default); map the target first")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise DataError("probabilities must be finite and within [0, 1]")
    return y.astype(np.int64), p


def _both_classes(y: np.ndarray) -> None:
    if y.min() == y.max():
        raise DataError(
            f"all {y.size} labels are {int(y[0])}; AUC and KS need defaults and non-defaults"
        )


def roc_auc(labels: npt.ArrayLike, probability: npt.ArrayLike) -> float:
    """Area under the ROC curve: the chance a random default scores above a random non-default."""
    y, p = _labels_and_probability(labels, probability)
    _both_classes(y)
    ranks = stats.rankdata(p)  # ties share their average rank, so they count one half
    n_bad = int(y.sum())
    n_good = y.size - n_bad
    return float((ranks[y == 1].sum() - n_bad * (n_bad + 1) / 2) / (n_bad * n_good))


def roc_curve(labels: npt.ArrayLike, probability: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    y, p = _labels_and_probability(labels, probability)
    _both_classes(y)
    order = np.argsort(-p, kind="stable")
    y_sorted, p_sorted = y[order], p[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p_sorted)), y.size - 1]
    true_positives = np.cumsum(y_sorted)[last_of_tie]
    false_positives = last_of_tie + 1 - true_positives
    fpr = np.r_[0.0, false_positives / (y.size - y.sum())]
    tpr = np.r_[0.0, true_positives / y.sum()]
    return fpr, tpr


def ks_statistic(labels: npt.ArrayLike, probability: npt.ArrayLike) -> tuple[float, float]:
    """Kolmogorov-Smirnov distance between defaults' and non-defaults' scores, and where it is."""
    y, p = _labels_and_probability(labels, probability)
    _both_classes(y)
    thresholds = np.unique(p)
    bad_cdf = np.searchsorted(np.sort(p[y == 1]), thresholds, side="right") / y.sum()
    good_cdf = np.searchsorted(np.sort(p[y == 0]), thresholds, side="right") / (y.size - y.sum())
    gap = np.abs(good_cdf - bad_cdf)
    best = int(np.argmax(gap))
    return float(gap[best]), float(thresholds[best])


def ks_curve(labels: npt.ArrayLike, probability: npt.ArrayLike) -> dict[str, np.ndarray]:
    """Cumulative shares of non-defaults and defaults below each threshold (for the KS plot)."""
    y, p = _labels_and_probability(labels, probability)
    _both_classes(y)
    thresholds = np.quantile(p, np.linspace(0, 1, 101))
    bad_cdf = np.searchsorted(np.sort(p[y == 1]), thresholds, side="right") / y.sum()
    good_cdf = np.searchsorted(np.sort(p[y == 0]), thresholds, side="right") / (y.size - y.sum())
    return {"threshold": thresholds, "good_cdf": good_cdf, "bad_cdf": bad_cdf}


def brier_score(labels: npt.ArrayLike, probability: npt.ArrayLike) -> float:
    """Mean squared difference between predicted default probability and outcome."""
    y, p = _labels_and_probability(labels, probability)
    return float(np.mean((p - y) ** 2))


def log_loss(labels: npt.ArrayLike, probability: npt.ArrayLike) -> float:
    """Mean negative log-likelihood; probabilities are clipped away from 0 and 1 by float eps."""
    y, p = _labels_and_probability(labels, probability)
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def scorecard_points(probability: npt.ArrayLike) -> np.ndarray:
    """Scorecard points: higher is safer; 600 at 50:1 odds, +20 per doubling of the odds."""
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-9, 1 - 1e-9)
    factor = POINTS_TO_DOUBLE_ODDS / math.log(2)
    return BASE_POINTS + factor * (np.log((1 - p) / p) - math.log(BASE_ODDS))


def calibration_table(
    labels: npt.ArrayLike, probability: npt.ArrayLike, *, bins: int = 10
) -> list[dict[str, float]]:
    """Predicted against observed default rate in equal-count bins of the probability."""
    y, p = _labels_and_probability(labels, probability)
    order = np.argsort(p, kind="stable")
    rows = []
    for index, members in enumerate(np.array_split(order, min(bins, y.size))):
        rows.append(
            {
                "bin": index + 1,
                "n": int(members.size),
                "min_probability": float(p[members].min()),
                "max_probability": float(p[members].max()),
                "mean_predicted": float(p[members].mean()),
                "observed_default_rate": float(y[members].mean()),
            }
        )
    return rows


def score_bin_edges(reference: npt.ArrayLike, *, bins: int = 10) -> np.ndarray:
    """Inner edges at the reference scores' quantiles (duplicates dropped) for PSI."""
    values = np.asarray(reference, dtype=np.float64)
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def bin_shares(scores: npt.ArrayLike, edges: npt.ArrayLike) -> np.ndarray:
    """Share of scores in each bin (-inf, e1], (e1, e2], ..., (ek, inf)."""
    values = np.asarray(scores, dtype=np.float64)
    inner = np.asarray(edges, dtype=np.float64)
    counts = np.bincount(np.searchsorted(inner, values, side="left"), minlength=inner.size + 1)
    return counts / max(values.size, 1)


def population_stability_index(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """PSI = sum (actual - expected) * ln(actual / expected) over bins of score shares."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    if e.shape != a.shape:
        raise DataError(f"expected {e.shape} and actual {a.shape} shares need the same bins")
    return float(np.sum((a - e) * np.log(a / e)))


def cutoff_table(
    labels: npt.ArrayLike,
    probability: npt.ArrayLike,
    *,
    thresholds: npt.ArrayLike | None = None,
) -> list[dict[str, float]]:
    """Approve below each threshold: approval rate, bad rate, precision and recall of declines."""
    y, p = _labels_and_probability(labels, probability)
    if thresholds is None:
        thresholds = np.quantile(p, APPROVAL_RATES)
    rows = []
    for threshold in np.asarray(thresholds, dtype=np.float64):
        declined = p >= threshold
        approved = ~declined
        caught = int((declined & (y == 1)).sum())
        rows.append(
            {
                "threshold": float(threshold),
                "score": float(scorecard_points(threshold)),
                "approval_rate": float(approved.mean()),
                "bad_rate_approved": float(y[approved].mean()) if approved.any() else math.nan,
                "precision": caught / int(declined.sum()) if declined.any() else math.nan,
                "recall": caught / int(y.sum()) if y.any() else math.nan,
            }
        )
    return rows


def credit_metrics(labels: npt.ArrayLike, probability: npt.ArrayLike) -> dict[str, Any]:
    """The headline metrics of one model on one sample, as plain floats."""
    y, p = _labels_and_probability(labels, probability)
    ks, ks_probability = ks_statistic(y, p)
    auc = roc_auc(y, p)
    return {
        "n": int(y.size),
        "default_rate": float(y.mean()),
        "mean_probability": float(p.mean()),
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks,
        "ks_probability": ks_probability,
        "ks_score": float(scorecard_points(ks_probability)),
        "brier": brier_score(y, p),
        "log_loss": log_loss(y, p),
    }


def fairness_table(
    groups: npt.ArrayLike, labels: npt.ArrayLike, probability: npt.ArrayLike, *, cutoff: float
) -> list[dict[str, Any]]:
    """Per group: size, default rate, mean probability, approval rate (p < cutoff), bad rate."""
    y, p = _labels_and_probability(labels, probability)
    group = np.asarray(groups, dtype=object)
    rows: list[dict[str, Any]] = []
    for name in sorted(set(group.tolist()), key=str):
        members = group == name
        approved = members & (p < cutoff)
        rows.append(
            {
                "group": str(name),
                "n": int(members.sum()),
                "share": float(members.mean()),
                "default_rate": float(y[members].mean()),
                "mean_probability": float(p[members].mean()),
                "approval_rate": float(approved.sum() / members.sum()),
                "bad_rate_approved": float(y[approved].mean()) if approved.any() else math.nan,
            }
        )
    highest = max((float(row["approval_rate"]) for row in rows), default=0.0)
    for row in rows:
        # the "four-fifths rule" compares each group's approval rate with the best-treated one
        row["approval_ratio"] = float(row["approval_rate"]) / highest if highest else math.nan
    return rows
