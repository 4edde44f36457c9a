"""Evaluation of a fitted CreditScorer: metrics beside baselines, tables, fairness, importance."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from deepfin.data.tabular.encoding import binary_target, category_text
from deepfin.explain.attribution import global_importance, group_columns
from deepfin.metrics.classification import (
    bin_shares,
    calibration_table,
    credit_metrics,
    cutoff_table,
    fairness_table,
    population_stability_index,
    scorecard_points,
)

if TYPE_CHECKING:
    from deepfin.tasks.credit.estimator import CreditScorer

IMPORTANCE_ROWS = 1_000  # attributions are costly; a seeded sample ranks features just as well
MIN_GROUP_SIZE = 30  # smaller fairness groups are pooled: a rate over a few people names them
NUMERIC_GROUPS = 5


def sensitive_groups(column: pl.Series, *, min_group_size: int = MIN_GROUP_SIZE) -> np.ndarray:
    """Fairness group per row: value ranges for many-valued numbers, pooled rare categories."""
    if column.dtype.is_numeric() and column.n_unique() > 2 * NUMERIC_GROUPS:
        values = column.cast(pl.Float64).to_numpy()
        present = values[np.isfinite(values)]
        edges = np.unique(np.quantile(present, np.linspace(0, 1, NUMERIC_GROUPS + 1)[1:-1]))
        labels = [f"< {edges[0]:g}"]
        labels += [f"{low:g} to < {high:g}" for low, high in itertools.pairwise(edges)]
        labels += [f">= {edges[-1]:g}"]
        groups = np.array(labels, dtype=object)[np.searchsorted(edges, values, side="right")]
        groups[~np.isfinite(values)] = "(missing)"
        return groups
    text = category_text(column).fill_null("(missing)")
    counts = text.value_counts()
    rare = counts.filter(pl.col("count") < min_group_size)[text.name]
    return text.set(text.is_in(rare.implode()), "(other)").to_numpy().astype(object)


def evaluate_scorer(
    scorer: CreditScorer, frame: pl.DataFrame, *, cutoff: float | None = None
) -> dict[str, Any]:
    """Score `frame`, compare with baselines, and keep metrics and per-row predictions."""
    scorer.check_is_fitted()
    cfg = scorer.config
    assert scorer.model_ is not None
    labels = binary_target(frame, cfg.target, default_value=cfg.default_value)
    x = scorer.encoder_.transform(frame, unknown=cfg.unknown_categories)
    models = {cfg.model: scorer.model_, **scorer.baselines_}
    probabilities = {name: scorer.probability_of(model, x) for name, model in models.items()}
    probability = probabilities[cfg.model]
    by_model = {name: credit_metrics(labels, p) for name, p in probabilities.items()}
    # a cut-off chosen on these very rows would flatter the fairness table: use the one fitted
    # before the test set was seen (folders from earlier versions lack it)
    if cutoff is not None:
        cut = float(cutoff)
    else:
        cut = (
            scorer.cutoff_ if scorer.cutoff_ is not None else by_model[cfg.model]["ks_probability"]
        )
    test_shares = bin_shares(probability, scorer.score_edges_)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.permutation(len(x))[:IMPORTANCE_ROWS])
    encoded, _ = scorer.attributions(x[sample])
    grouped, names = group_columns(encoded, scorer.encoder_.feature_sources_)
    bands = np.array(scorer.bands(probability))
    fairness = {
        column: fairness_table(sensitive_groups(frame[column]), labels, probability, cutoff=cut)
        for column in cfg.sensitive
        if column in frame.columns
    }
    metrics = {
        "model": cfg.model,
        "models": by_model,
        "cutoff": cut,
        "psi": population_stability_index(scorer.train_score_shares_, test_shares),
        "score_shares": {
            "edges": scorer.score_edges_.tolist(),
            "train": scorer.train_score_shares_.tolist(),
            "test": test_shares.tolist(),
        },
        "calibration": calibration_table(labels, probability),
        "cutoffs": cutoff_table(labels, probability),
        "bands": [
            {
                "band": band,
                "n": int((bands == band).sum()),
                "default_rate": float(labels[bands == band].mean())
                if (bands == band).any()
                else None,
                "mean_probability": float(probability[bands == band].mean())
                if (bands == band).any()
                else None,
            }
            for band in sorted(set(bands.tolist()))
        ],
        "importance": global_importance(grouped, names),
        "fairness": fairness,
        "privacy": scorer.privacy_,
        "excluded_identifiers": sorted(scorer.excluded_identifiers_),
    }
    scorer.metrics_ = metrics
    scorer.predictions_ = pl.DataFrame(
        {
            "actual_default": labels,
            "default_probability": probability,
            "score": scorecard_points(probability),
            "band": bands.tolist(),
            **{f"{name}_probability": p for name, p in probabilities.items() if name != cfg.model},
        }
    )
    return metrics
