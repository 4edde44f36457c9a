"""The report of a forecast, compare or backtest run folder: metrics, charts, verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from deepfin.data.features import FACTORS
from deepfin.metrics.ranking import cross_sectional_ic
from deepfin.report.html import Section, Table, write_report
from deepfin.tasks.forecasting.evaluation import (
    ALWAYS_UP,
    HEADLINE_METRICS,
    REFERENCES,
    caption_for,
    excluded_note,
    primary_rmse,
)

REPORT = "report.html"
MAX_TICKERS_SHOWN = 3
ROLLING_IC_DAYS = 21
STRATEGY_COLUMNS = (
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "drawdown_peak_date",
    "drawdown_trough_date",
    "hit_rate",
    "annual_turnover",
    "total_cost",
)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def verdict(model: str, metrics: dict[str, dict[str, Any]]) -> str:
    """Whether the model beat the naive forecast on returns, how surely, and its references."""
    if model == "naive":
        return "naive is the random walk: the benchmark itself"
    if "naive" not in metrics:
        return f"{model}: the naive forecast is not in this table, so there is no verdict"
    row, naive = metrics[model], metrics["naive"]
    error, naive_error = primary_rmse(row), primary_rmse(naive)
    p_value = row.get("dm_p_value")
    if error is None or naive_error is None or p_value is None:
        return f"{model}: no error to compare with the naive forecast"
    if error < naive_error and p_value < 0.05:
        sentence = (
            f"{model} beats the naive forecast on return RMSE (Diebold-Mariano p={p_value:.3g})"
        )
    elif error < naive_error:
        sentence = (
            f"{model} has a lower return RMSE than the naive forecast, but not significantly "
            f"(Diebold-Mariano p={p_value:.3g})"
        )
    else:
        sentence = (
            f"{model} does not beat the naive forecast (return RMSE {error:.6g} vs "
            f"{naive_error:.6g})"
        )
    return sentence + "".join(_reference_clauses(row, metrics))


def _reference_clauses(row: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> list[str]:
    """The hit rate beside always-up's, and the Rank IC beside the best one-line factor's."""
    clauses = []
    hit_rate = row.get("directional_accuracy")
    up_rate = metrics.get(ALWAYS_UP, {}).get("directional_accuracy")
    if hit_rate is not None and up_rate is not None:
        clauses.append(f"; hit rate {hit_rate:.3f} against {up_rate:.3f} for always up")
    factors = [name for name in FACTORS if metrics.get(name, {}).get("rank_ic_mean") is not None]
    if row.get("rank_ic_mean") is not None and factors:
        best = max(factors, key=lambda name: metrics[name]["rank_ic_mean"])
        clauses.append(
            f"; Rank IC {row['rank_ic_mean']:.3f} (t {row.get('rank_ic_t_stat') or 0:.1f}) "
            f"against {metrics[best]['rank_ic_mean']:.3f} "
            f"(t {metrics[best].get('rank_ic_t_stat') or 0:.1f}) for {best}"
        )
    return clauses


def metrics_rows(metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows: one per model, the headline metrics as columns."""
    present = [c for c in HEADLINE_METRICS if any(c in row for row in metrics.values())]
    return [{"model": name, **{c: row.get(c) for c in present}} for name, row in metrics.items()]


def price_figure(predictions: pl.DataFrame, models: list[str]) -> go.Figure:
    """Actual vs forecast price for the tickers with the most forecasts."""
    counts = predictions.group_by("ticker").len().sort(["len", "ticker"], descending=[True, False])
    figure = go.Figure()
    for ticker in counts["ticker"].head(MAX_TICKERS_SHOWN):
        rows = predictions.filter(pl.col("ticker") == ticker).sort("date")
        figure.add_scatter(
            x=rows["date"], y=rows["actual_price"], name=f"{ticker} actual", mode="lines"
        )
        for name in models:
            figure.add_scatter(
                x=rows["date"], y=rows[f"{name}_price"], name=f"{ticker} {name}", mode="lines"
            )
    last_dates = predictions["date"].unique().sort().tail(120)
    # open on the last months, where single forecasts can be told apart; the slider shows all
    figure.update_xaxes(range=[last_dates[0], last_dates[-1]], rangeslider={"visible": True})
    figure.update_layout(
        title="Actual vs forecast price (x: the date the forecast was made)",
        xaxis_title="forecast origin",
        yaxis_title="price",
    )
    return figure


