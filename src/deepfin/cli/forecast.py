"""`deepfin forecast|compare|predict|report`: forecasting from the command line."""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from deepfin.cli.common import (
    INTERRUPTED,
    ColumnOption,
    ConfigOption,
    LayoutOption,
    ReportOption,
    build_config,
    console,
    metrics_table,
    pairs,
    table_destination,
    write_table,
)
from deepfin.cli.options import config_options, model_specs
from deepfin.config import DataConfig, ForecastConfig, SplitConfig
from deepfin.data.samples import SAMPLES
from deepfin.errors import ConfigError, RunFolderError
from deepfin.models import FORECAST_MODELS
from deepfin.report.credit import write_credit_report
from deepfin.report.forecast import build_compare_report, build_report, verdict
from deepfin.runs.files import CONFIG, REPORT, read_json, read_task
from deepfin.runs.load import load_run
from deepfin.runs.lock import run_lock
from deepfin.tasks.charts.estimator import ChartClassifier
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.forecasting.compare import ModelSpec, run_compare
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.forecasting.evaluation import REFERENCES, excluded_note
from deepfin.tasks.forecasting.pipeline import new_run_dir, run_forecast
from deepfin.tasks.text.estimator import TextClassifier
from deepfin.training import TrainingConfig, distributed


@config_options(
    ("data", DataConfig),
    ("split", SplitConfig),
    ("forecast", ForecastConfig),
    ("training", TrainingConfig),
    help={"forecast.model": f"One of {', '.join(FORECAST_MODELS)}."},
)
def forecast(
    flags: dict[str, Any],
    config: ConfigOption = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run folder (default runs/<time>-<model>).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Resume from run-dir's checkpoint.")] = False,
    nproc: Annotated[
        int, typer.Option(help="Train with N local processes (DistributedDataParallel).")
    ] = 1,
    report: ReportOption = True,
) -> None:
    """Train a model, evaluate it next to naive and linear baselines, save a run folder."""
    run_config = build_config(config, flags)
    if resume and run_dir is None:
        raise ConfigError("--resume needs --run-dir, the folder of the run to resume")
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: give the number of processes to train with, >= 1")
    if nproc > 1:
        # N ranks of this same command (without --nproc), all writing one folder chosen here
        folder = run_dir or new_run_dir(run_config.runs_dir, run_config.forecast.model)
        argv = sys.argv[sys.argv.index("forecast") + 1 :]
        argv = distributed.strip_option(distributed.strip_option(argv, "--nproc"), "--run-dir")
        distributed.launch_forecast(nproc, [*argv, "--run-dir", str(folder)])
        return
    # joins the process group under torchrun or --nproc; outside a launch it does nothing
    with distributed.process_group():
        main_process = distributed.is_main_process()
        console.quiet = not main_process  # rank 0 speaks for all
        # rank 0 names the folder: each rank would otherwise time-stamp its own
        folder = distributed.broadcast_from_main(
            run_dir or new_run_dir(run_config.runs_dir, run_config.forecast.model)
        )
        console.print(
            f"[bold]deepfin forecast[/bold] {run_config.forecast.model} on "
            f"{escape(run_config.data.source)}"
        )
        forecaster = run_forecast(run_config, run_dir=folder, resume=resume)
    if not main_process:
        # rank 0 saves and reports the run; leaving at once skips the interpreter's C++
        # teardown, in which gloo's threads can abort a finished rank ("terminate called
        # without an active exception") and fail a run that succeeded
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    assert forecaster.metrics_ is not None
    history = forecaster.history_
    if history.epochs:
        chosen = (
            f"validation Rank IC {history.best_score:.4f}"
            if history.selected_by == "val_score" and history.best_score is not None
            else f"validation loss {history.best_loss:.4f}"
        )
        console.print(
            f"trained {len(history.epochs)} epoch(s), kept epoch {history.best_epoch} "
            f"({chosen}); stopped: {history.stopped}"
        )
    console.print(metrics_table(forecaster.metrics_, "test period: model vs baselines"))
    console.print(escape(verdict(run_config.forecast.model, forecaster.metrics_)))
    bands = forecaster.metrics_.get(run_config.forecast.model, {}).get("quantiles")
    if bands:
        steps = [
            name
            for name, used in (
                ("conformal", run_config.forecast.conformal),
                ("adaptive", run_config.forecast.adaptive),
            )
            if used
        ]
        calibrated = f" after {' and '.join(steps)} calibration" if steps else ""
        for name, interval in bands["intervals"].items():
            console.print(
                f"{name} interval{calibrated}: coverage {interval['coverage']:.1%}, mean width "
                f"{interval['width']:.4g}, interval score {interval['interval_score']:.4g}"
            )
        console.print(f"mean pinball loss {bands['mean_pinball']:.4g}")
    if excluded := excluded_note(forecaster.metrics_):
        console.print(excluded)
    if report:
        console.print(f"report: {escape(str(build_report(folder)))}")
    console.print(f"run folder: {escape(str(folder))}")
    if history.stopped == "interrupted":
        # a script must be able to tell that the run did not train as long as it was asked
        console.print(
            "[red]interrupted[/red] (Ctrl-C): the run was evaluated and saved with the best "
            f"weights so far; continue it with --resume --run-dir {escape(str(folder))}"
        )
        raise typer.Exit(code=INTERRUPTED)


