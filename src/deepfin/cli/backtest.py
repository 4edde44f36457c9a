"""`deepfin backtest`: walk-forward re-fits and a strategy with costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from deepfin.backtest import BacktestConfig
from deepfin.cli.common import (
    ConfigOption,
    ReportOption,
    build_config,
    console,
    format_value,
    model_names,
)
from deepfin.cli.options import config_options
from deepfin.config import DataConfig, ForecastConfig, WalkForwardConfig
from deepfin.models import FORECAST_MODELS
from deepfin.report.forecast import build_report
from deepfin.runs.files import read_json
from deepfin.tasks.forecasting.pipeline import new_run_dir, run_backtest
from deepfin.training import TrainingConfig


@config_options(
    ("data", DataConfig),
    ("walk_forward", WalkForwardConfig),
    ("forecast", ForecastConfig),
    ("training", TrainingConfig),
    help={"forecast.model": "One model, if --models is not given."},
)
def backtest(
    flags: dict[str, Any],
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models (default: --model).")
    ] = None,
    config: ConfigOption = None,
    strategy: Annotated[str, typer.Option(help="long_flat or long_short.")] = "long_short",
    top_k: Annotated[int | None, typer.Option(help="Panel: names held per side.")] = None,
    top_fraction: Annotated[
        float | None, typer.Option(help="Panel: share held, 0.1 = decile.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Trade only |forecast| above this.")
    ] = None,
    weighting: Annotated[str, typer.Option(help="equal or signal.")] = "equal",
    rebalance_every: Annotated[int, typer.Option(help="Holding period in days.")] = 1,
    cost_bps: Annotated[float, typer.Option(help="Cost per unit traded, basis points.")] = 10.0,
    fixed_cost: Annotated[float, typer.Option(help="Per rebalance, fraction of NAV.")] = 0.0,
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder (default runs/<time>-backtest).")
    ] = None,
    report: ReportOption = True,
) -> None:
    """Walk-forward re-fits, stitched forecasts, and a strategy with costs vs a benchmark."""
    run_config = build_config(config, flags)
    names = model_names(models or run_config.forecast.model, FORECAST_MODELS)
    book = BacktestConfig(
        mode=strategy,  # type: ignore[arg-type]
        top_k=top_k,
        top_fraction=top_fraction,
        threshold=threshold,
        weighting=weighting,  # type: ignore[arg-type]
        rebalance_every=rebalance_every,
        cost_bps=cost_bps,
        fixed_cost=fixed_cost,
    )
    folder = run_dir or new_run_dir(run_config.runs_dir, "backtest")
    stats = run_backtest(run_config, models=names, strategy=book, run_dir=folder)
    table = Table(title="strategy statistics (walk-forward, out of sample)")
    columns = [
        "annual_return",
        "annual_volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "hit_rate",
        "annual_turnover",
    ]
    table.add_column("strategy")
    table.add_column("costs")
    for heading in columns:
        table.add_column(heading.replace("_", " "), justify="right")
    for name, by_kind in stats.items():
        for kind, row in by_kind.items():
            table.add_row(name, kind, *[format_value(row.get(c)) for c in columns])
    console.print(table)
    # which benchmark the book is judged against, and how it traded
    console.print(read_json(folder / "backtest.json")["description"])
    if report:
        console.print(f"report: {escape(str(build_report(folder)))}")
    console.print(f"run folder: {escape(str(folder))}")
