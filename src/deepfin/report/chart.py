"""The chart report: the net beside its baselines, AUC by year, decile returns, and Grad-CAM
heat maps over the test charts it found least and most likely to rise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from deepfin.errors import NotFittedError
from deepfin.explain.gradcam import grad_cam
from deepfin.report.html import Section, Table, write_report
from deepfin.tasks.charts.estimator import ChartClassifier

SHOWN = (
    "accuracy",
    "auc",
    "auc_se",
    "auc_p",
    "daily_auc",
    "daily_auc_p",
    "rank_ic",
    "rank_ic_t",
    "hml_return",
    "hml_sharpe",
    "hml_sharpe_net",
    "hml_turnover",
    "hml_vw_sharpe",
    "hml_vw_sharpe_net",
)


def _summary(classifier: ChartClassifier, metrics: dict[str, Any]) -> Section:
    style = classifier.style_
    assert style is not None
    test = metrics["test"]
    notes = [
        f"{style.days}-day {'line' if style.line else 'OHLC'} charts of {style.height}x"
        f"{style.width} pixels; the label is whether the close rises over the next "
        f"{classifier.horizon_} trading days.",
        *[f"{name}: {described}." for name, described in metrics.get("split", {}).items()],
        f"Test: {test['charts']} charts of {test['tickers']} tickers on {test['days']} days "
        f"({test['up_share']:.1%} up). Decile books are formed on {test['rebalancing_days']} "
        f"days one horizon apart and cost {classifier.config.cost_bps:g} bps per unit of "
        f"turnover; value weights: {test['value_weights']}.",
        "p (DeLong) treats every chart as independent; p (by day) tests the mean of the daily "
        "AUCs, as the charts of one day share its market move.",
        metrics["verdict"] + ".",
    ]
    for member, history in enumerate(classifier.histories_):
        if history.epochs:
            notes.append(
                f"Net {member + 1} (seed {classifier.training.seed + member}): kept epoch "
                f"{history.best_epoch} of {len(history.epochs)} (validation loss "
                f"{history.best_loss:.4f}; stopped: {history.stopped})."
            )
    rows = [
        {"model": name, **{key: row.get(key) for key in SHOWN}}
        for name, row in metrics["models"].items()
    ]
    return Section("Test charts", notes=notes, tables=[Table("Models on the test charts", rows)])


def _by_year(metrics: dict[str, Any]) -> go.Figure:
    figure = go.Figure()
    for name, years in metrics["auc_by_year"].items():
        figure.add_bar(name=name, x=list(years), y=list(years.values()))
    figure.add_hline(y=0.5, line_dash="dot")
    figure.update_layout(title="AUC by year (test charts)", yaxis_title="AUC", barmode="group")
    return figure


def _deciles(metrics: dict[str, Any]) -> go.Figure:
    figure = go.Figure()
    for name, returns in metrics["decile_returns"].items():
        figure.add_bar(name=name, x=list(range(1, len(returns) + 1)), y=returns)
    figure.update_layout(
        title="Mean return per holding period of each decile (1: least likely to rise)",
        xaxis_title="decile",
        yaxis_title="simple return, equal-weighted",
        yaxis_tickformat=".2%",
        barmode="group",
    )
    return figure


def _grad_cam(classifier: ChartClassifier) -> Section:
    examples = classifier.examples_
    assert examples is not None
    images = torch.from_numpy(examples.images).unsqueeze(1).float() / 255.0  # (B, 1, H, W)
    heat = torch.stack([grad_cam(net.cpu(), images) for net in classifier.models_]).mean(0)
    columns = max(1, (len(examples.dates) + 1) // 2)
    titles = [
        f"{ticker} {day}: P(up) {p:.3f}, {'rose' if up else 'fell'}"
        for ticker, day, p, up in zip(
            examples.tickers, examples.dates, examples.probability, examples.up, strict=True
        )
    ]
    figure = make_subplots(rows=2, cols=columns, subplot_titles=titles, horizontal_spacing=0.03)
    for index in range(len(titles)):
        row, column = index // columns + 1, index % columns + 1
        chart = images[index, 0].numpy()
        # the chart in grey, the heat in colour where the net looked
        figure.add_trace(
            go.Heatmap(z=chart, colorscale="Greys", reversescale=True, showscale=False),
            row=row,
            col=column,
        )
        figure.add_trace(
            go.Heatmap(
                z=np.where(heat[index].numpy() > 0.05, heat[index].numpy(), np.nan),
                colorscale="YlOrRd",
                opacity=0.55,
                showscale=index == 0,
                zmin=0,
                zmax=1,
                hovertemplate="day column %{x}<br>row %{y}<br>heat %{z:.2f}<extra></extra>",
            ),
            row=row,
            col=column,
        )
        figure.update_yaxes(autorange="reversed", showticklabels=False, row=row, col=column)
        figure.update_xaxes(showticklabels=False, row=row, col=column)
    figure.update_layout(
        height=560, title="Grad-CAM: where the net looked (top row: least likely to rise)"
    )
    figure.update_annotations(font_size=11)
    return Section(
        "Which bars drove the prediction",
        notes=[
            "Grad-CAM of the up-logit over the last convolution's maps, averaged over the "
            "ensemble: the redder a column, the more that day's bars pushed the prediction."
        ],
        figures=[figure],
    )


def chart_sections(classifier: ChartClassifier) -> list[Section]:
    """The report's sections for an evaluated classifier."""
    classifier.check_is_fitted()
    metrics = classifier.metrics_
    if metrics is None:
        raise NotFittedError("this ChartClassifier has not been evaluated; call evaluate(test)")
    sections = [_summary(classifier, metrics)]
    sections.append(Section("Out of sample, year by year", figures=[_by_year(metrics)]))
    sections.append(Section("Decile portfolios", figures=[_deciles(metrics)]))
    if classifier.examples_ is not None:
        sections.append(_grad_cam(classifier))
    return sections


def write_chart_report(
    classifier: ChartClassifier, path: Path, *, title: str | None = None
) -> Path:
    """Write the self-contained HTML report of an evaluated chart classifier."""
    label = title or f"deepfin chart: {classifier.config.model}"
    return write_report(path, label, chart_sections(classifier))
