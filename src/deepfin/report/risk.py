"""The risk report of a `deepfin risk volatility` or `deepfin risk var` run folder: forecast and
realised volatility, VaR/ES bands with breaches marked, the backtests with Basel's colours,
risk contributions and stress scenarios."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl

from deepfin.errors import RunFolderError
from deepfin.report.html import Section, Table, write_report
from deepfin.runs.files import CONFIG, METRICS, PREDICTIONS, REPORT, read_frame, read_json

TRADING_DAYS = 252
ZONE_COLOURS = {"green": "#c8e6c9", "yellow": "#fff59d", "red": "#ef9a9a"}
VOLATILITY_KEYS = (
    *("qlike", "mse", "qlike_ratio_har", "dm_p_qlike_har", "qlike_ratio_gjr_garch"),
    *("dm_p_qlike_gjr_garch", "mz_slope", "mz_p_value", "mcs_p_value", "in_mcs"),
)
BACKTEST_KEYS = (
    *("method", "level", "breaches", "breach_rate", "kupiec_p", "independence_p"),
    *("conditional_coverage_p", "traffic_light", "z2", "z2_p", "fz0", "dm_p_fz0_fhs"),
)


def write_risk_report(run_dir: Path) -> Path:
    """Write report.html into a risk run folder; returns its path."""
    if not (run_dir / METRICS).exists() or not (run_dir / PREDICTIONS).exists():
        raise RunFolderError(f"{run_dir} has no {METRICS} and {PREDICTIONS}: is the run complete?")
    metrics = read_json(run_dir / METRICS)
    predictions = read_frame(run_dir / PREDICTIONS)
    read_json(run_dir / CONFIG)  # a run folder, not a folder of stray files
    if "backtests" in metrics:
        title = f"deepfin value-at-risk: {metrics['series']}"
        sections = _var_sections(metrics, predictions)
    else:
        title = f"deepfin volatility: {metrics['series']}, {metrics['horizon']}-day"
        sections = _volatility_sections(metrics, predictions)
    return write_report(run_dir / REPORT, title, sections)


def _annualised(variance: np.ndarray) -> np.ndarray:
    return np.sqrt(variance * TRADING_DAYS) * 100


def _volatility_sections(metrics: dict[str, Any], predictions: pl.DataFrame) -> list[Section]:
    models = list(metrics["models"])
    rows = [
        {"model": name, **{key: metrics["models"][name].get(key) for key in VOLATILITY_KEYS}}
        for name in models
    ]
    figure = go.Figure()
    dates = predictions["date"].to_list()
    figure.add_scatter(
        x=dates,
        y=_annualised(predictions["realised"].to_numpy()),
        name="realised",
        mode="lines",
        line={"color": "#bbb", "width": 1},
    )
    for name in models:
        figure.add_scatter(
            x=dates, y=_annualised(predictions[name].to_numpy()), name=name, mode="lines"
        )
    figure.update_layout(
        title=f"{metrics['horizon']}-day average variance as annualised volatility (%)",
        yaxis_title="volatility, % a year",
    )
    notes = [
        metrics["verdict"],
        f"Out of sample {metrics['test'][0]} to {metrics['test'][1]} in {metrics['folds']} "
        f"folds; daily variance by the {metrics['estimator']} estimator. QLIKE and MSE ratios "
        "below 1 beat the benchmark; DM p-values test the difference; the Model Confidence Set "
        "(10%) holds the models not shown worse than the best.",
    ]
    notes += [metrics["note"]] if metrics.get("note") else []
    notes += [
        f"{name}: {count} fit(s) did not converge; the previous parameters were kept."
        for name, count in metrics.get("failed_fits", {}).items()
    ]
    return [
        Section("Verdict and scores", notes=notes, tables=[Table("models", rows)]),
        Section("Forecast and realised volatility", figures=[figure]),
    ]


def _backtest_html(rows: list[dict[str, Any]]) -> str:
    """The backtest table with the traffic-light cell coloured by its zone."""
    head = "".join(f"<th>{html.escape(key)}</th>" for key in BACKTEST_KEYS)
    body = []
    for row in rows:
        cells = []
        for key in BACKTEST_KEYS:
            value = row.get(key)
            style = ""
            if key == "traffic_light" and value in ZONE_COLOURS:
                style = f" style='background:{ZONE_COLOURS[value]}'"
            text = "-" if value is None else (f"{value:.4g}" if isinstance(value, float) else value)
            cells.append(f"<td{style}>{html.escape(str(text))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<table><caption>backtests (p-values below 0.05 reject the forecasts)</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _var_sections(metrics: dict[str, Any], predictions: pl.DataFrame) -> list[Section]:
    dates = predictions["date"].to_list()
    returns = predictions["return"].to_numpy()
    levels = sorted({row["level"] for row in metrics["backtests"]}, reverse=True)
    methods = list(dict.fromkeys(row["method"] for row in metrics["backtests"]))
    figures = []
    for level in levels:
        figure = go.Figure()
        figure.add_scatter(
            x=dates,
            y=returns * 100,
            name="return",
            mode="markers",
            marker={"size": 3, "color": "#999"},
        )
        for method in methods:
            var = predictions[f"{method}_var_{level:g}"].to_numpy()
            es = predictions[f"{method}_es_{level:g}"].to_numpy()
            figure.add_scatter(x=dates, y=-var * 100, name=f"{method} VaR", mode="lines")
            figure.add_scatter(
                x=dates, y=-es * 100, name=f"{method} ES", mode="lines", line={"dash": "dot"},
                visible="legendonly",
            )  # fmt: skip
            hit = returns < -var
            figure.add_scatter(
                x=[d for d, h in zip(dates, hit, strict=True) if h],
                y=returns[hit] * 100,
                name=f"{method} breaches ({int(hit.sum())})",
                mode="markers",
                marker={"size": 7, "symbol": "x"},
            )
        figure.update_layout(
            title=f"{metrics.get('horizon', 1)}-day VaR and ES at {level:.1%}: losses beyond the "
            "line are breaches",
            yaxis_title="return, %",
        )
        figures.append(figure)
    sections = [
        Section(
            "Backtests",
            notes=[
                f"Out of sample {metrics['test'][0]} to {metrics['test'][1]}, "
                f"{metrics['refits']} re-fits; each forecast was made the day before it is judged."
            ],
            html=_backtest_html(metrics["backtests"]),
        ),
        Section("VaR and ES bands", figures=figures),
    ]
    portfolio = metrics.get("portfolio")
    if portfolio:
        rows = sorted(portfolio["risk_by_asset"], key=lambda row: -row["component_var_ewma"])
        bars = go.Figure()
        bars.add_bar(x=[r["ticker"] for r in rows], y=[r["share_ewma"] for r in rows], name="EWMA")
        bars.add_bar(
            x=[r["ticker"] for r in rows],
            y=[r["share_ledoit_wolf"] for r in rows],
            name="Ledoit-Wolf",
        )
        bars.update_layout(
            title="each asset's share of the portfolio's VaR (Euler allocation, last date)",
            barmode="group",
            yaxis_title="share of VaR",
        )
        sections.append(
            Section(
                "Risk contributions and stress",
                notes=[
                    "Component VaR: each asset's part of the portfolio's normal VaR at the "
                    "highest level on the last date (Euler allocation); the components sum to "
                    "the VaR, under either covariance forecast."
                ],
                tables=[
                    Table("stress scenarios (the portfolio's return)", portfolio["stress"]),
                    Table("risk contributions by asset", rows),
                ],
                figures=[bars],
            )
        )
    return sections
