"""The credit report: ROC and KS curves, calibration, score distributions, cut-offs, fairness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from deepfin.errors import NotFittedError
from deepfin.metrics.classification import ks_curve, roc_curve
from deepfin.report.html import Section, Table, write_report
from deepfin.tasks.credit.estimator import CreditScorer

HEADLINE = ("auc", "gini", "ks", "ks_score", "brier", "log_loss", "n", "default_rate")


def _model_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"model": name, **{key: row.get(key) for key in HEADLINE}}
        for name, row in metrics["models"].items()
    ]


def _curves(scorer: CreditScorer) -> list[go.Figure]:
    predictions = scorer.predictions_
    assert predictions is not None
    labels = predictions["actual_default"].to_numpy()
    columns = {scorer.config.model: "default_probability"}
    columns |= {
        c.removesuffix("_probability"): c
        for c in predictions.columns
        if c.endswith("_probability") and c != "default_probability"
    }
    roc = go.Figure()
    for name, column in columns.items():
        fpr, tpr = roc_curve(labels, predictions[column].to_numpy())
        roc.add_scatter(x=fpr, y=tpr, mode="lines", name=name)
    roc.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot"})
    roc.update_layout(
        title="ROC curve (test)",
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
    )
    curve = ks_curve(labels, predictions["default_probability"].to_numpy())
    ks = go.Figure()
    ks.add_scatter(x=curve["threshold"], y=curve["good_cdf"], name="repaid (cumulative)")
    ks.add_scatter(x=curve["threshold"], y=curve["bad_cdf"], name="defaulted (cumulative)")
    ks.update_layout(
        title="KS: cumulative shares below each default probability",
        xaxis_title="default probability",
        yaxis_title="share",
    )
    return [roc, ks]


def _calibration(metrics: dict[str, Any]) -> go.Figure:
    rows = metrics["calibration"]
    figure = go.Figure()
    figure.add_scatter(
        x=[r["mean_predicted"] for r in rows],
        y=[r["observed_default_rate"] for r in rows],
        mode="lines+markers",
        name="model",
    )
    top = max(max(r["mean_predicted"], r["observed_default_rate"]) for r in rows)
    figure.add_scatter(x=[0, top], y=[0, top], mode="lines", name="perfect", line={"dash": "dot"})
    figure.update_layout(
        title="Calibration (test, equal-count bins)",
        xaxis_title="mean predicted default probability",
        yaxis_title="observed default rate",
    )
    return figure


def _distributions(scorer: CreditScorer, metrics: dict[str, Any]) -> list[go.Figure]:
    predictions = scorer.predictions_
    assert predictions is not None
    labels = predictions["actual_default"].to_numpy()
    score = predictions["score"].to_numpy()
    histogram = go.Figure()
    for value, name in ((0, "repaid"), (1, "defaulted")):
        histogram.add_histogram(
            x=score[labels == value], name=name, opacity=0.6, histnorm="probability"
        )
    histogram.update_layout(
        barmode="overlay",
        title="Score distribution (test, points)",
        xaxis_title="score (higher is safer)",
        yaxis_title="share",
    )
    shares = metrics["score_shares"]
    bins = [f"bin {i + 1}" for i in range(len(shares["train"]))]
    stability = go.Figure()
    stability.add_bar(x=bins, y=shares["train"], name="train")
    stability.add_bar(x=bins, y=shares["test"], name="test")
    stability.update_layout(
        title=f"Probability bins, train vs test (PSI {metrics['psi']:.4f})",
        yaxis_title="share of applicants",
    )
    return [histogram, stability]


def credit_sections(scorer: CreditScorer) -> list[Section]:
    """The report's sections from an evaluated scorer (fresh or loaded from its run folder)."""
    metrics = scorer.metrics_
    if metrics is None or scorer.predictions_ is None:
        raise NotFittedError("the scorer has no evaluation; call evaluate(test) before the report")
    notes = [
        f"Model {metrics['model']} beside baselines; probabilities are of default. "
        f"Approval cut-off: default probability < {metrics['cutoff']:.4f}.",
        f"PSI between training and test probability distributions: {metrics['psi']:.4f} "
        "(< 0.1 stable, 0.1 to 0.25 some shift, > 0.25 large shift).",
    ]
    if metrics.get("excluded_identifiers"):
        notes.append(
            "Refused as features (look like personal identifiers): "
            + ", ".join(metrics["excluded_identifiers"])
        )
    privacy = metrics.get("privacy")
    if privacy:
        notes.append(
            f"Trained with DP-SGD: epsilon {privacy['epsilon']:.3f} at delta {privacy['delta']:g} "
            f"(noise multiplier {privacy['noise_multiplier']:.3f}, clip "
            f"{privacy['max_grad_norm']:g}); covers the {privacy['scope']}."
        )
    importance = metrics["importance"][:20]
    bars = go.Figure(
        go.Bar(
            x=[r["mean_abs_log_odds"] for r in importance][::-1],
            y=[r["feature"] for r in importance][::-1],
            orientation="h",
        )
    )
    bars.update_layout(title="Global importance: mean |attribution| (log-odds)")
    fairness = [
        Table(f"Fairness by {column} (not a model input)", rows)
        for column, rows in metrics["fairness"].items()
    ]
    return [
        Section("Summary", notes=notes, tables=[Table("Test metrics", _model_rows(metrics))]),
        Section("Discrimination: ROC and KS", figures=_curves(scorer)),
        Section(
            "Calibration",
            tables=[Table("Calibration", metrics["calibration"])],
            figures=[_calibration(metrics)],
        ),
        Section("Score distributions and stability", figures=_distributions(scorer, metrics)),
        Section(
            "Cut-offs and bands",
            tables=[
                Table("Approve below the threshold", metrics["cutoffs"]),
                Table("Risk bands (test)", metrics["bands"]),
            ],
        ),
        Section(
            "Reason codes: global importance",
            tables=[Table("Importance", importance)],
            figures=[bars],
        ),
        Section(
            "Fairness",
            notes=[] if fairness else ["No sensitive attribute was named."],
            tables=fairness,
        ),
    ]


def write_credit_report(scorer: CreditScorer, path: Path, *, title: str | None = None) -> Path:
    """Write the self-contained HTML report of an evaluated scorer."""
    label = title or f"deepfin credit: {scorer.config.model} predicting {scorer.config.target}"
    return write_report(path, label, credit_sections(scorer))