def residual_figure(predictions: pl.DataFrame, models: list[str]) -> go.Figure:
    """Mean forecast error of the log return per date, per model."""
    figure = go.Figure()
    for name in models:
        daily = (
            predictions.group_by("date")
            .agg((pl.col("actual_log_return") - pl.col(f"{name}_log_return")).mean().alias("error"))
            .sort("date")
        )
        figure.add_scatter(x=daily["date"], y=daily["error"], name=name, mode="lines")
    figure.update_layout(
        title="Residuals over time (actual - forecast log return)", yaxis_title="log return"
    )
    return figure


def loss_figure(history: pl.DataFrame) -> go.Figure:
    """Training and validation loss per epoch."""
    figure = go.Figure()
    figure.add_scatter(
        x=history["epoch"], y=history["train_loss"], name="training", mode="lines+markers"
    )
    figure.add_scatter(
        x=history["epoch"], y=history["val_loss"], name="validation", mode="lines+markers"
    )
    figure.update_layout(title="Loss per epoch", xaxis_title="epoch", yaxis_title="loss")
    return figure


def equity_figure(daily: pl.DataFrame, title: str) -> go.Figure:
    """Equity curves (growth of 1) and drawdowns of every `*_return` column of `daily`."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05
    )
    for column in [c for c in daily.columns if c.endswith("_return")]:
        returns = np.nan_to_num(daily[column].to_numpy(), nan=0.0)
        equity = np.cumprod(1 + returns)
        drawdown = equity / np.maximum.accumulate(equity) - 1
        label = column.removesuffix("_return").replace("_", " ")
        figure.add_scatter(x=daily["date"], y=equity, name=label, mode="lines", row=1, col=1)
        figure.add_scatter(
            x=daily["date"], y=drawdown, name=f"{label} drawdown", mode="lines", row=2, col=1
        )
    figure.update_layout(title=title)
    figure.update_yaxes(title_text="growth of 1", row=1, col=1)
    figure.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    return figure


def rolling_ic_figure(predictions: pl.DataFrame, models: list[str]) -> go.Figure:
    """Daily cross-sectional IC per model and its rolling mean."""
    figure = go.Figure()
    for name in models:
        ic = cross_sectional_ic(
            predictions["date"].to_numpy(),
            predictions["actual_log_return"].to_numpy(),
            predictions[f"{name}_log_return"].to_numpy(),
        )
        rolling = pl.Series(ic["ic"]).rolling_mean(ROLLING_IC_DAYS, min_samples=1)
        figure.add_scatter(
            x=ic["date"], y=rolling, name=f"{name} ({ROLLING_IC_DAYS}-day mean)", mode="lines"
        )
    figure.add_hline(y=0, line_dash="dot")
    figure.update_layout(title="Rolling information coefficient", yaxis_title="IC")
    return figure


def fold_figure(folds: pl.DataFrame) -> go.Figure:
    """RMSE of each model per fold, relative to the naive forecast's."""
    # return RMSE; folders written before returns were the target of judgement have price RMSE
    error = "return_rmse" if "return_rmse" in folds.columns else "rmse"
    naive = folds.filter(pl.col("model") == "naive").select(
        "fold", pl.col(error).alias("naive_rmse")
    )
    relative = folds.join(naive, on="fold").with_columns(
        (pl.col(error) / pl.col("naive_rmse")).alias("ratio")
    )
    figure = go.Figure()
    for (name,), rows in relative.filter(pl.col("model") != "naive").group_by(
        "model", maintain_order=True
    ):
        figure.add_bar(x=rows["test_start"], y=rows["ratio"], name=str(name))
    figure.add_hline(y=1, line_dash="dot")
    figure.update_layout(
        title="Return RMSE per fold relative to naive (below 1 beats the random walk)",
        xaxis_title="fold test start",
        barmode="group",
    )
    return figure


