"""The charts of forecast, compare and backtest reports: interactive plotly figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from deepfin.metrics.ranking import cross_sectional_ic

MAX_TICKERS_SHOWN = 3
ROLLING_IC_DAYS = 21


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


def band_figure(predictions: pl.DataFrame, model: str, quantiles: list[float]) -> go.Figure:
    """The actual price within the forecast quantile bands, for the ticker with most forecasts."""
    ticker = predictions.group_by("ticker").len().sort(["len", "ticker"], descending=[True, False])
    rows = predictions.filter(pl.col("ticker") == ticker["ticker"][0]).sort("date")
    close = rows["close"].to_numpy()
    figure = go.Figure()
    outer = [q for q in quantiles if q < 0.5 and round(1 - q, 10) in quantiles]
    for low in sorted(outer):
        high = round(1 - low, 10)
        figure.add_scatter(
            x=rows["date"], y=close * np.exp(rows[f"{model}_q{high:g}"].to_numpy()),
            mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip",
        )  # fmt: skip
        figure.add_scatter(
            x=rows["date"], y=close * np.exp(rows[f"{model}_q{low:g}"].to_numpy()),
            mode="lines", line={"width": 0}, fill="tonexty", name=f"{1 - 2 * low:.0%} band",
            fillcolor="rgba(31, 119, 180, 0.2)",
        )  # fmt: skip
    figure.add_scatter(x=rows["date"], y=rows["actual_price"], name="actual", mode="lines")
    figure.update_layout(
        title=f"{ticker['ticker'][0]}: the price {model}'s quantiles give (x: the forecast origin)",
        xaxis_title="forecast origin",
        yaxis_title="price",
    )
    return figure
