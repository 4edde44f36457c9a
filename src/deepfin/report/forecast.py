"""The report of a forecast, compare or backtest run folder: metrics, charts, verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from deepfin.data.features import FACTORS
from deepfin.errors import RunFolderError
from deepfin.report.forecast_figures import (
    band_figure,
    equity_figure,
    fold_figure,
    loss_figure,
    price_figure,
    residual_figure,
    rolling_ic_figure,
)
from deepfin.report.html import Section, Table, write_report
from deepfin.runs.files import read_frame, read_json, read_run
from deepfin.tasks.forecasting.evaluation import (
    ALWAYS_UP,
    HEADLINE_METRICS,
    REFERENCES,
    caption_for,
    excluded_note,
    primary_rmse,
)

REPORT = "report.html"
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
    """A JSON file of the folder, or None when it has none; never through a link."""
    return read_json(path) if path.exists() or path.is_symlink() else None


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


def build_report(run_dir: Path | str) -> Path:
    """Write report.html into a run folder from the files it holds; returns its path."""
    run_dir = Path(run_dir)
    config = _read_json(run_dir / "config.json")
    metrics = _read_json(run_dir / "metrics.json")
    if config is None or metrics is None:
        raise RunFolderError(
            f"{run_dir} lacks config.json or metrics.json; report needs a finished run folder"
        )
    if isinstance(config, dict) and config.get("task") == "forecast":
        files = read_run(run_dir, "forecast")  # every file checked against its sha256
        if files.predictions is None:
            raise RunFolderError(
                f"{run_dir / 'predictions.parquet'} is missing; the report needs the test "
                "forecasts: re-run the forecast or restore the file"
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
    predictions = read_frame(predictions_path) if predictions_path.exists() else None
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
        quantiles = config.get("quantiles") if isinstance(config, dict) else None
        if quantiles and "quantiles" in metrics.get(models[0], {}):
            sections.append(_band_section(predictions, models[0], quantiles, metrics))
        if predictions["ticker"].n_unique() >= 5:
            sections.append(
                Section(
                    "Cross-sectional ranking",
                    figures=[rolling_ic_figure(predictions, [*models, "linear"])],
                )
            )
    if (run_dir / "history.csv").exists():
        history = read_frame(run_dir / "history.csv")
        if history.height:
            sections.append(Section("Training", figures=[loss_figure(history)]))
    backtest = _read_json(run_dir / "backtest.json")
    if backtest is not None:
        sections.append(_backtest_section(run_dir, backtest))
    if (run_dir / "folds.csv").exists():
        folds = read_frame(run_dir / "folds.csv")
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


def _band_section(
    predictions: pl.DataFrame, model: str, quantiles: list[float], metrics: dict[str, Any]
) -> Section:
    """Quantile bands drawn on the prices, and each interval's coverage and score."""
    scores = metrics[model]["quantiles"]
    rows = [{"interval": name, **values} for name, values in scores["intervals"].items()]
    rows += [
        {"interval": f"below {name}", "coverage": share} for name, share in scores["below"].items()
    ]
    return Section(
        "Quantile forecasts",
        notes=[
            f"Mean pinball loss {scores['mean_pinball']:.6g} (log returns). Coverage: the share "
            "of test outcomes inside each central interval, or below each quantile; the interval "
            "score adds to the width 2/alpha times each miss."
        ],
        tables=[Table("bands on the test period", rows)],
        figures=[band_figure(predictions, model, list(quantiles))],
    )


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
        daily = read_frame(daily_path)
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
        raise RunFolderError(f"{board_path} is missing; is {compare_dir} a compare folder?")
    board = read_frame(board_path)
    board_json = _read_json(compare_dir / "leaderboard.json") or {}
    models = [name for name in board["model"].to_list() if name not in REFERENCES]
    tables: list[pl.DataFrame] = []
    for name in models:
        path = compare_dir / name / "predictions.parquet"
        if path.exists():
            columns = ["date", "ticker", f"{name}_log_return", f"{name}_price"]
            base = ["close", "actual_log_return", "actual_price"] if not tables else []
            tables.append(read_frame(path).select(["date", "ticker", *base, *columns[2:]]))
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
