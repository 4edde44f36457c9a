"""Classification into many labels (texts, charts): accuracy, F1, top-k, calibration, McNemar."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from deepfin.errors import DataError

ECE_BINS = 15  # equal-width confidence bins, as in Guo et al. (2017)
EXACT_BELOW = 25  # McNemar: the exact binomial test below this many discordant pairs


def _checked(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(y) != len(p) or not len(y):
        raise DataError(
            f"need one row of class probabilities per label; got {len(y)} labels and "
            f"probabilities of shape {p.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise DataError(f"labels must be class numbers 0..{p.shape[1] - 1}")
    return y.astype(np.int64), p


def confusion_matrix(labels: npt.ArrayLike, predicted: npt.ArrayLike, n_classes: int) -> np.ndarray:
    """Counts (true class, predicted class), (C, C)."""
    y, guess = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    return np.bincount(y * n_classes + guess, minlength=n_classes**2).reshape(n_classes, n_classes)


def per_class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class (0 where a class is never predicted)."""
    hits = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def expected_calibration_error(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """Mean |accuracy - confidence| over equal-width bins of the top probability, by count."""
    y, p = _checked(labels, probabilities)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    bins = np.minimum((confidence * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    counts = np.bincount(bins, minlength=ECE_BINS)
    gap = np.bincount(bins, weights=correct - confidence, minlength=ECE_BINS)
    return float(np.abs(gap).sum() / counts.sum())


def top_k_accuracy(labels: npt.ArrayLike, probabilities: npt.ArrayLike, k: int) -> float:
    """Share of rows whose label is among the k most probable classes."""
    y, p = _checked(labels, probabilities)
    # ties broken towards the lower class number, as argmax does for k = 1
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return float((order == y[:, None]).any(axis=1).mean())


def classification_metrics(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, classes: list[str]
) -> dict[str, Any]:
    """Accuracy, macro and weighted F1, log loss, ECE, top-3 (from 4 classes), per class."""
    y, p = _checked(labels, probabilities)
    if p.shape[1] != len(classes):
        raise DataError(f"{p.shape[1]} probability columns for {len(classes)} classes")
    predicted = p.argmax(axis=1)
    confusion = confusion_matrix(y, predicted, len(classes))
    scores = per_class_scores(confusion)
    metrics: dict[str, Any] = {
        "accuracy": float((predicted == y).mean()),
        "macro_f1": float(scores["f1"].mean()),
        "weighted_f1": float((scores["f1"] * scores["support"]).sum() / len(y)),
        "log_loss": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1)).mean()),
        "ece": expected_calibration_error(y, p),
        "n": len(y),
    }
    if len(classes) > 3:
        metrics["top_3_accuracy"] = top_k_accuracy(y, p, 3)
    metrics["per_class"] = {
        name: {key: float(values[i]) for key, values in scores.items()}
        for i, name in enumerate(classes)
    }
    metrics["confusion"] = confusion.tolist()
    return metrics


def mcnemar_test(correct_a: npt.ArrayLike, correct_b: npt.ArrayLike) -> tuple[float, float]:
    """McNemar's test of two classifiers on the same rows: statistic and two-sided p-value.

    Only the rows where exactly one is right count; below 25 such rows the exact binomial
    test (statistic: the smaller count), else chi-squared with a continuity correction.
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise DataError(f"McNemar needs the same rows: {a.shape} and {b.shape} results")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    if discordant == 0:
        return 0.0, 1.0
    if discordant < EXACT_BELOW:
        smaller = min(only_a, only_b)
        return float(smaller), float(min(1.0, 2 * stats.binom.cdf(smaller, discordant, 0.5)))
    statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
    return float(statistic), float(stats.chi2.sf(statistic, 1))


def class_rows(
    labels: np.ndarray, probabilities: dict[str, np.ndarray], classes: list[str]
) -> dict[str, dict[str, Any]]:
    """Per model (in order: the model, then its baselines) its metrics,
    and McNemar's p-value against the next row."""
    rows = {name: classification_metrics(labels, p, classes) for name, p in probabilities.items()}
    correct = {name: p.argmax(axis=1) == labels for name, p in probabilities.items()}
    names = list(probabilities)
    for name, reference in itertools.pairwise(names):
        rows[name][f"mcnemar_p_vs_{reference}"] = mcnemar_test(correct[name], correct[reference])[1]
    return rows