def build_report(run_dir: Path | str) -> Path:
    """Write report.html into a run folder from the files it holds; returns its path."""
    run_dir = Path(run_dir)
    config = _read_json(run_dir / "config.json")
    metrics = _read_json(run_dir / "metrics.json")
    if config is None or metrics is None:
        raise FileNotFoundError(
            f"{run_dir} lacks config.json or metrics.json; report needs a finished run folder"
        )
    baselines = ("linear", "naive", *REFERENCES)
    models = [name for name in metrics if name not in baselines] or list(metrics)[:1]
    judged = [name for name in dict.fromkeys([*models, "linear"]) if name != "naive"]
    sections = [
        Section(
            "Summary",
            notes=[verdict(name, metrics) for name in judged]
            + _scored_notes(_read_json(run_dir / "run.json"), metrics),
            tables=[Table(f"Test-period metrics. {caption_for(metrics)}", metrics_rows(metrics))],
        )
    ]
    predictions_path = run_dir / "predictions.parquet"
    predictions = pl.read_parquet(predictions_path) if predictions_path.exists() else None
    if predictions is not None:
        shown = [*models, "linear", "naive"]
        sections.append(
            Section(
                "Forecasts",
                figures=[
                    price_figure(predictions, shown),
                    residual_figure(predictions, [*models, "linear"]),
                ],
            )
        )
        if predictions["ticker"].n_unique() >= 5:
            sections.append(
                Section(
                    "Cross-sectional ranking",
                    figures=[rolling_ic_figure(predictions, [*models, "linear"])],
                )
            )
    if (run_dir / "history.csv").exists():
        history = pl.read_csv(run_dir / "history.csv")
        if history.height:
            sections.append(Section("Training", figures=[loss_figure(history)]))
    backtest = _read_json(run_dir / "backtest.json")
    if backtest is not None:
        sections.append(_backtest_section(run_dir, backtest))
    if (run_dir / "folds.csv").exists():
        folds = pl.read_csv(run_dir / "folds.csv")
        sections.append(
            Section(
                "Walk-forward folds",
                tables=[Table("Metrics per fold", folds.to_dicts())],
                figures=[fold_figure(folds)],
            )
        )
    sections.append(Section("Configuration", preformatted=json.dumps(config, indent=2)))
    title = f"deepfin {config.get('task', 'forecast')} report: {', '.join(models)}"
    return write_report(run_dir / REPORT, title, sections)


def _scored_notes(run: dict[str, Any] | None, metrics: dict[str, dict[str, Any]]) -> list[str]:
    """Which dates each part held and which forecast origins were scored; what was left out."""
    run = run or {}
    scored = run.get("scored", {})
    notes = [
        f"{part}: rows {dates}" + (f"; forecasts made {scored[part]}" if part in scored else "")
        for part, dates in run.get("split", {}).items()
        if isinstance(dates, str)  # a backtest's run.json holds split settings, not dates
    ]
    excluded = excluded_note(metrics)
    return [*notes, excluded] if excluded else notes


def _backtest_section(run_dir: Path, backtest: dict[str, Any]) -> Section:
    rows = []
    for model, by_kind in backtest.get("stats", {}).items():
        for kind, stats in by_kind.items():
            shown = {column: stats.get(column) for column in STRATEGY_COLUMNS}
            rows.append({"strategy": model, "costs": kind, **shown})
    figures = []
    daily_path = run_dir / "backtest_daily.parquet"
    if daily_path.exists():
        daily = pl.read_parquet(daily_path)
        figures.append(
            equity_figure(
                daily, "Equity and drawdown: strategies before and after costs vs benchmark"
            )
        )
    notes = [backtest["description"]] if "description" in backtest else []
    return Section(
        "Strategy backtest",
        notes=notes,
        tables=[Table("Strategy statistics", rows)],
        figures=figures,
    )


def build_compare_report(compare_dir: Path | str) -> Path:
    """Write report.html for a compare folder: the leaderboard and every model's forecasts."""
    compare_dir = Path(compare_dir)
    board_path = compare_dir / "leaderboard.csv"
    if not board_path.exists():
        raise FileNotFoundError(f"{board_path} is missing; is {compare_dir} a compare folder?")
    board = pl.read_csv(board_path)
    board_json = _read_json(compare_dir / "leaderboard.json") or {}
    models = [name for name in board["model"].to_list() if name not in REFERENCES]
    tables: list[pl.DataFrame] = []
    for name in models:
        path = compare_dir / name / "predictions.parquet"
        if path.exists():
            columns = ["date", "ticker", f"{name}_log_return", f"{name}_price"]
            base = ["close", "actual_log_return", "actual_price"] if not tables else []
            tables.append(pl.read_parquet(path).select(["date", "ticker", *base, *columns[2:]]))
    figures = []
    if tables:
        joined = tables[0]
        for table in tables[1:]:
            joined = joined.join(table, on=["date", "ticker"], how="left")
        figures.append(price_figure(joined, models))
        if joined["ticker"].n_unique() >= 5:
            figures.append(rolling_ic_figure(joined, [m for m in models if m != "naive"]))
    sections = [
        Section(
            "Leaderboard",
            notes=[
                *_scored_notes(board_json, {row["model"]: row for row in board.to_dicts()}),
                "Every model is fitted on the same split; each model's own run folder (and "
                "report) is in the sub-folder of its name.",
            ],
            tables=[
                Table(
                    "Test-period metrics, best return RMSE first. "
                    + caption_for({row["model"]: row for row in board.to_dicts()}),
                    board.to_dicts(),
                )
            ],
            figures=figures,
        )
    ]
    return write_report(
        compare_dir / REPORT, f"deepfin compare report: {', '.join(models)}", sections
    )
