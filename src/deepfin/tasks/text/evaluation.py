"""The rows of a text evaluation: the model and its baselines on the same test texts, each
with a test against the row below it (McNemar for classes, Diebold-Mariano for scores)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import polars as pl
import torch
from scipy import stats

from deepfin.metrics.regression import mean_absolute_error, root_mean_squared_error
from deepfin.metrics.significance import diebold_mariano


def score_rows(actual: np.ndarray, predicted: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per model (the model, the TF-IDF ridge, the training mean) MSE, RMSE, MAE, R², Pearson,
    and the Diebold-Mariano p-value (squared errors) against the next row."""
    rows: dict[str, dict[str, Any]] = {}
    for name, scores in predicted.items():
        errors = actual - scores
        mse = float(np.mean(errors**2))
        spread = float(np.sum((actual - actual.mean()) ** 2))
        constant = bool(np.ptp(scores) == 0)
        rows[name] = {
            "mse": mse,
            "rmse": root_mean_squared_error(actual, scores),
            "mae": mean_absolute_error(actual, scores),
            "r2": 1.0 - float(np.sum(errors**2)) / spread if spread else float("nan"),
            "pearson": float("nan") if constant else float(stats.pearsonr(actual, scores)[0]),
            "n": len(actual),
        }
    names = list(predicted)
    for name, reference in itertools.pairwise(names):
        test = diebold_mariano(actual, predicted[name], predicted[reference])
        rows[name][f"dm_p_vs_{reference}"] = test["p_value"]
    return rows


TOP_K = 3


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities (N, C) of logits (N, C), in float64."""
    return torch.softmax(torch.from_numpy(np.asarray(logits, dtype=np.float64)), dim=1).numpy()


def labelled(
    frame: pl.DataFrame, outputs: np.ndarray, classes: list[str], *, scores: bool
) -> pl.DataFrame:
    """Per text of `frame` its predicted score, or its label, the label's probability and
    the top-3 labels with theirs; the true `label` kept where the frame has one."""
    if scores:
        out = frame.select("text").with_columns(pl.Series("predicted", outputs[:, 0]))
    else:
        probabilities = softmax(outputs)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
        names = np.array(classes)
        out = frame.select("text").with_columns(
            pl.Series("predicted", names[order[:, 0]]),
            pl.Series("probability", probabilities[np.arange(len(order)), order[:, 0]]),
            pl.Series("top_labels", [list(row) for row in names[order]]),
            pl.Series(
                "top_probabilities",
                [list(row) for row in np.take_along_axis(probabilities, order, axis=1)],
            ),
        )
    return out.with_columns(frame["label"]) if "label" in frame.columns else out
