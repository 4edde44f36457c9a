"""`deepfin risk volatility`: walk-forward volatility forecasts against the risk desk's models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from deepfin.cli.common import ConfigOption, ReportOption, console, format_value, guarded
from deepfin.cli.options import config_options
from deepfin.config import DataConfig, WalkForwardConfig
from deepfin.tasks.forecasting.pipeline import new_run_dir
from deepfin.tasks.risk.config import (
    VarConfig,
    VolatilityConfig,
    load_var_config,
    load_volatility_config,
    volatility_models,
)
from deepfin.tasks.risk.pipeline import run_var
from deepfin.tasks.risk.volatility import run_volatility
from deepfin.training import TrainingConfig

risk_app = typer.Typer(
    help="Risk: volatility, value-at-risk and their backtests.", no_args_is_help=True
)
COLUMNS = (
    ("mse", "MSE"),
    ("qlike", "QLIKE"),
    ("mse_ratio_har", "MSE / HAR"),
    ("qlike_ratio_har", "QLIKE / HAR"),
    ("dm_p_qlike_har", "DM p vs HAR"),
    ("qlike_ratio_gjr_garch", "QLIKE / GJR"),
    ("dm_p_qlike_gjr_garch", "DM p vs GJR"),
    ("mz_slope", "MZ slope"),
    ("mz_p_value", "MZ p"),
    ("mcs_p_value", "MCS p"),
)


@risk_app.command()
@guarded
@config_options(
    ("data", DataConfig),
    ("volatility", VolatilityConfig),
    ("walk_forward", WalkForwardConfig),
    ("training", TrainingConfig),
    skip=(
        "data.tickers",
        "data.max_tickers",
        "walk_forward.test_fraction",
        "walk_forward.window",
        "walk_forward.train_days",
    ),
    help={
        "volatility.models": f"From {', '.join(volatility_models())}; the first is judged.",
        "volatility.estimator": "close, parkinson, garman_klass or rogers_satchell.",
        "volatility.horizon": "Forecast the average variance of the next N trading days.",
        "walk_forward.test_start": "First test day (ISO date); folds re-fit every refit_every.",
    },
)
def volatility(
    flags: dict[str, Any],
    config: ConfigOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="Default runs/<time>-volatility.")] = None,
    report: ReportOption = True,
) -> None:
    """Walk-forward volatility forecasts of every model, scored against HAR and GJR-GARCH."""
    run = load_volatility_config(config, {k: v for k, v in flags.items() if v is not None})
    settings = run.volatility
    folder = run_dir or new_run_dir(run.runs_dir, f"volatility-h{settings.horizon}")
    console.print(
        f"[bold]deepfin risk volatility[/bold] {settings.horizon}-day average variance of "
        f"{escape(run.data.source)}, models {', '.join(settings.models)}"
    )
    result = run_volatility(run, run_dir=folder)
    metrics = result.metrics
    if metrics["estimator"] != settings.estimator:
        console.print(f"variance estimator used: {metrics['estimator']}")
    if metrics.get("note"):
        console.print(escape(metrics["note"]))
    table = Table(
        title=f"out of sample {metrics['test'][0]} to {metrics['test'][1]}: {metrics['folds']} "
        f"folds, {metrics['estimator']} variance"
    )
    table.add_column("model")
    rows = metrics["models"]
    shown = [(key, title) for key, title in COLUMNS if any(key in row for row in rows.values())]
    for _, title in shown:
        table.add_column(title, justify="right")
    table.add_column("in MCS")
    for name, row in rows.items():
        cells = [format_value(row.get(key)) for key, _ in shown]
        table.add_row(escape(name), *cells, "yes" if row["in_mcs"] else "no")
    console.print(table)
    for name, count in metrics["failed_fits"].items():
        console.print(f"{name}: {count} fit(s) did not converge; the previous parameters were kept")
    console.print(escape(metrics["verdict"]))
    _finish(folder, report)


def _finish(folder: Path, report: bool) -> None:
    """Write the report (unless told not to) and say where the run is."""
    if report:
        from deepfin.report.risk import write_risk_report

        console.print(f"report: {escape(str(write_risk_report(folder)))}")
    console.print(f"run folder: {escape(str(folder))}")


@risk_app.command()
@guarded
@config_options(
    ("data", DataConfig),
    ("var", VarConfig),
    ("walk_forward", WalkForwardConfig),
    ("training", TrainingConfig),
    skip=(
        "walk_forward.test_fraction",
        "walk_forward.window",
        "walk_forward.train_days",
        "walk_forward.embargo",
        "walk_forward.warm_start",
    ),
    help={
        "var.methods": "historical, garch_normal and garch_t (GJR-GARCH with normal or t "
        "errors), fhs (filtered historical), and the "
        "nets: quantile (pinball loss), fz0 (joint VaR/ES).",
        "var.network": "The net of the quantile and fz0 methods.",
        "var.horizon": "Days the loss is over (1, or 10 as Basel asks).",
        "var.weights": "CSV of ticker,weight: a portfolio of a panel (default equal weights).",
        "var.stress": "Named stress period name=start:end (ISO dates), repeatable.",
        "var.levels": "Confidence levels, e.g. 0.99,0.975.",
        "walk_forward.test_start": "First forecast origin (ISO date); re-fit every refit_every.",
    },
)
def var(
    flags: dict[str, Any],
    config: ConfigOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="Default runs/<time>-var.")] = None,
    report: ReportOption = True,
) -> None:
    """One-day VaR and ES walking forward, with Kupiec, Christoffersen, traffic-light, Z2, FZ0."""
    run = load_var_config(config, {k: v for k, v in flags.items() if v is not None})
    folder = run_dir or new_run_dir(run.runs_dir, "var")
    console.print(
        f"[bold]deepfin risk var[/bold] {run.var.horizon}-day VaR/ES of {escape(run.data.source)}"
    )
    metrics = run_var(run, run_dir=folder)
    table = Table(
        title=f"out of sample {metrics['test'][0]} to {metrics['test'][1]}, "
        f"{metrics['refits']} re-fits"
        + (
            f"; tests on every {metrics['horizon']}th day (outcomes that do not overlap)"
            if metrics["horizon"] > 1
            else ""
        )
    )
    for _, title in VAR_COLUMNS:
        table.add_column(title, justify="right")
    for row in metrics["backtests"]:
        table.add_row(*[escape(format_value(row.get(key))) for key, _ in VAR_COLUMNS])
    console.print(table)
    if "portfolio" in metrics:
        _print_portfolio(metrics["portfolio"], max(run.var.levels))
    _finish(folder, report)


def _print_portfolio(portfolio: dict[str, Any], level: float) -> None:
    """The largest risk contributions at the last date, and the stress scenarios."""
    rows = sorted(portfolio["risk_by_asset"], key=lambda row: -row["component_var_ewma"])
    table = Table(
        title=f"risk contributions to the normal VaR at {level:.1%} (Euler allocation; the "
        f"largest 10 of {len(rows)}: all {len(rows)} sum to the portfolio's VaR)"
    )
    for title in ("ticker", "weight", "EWMA component", "share", "Ledoit-Wolf component", "share"):
        table.add_column(title, justify="right")
    for row in rows[:10]:
        table.add_row(
            escape(row["ticker"]),
            *(format_value(row[key]) for key in ("weight", "component_var_ewma", "share_ewma")),
            *(format_value(row[key]) for key in ("component_var_ledoit_wolf", "share_ledoit_wolf")),
        )
    console.print(table)
    stress = Table(title="stress scenarios (the portfolio's return)")
    for title in ("scenario", "start", "end", "return"):
        stress.add_column(title)
    for row in portfolio["stress"]:
        stress.add_row(
            *(escape(format_value(row[key])) for key in ("scenario", "start", "end", "return"))
        )
    console.print(stress)


VAR_COLUMNS = (
    ("method", "method"),
    ("level", "level"),
    ("breaches", "breaches"),
    ("breach_rate", "rate"),
    ("kupiec_p", "Kupiec p"),
    ("independence_p", "indep. p"),
    ("conditional_coverage_p", "cond. cov. p"),
    ("traffic_light", "Basel zone"),
    ("z2", "Z2"),
    ("z2_p", "Z2 p"),
    ("fz0", "FZ0"),
    ("dm_p_fz0_fhs", "DM p vs FHS"),
)
