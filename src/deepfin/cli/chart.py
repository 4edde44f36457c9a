"""`deepfin chart train|predict`: CNNs on price charts from the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from deepfin.cli.common import (
    ConfigOption,
    ReportOption,
    console,
    format_value,
    guarded,
    table_destination,
    write_table,
)
from deepfin.cli.options import config_options
from deepfin.data.io import read_prices
from deepfin.models import IMAGE_MODELS
from deepfin.runs.files import REPORT
from deepfin.tasks.charts.config import ChartConfig, ChartDataConfig, load_chart_config
from deepfin.tasks.charts.estimator import ChartClassifier
from deepfin.tasks.charts.files import run_charts
from deepfin.tasks.forecasting.pipeline import new_run_dir
from deepfin.training import TrainingConfig

chart_app = typer.Typer(help="CNNs on price charts (Jiang, Kelly and Xiu).", no_args_is_help=True)
SHOWN = (
    ("accuracy", "accuracy"),
    ("auc", "AUC"),
    ("auc_p", "p (DeLong)"),
    ("daily_auc_p", "p (by day)"),
    ("rank_ic", "Rank IC"),
    ("rank_ic_t", "t"),
    ("hml_sharpe", "H-L Sharpe"),
    ("hml_sharpe_net", "after costs"),
    ("hml_vw_sharpe", "H-L VW Sharpe"),
    ("hml_vw_sharpe_net", "after costs"),
)


@chart_app.command()
@guarded
@config_options(
    ("data", ChartDataConfig),
    ("chart", ChartConfig),
    ("training", TrainingConfig),
    help={
        "data.source": "Daily OHLCV prices of one or many tickers: CSV or Parquet.",
        "data.window": "Trading days in each chart (5, 20 or 60 get the paper's sizes).",
        "data.horizon": "The label: does the close rise over this many days?",
        "data.stride": "Days between charts (default: the horizon).",
        "data.style": "ohlc bars, or line (closes only).",
        "data.test_start": "First test day, ISO (else the last --test-fraction of the days).",
        "data.test_fraction": "Share of the last days held out as the test.",
        "data.val_fraction": "Share of the days before the test that choose the kept epoch.",
        "chart.model": f"One of {', '.join(IMAGE_MODELS)}.",
        "chart.ensemble": "Nets trained from consecutive seeds, probabilities averaged.",
        "chart.cost_bps": "Cost per unit of turnover of the decile portfolios.",
    },
)
def train(
    flags: dict[str, Any],
    config: ConfigOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="Default runs/<time>-chart-<model>.")] = None,
    report: ReportOption = True,
) -> None:
    """Train a chart CNN beside reversal, momentum and logistic baselines; save a run folder."""
    run = load_chart_config(config, {k: v for k, v in flags.items() if v is not None})
    classifier = ChartClassifier(**dataclasses.asdict(run.chart), training=run.training)
    folder = run_dir or new_run_dir(run.runs_dir, f"chart-{run.chart.model}")
    console.print(
        f"[bold]deepfin chart[/bold] {run.chart.model} x{run.chart.ensemble} on "
        f"{escape(run.data.source)}: {run.data.window}-day charts, {run.data.horizon}-day horizon"
    )
    metrics = run_charts(classifier, run.data, run_dir=folder)
    for name, described in metrics["split"].items():
        console.print(f"  {name}: {described}")
    test = metrics["test"]
    table = Table(
        title=f"test charts ({test['charts']} of {test['tickers']} tickers, {test['first']} .. "
        f"{test['last']}; {test['up_share']:.1%} up); high-minus-low decile books after "
        f"{run.chart.cost_bps:g} bps"
    )
    table.add_column("model")
    for _, heading in SHOWN:
        table.add_column(heading, justify="right")
    for name, row in metrics["models"].items():
        table.add_row(escape(name), *[format_value(row.get(key)) for key, _ in SHOWN])
    console.print(table)
    console.print(metrics["verdict"])
    if report:
        from deepfin.report.chart import write_chart_report

        page = write_chart_report(classifier, folder / REPORT)
        console.print(f"report: {escape(str(page))}")
    console.print(f"run folder: {escape(str(folder))}")


@chart_app.command()
@guarded
def predict(
    run: Annotated[Path, typer.Option("--run", help="A run folder written by chart train.")],
    data: Annotated[str, typer.Option("--data", help="Daily OHLCV prices: CSV or Parquet.")],
    output: Annotated[Path | None, typer.Option(help=".csv or .parquet.")] = None,
    latest: Annotated[
        bool, typer.Option("--latest/--all-days", help="Only each ticker's latest chart.")
    ] = True,
) -> None:
    """The chance that each ticker's close rises over the run's horizon, from its chart."""
    destination = table_destination(output or Path(data).with_name(Path(data).stem + "_up.csv"))
    classifier = ChartClassifier.load(run)
    predicted = classifier.predict(read_prices(data), latest=latest)
    write_table(predicted, destination)
    console.print(predicted.sort("up_probability", descending=True).head(5), markup=False)
    console.print(
        f"{predicted.height} chart(s) scored ({classifier.horizon_}-day horizon); written to "
        f"{escape(str(destination))}"
    )