@config_options(
    ("data", DataConfig),
    ("split", SplitConfig),
    ("forecast", ForecastConfig),
    ("training", TrainingConfig),
    skip=("forecast.model", "forecast.model_params"),
)
def compare(
    flags: dict[str, Any],
    models: Annotated[
        str, typer.Option(help="Comma-separated models; a variant: hybrid[paths=long].")
    ] = "lstm,gru,hybrid,transformer,cnn,rnn,linear,naive",
    config: ConfigOption = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder (default runs/<time>-compare).")
    ] = None,
    report: ReportOption = True,
    seeds: Annotated[
        int, typer.Option(help="Train each model with N seeds: mean, std and their ensemble.")
    ] = 1,
) -> None:
    """Fit several models on one split and print one leaderboard."""
    specs: list[str | ModelSpec] = [*model_specs(models)]
    run_config = build_config(config, flags)
    folder = run_dir or new_run_dir(run_config.runs_dir, "compare")
    board = run_compare(run_config, models=specs, run_dir=folder, seeds=seeds)
    rows = {row["model"]: row for row in board.to_dicts()}
    scored = read_json(folder / "leaderboard.json").get("scored", {}).get("test", "")
    title = f"leaderboard on {run_config.data.source}: forecasts made {scored}"
    spread = ("rank_ic_mean_std",) if seeds > 1 and "rank_ic_mean_std" in board.columns else ()
    console.print(metrics_table(rows, title, extra=("kept_epoch", *spread, "seconds")))
    for name in board["model"]:
        if name not in REFERENCES and name != "naive":
            console.print(escape(verdict(name, rows)))
    if excluded := excluded_note(rows):
        console.print(excluded)
    console.print(f"leaderboard: {escape(str(folder / 'leaderboard.csv'))}")
    if report:
        console.print(f"report: {escape(str(build_compare_report(folder)))}")


def predict(
    run: Annotated[Path, typer.Option("--run", help="A run folder written by forecast.")],
    data: Annotated[str, typer.Option("--data", help="CSV/Parquet of prices, or a built-in name.")],
    column: ColumnOption = None,
    layout: LayoutOption = None,
    output: Annotated[
        Path | None, typer.Option(help="Write forecasts here (.csv or .parquet).")
    ] = None,
) -> None:
    """Forecast from new prices with a saved run."""
    forecaster = Forecaster.load(run)
    destination = table_destination(output or run / "forecasts.csv")  # before the work
    source = SAMPLES[data].load_pandas() if data in SAMPLES else data
    forecasts = forecaster.predict(
        source, columns=pairs(column, "--column") or None, layout=layout or "auto"
    )
    with run_lock(run) if output is None else nullcontext():  # into the run folder
        write_table(forecasts, destination)
    console.print(forecasts.tail(5), markup=False)
    console.print(f"{forecasts.height} forecast(s) written to {escape(str(destination))}")


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder of any task.")],
) -> None:
    """Write report.html into a run folder."""
    # compare folders of earlier versions have a leaderboard but no config.json
    legacy_compare = (run_dir / "leaderboard.csv").exists()
    task = "compare" if legacy_compare else read_task(run_dir)
    if task == "compare":
        path = build_compare_report(run_dir)
    elif task == "credit":
        scorer = load_run(run_dir)
        assert isinstance(scorer, CreditScorer)
        path = write_credit_report(scorer, run_dir / REPORT)
    elif task == "text":
        from deepfin.report.text import write_text_report

        classifier = load_run(run_dir)
        assert isinstance(classifier, TextClassifier)
        path = write_text_report(classifier, run_dir / REPORT)
    elif task in ("forecast", "backtest"):
        path = build_report(run_dir)
    elif task == "chart":
        from deepfin.report.chart import write_chart_report

        charts = load_run(run_dir)
        assert isinstance(charts, ChartClassifier)
        path = write_chart_report(charts, run_dir / REPORT)
    elif task == "image":
        raise RunFolderError(
            f"{run_dir} is an image classifier's run: its scores are in metrics.json; "
            "`deepfin report` draws reports of forecasts, credit, text, charts and risk"
        )
    elif task == "risk":
        from deepfin.report.risk import write_risk_report

        path = write_risk_report(run_dir)
    else:
        raise RunFolderError(
            f"{run_dir / CONFIG} names the task {task!r}, which deepfin does not know; is it a "
            "deepfin run folder, and of this version?"
        )
    console.print(f"report: {escape(str(path))}")
