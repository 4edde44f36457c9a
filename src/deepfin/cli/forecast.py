"""`deepfin forecast|compare|predict|report`: forecasting from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from deepfin.cli.common import (
    USER_ERRORS,
    ColumnOption,
    ConfigOption,
    DataOption,
    FeaturesOption,
    FfillOption,
    IntOption,
    LayoutOption,
    MaxTickersOption,
    ParamOption,
    ProgressOption,
    ReportOption,
    TickersOption,
    build_config,
    console,
    data_flags,
    fail,
    metrics_table,
    pairs,
    parse_value,
)
from deepfin.data.samples import SAMPLES
from deepfin.errors import ConfigError
from deepfin.models import FORECAST_MODELS
from deepfin.report.credit import write_credit_report
from deepfin.report.forecast import build_compare_report, build_report, verdict
from deepfin.runs.files import REPORT, read_json, read_task
from deepfin.runs.load import load_run
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.forecasting.evaluation import REFERENCES, excluded_note
from deepfin.tasks.forecasting.pipeline import new_run_dir, run_compare, run_forecast
from deepfin.training import distributed


def forecast(
    config: ConfigOption = None,
    data: DataOption = None,
    column: ColumnOption = None,
    tickers: TickersOption = None,
    max_tickers: MaxTickersOption = None,
    layout: LayoutOption = None,
    ffill_limit: FfillOption = None,
    model: Annotated[str | None, typer.Option(help=f"One of {', '.join(FORECAST_MODELS)}.")] = None,
    param: ParamOption = None,
    lookback: IntOption = None,
    horizon: IntOption = None,
    features: FeaturesOption = None,
    target: Annotated[str | None, typer.Option(help="log_return or price.")] = None,
    scaler: Annotated[str | None, typer.Option(help="standard or minmax.")] = None,
    scale_per_ticker: Annotated[bool | None, typer.Option("--scale-per-ticker")] = None,
    loss: Annotated[str | None, typer.Option(help="mse or huber.")] = None,
    max_abs_log_return: Annotated[float | None, typer.Option()] = None,
    val_fraction: Annotated[float | None, typer.Option()] = None,
    test_fraction: Annotated[float | None, typer.Option()] = None,
    embargo: Annotated[
        int | None, typer.Option(help="Days between parts (default horizon).")
    ] = None,
    epochs: IntOption = None,
    batch_size: IntOption = None,
    learning_rate: Annotated[float | None, typer.Option()] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam or adamw.")] = None,
    weight_decay: Annotated[float | None, typer.Option()] = None,
    l1: Annotated[float | None, typer.Option()] = None,
    l2: Annotated[float | None, typer.Option()] = None,
    grad_clip: Annotated[float | None, typer.Option()] = None,
    patience: IntOption = None,
    seed: IntOption = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    bf16: Annotated[
        bool | None, typer.Option("--bf16/--no-bf16", help="bfloat16 autocast of the forward.")
    ] = None,
    progress: ProgressOption = None,
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
    try:
        flags = {
            **data_flags(data, column, tickers, max_tickers, layout),
            "data.ffill_limit": ffill_limit,
            "forecast.model": model,
            "forecast.model_params": {k: parse_value(v) for k, v in pairs(param, "--param").items()}
            or None,
            "forecast.lookback": lookback,
            "forecast.horizon": horizon,
            "forecast.features": features.split(",") if features else None,
            "forecast.target": target,
            "forecast.scaler": scaler,
            "forecast.scale_per_ticker": scale_per_ticker,
            "forecast.loss": loss,
            "forecast.max_abs_log_return": max_abs_log_return,
            "split.val_fraction": val_fraction,
            "split.test_fraction": test_fraction,
            "split.embargo": embargo,
            "training.epochs": epochs,
            "training.batch_size": batch_size,
            "training.learning_rate": learning_rate,
            "training.optimizer": optimizer,
            "training.weight_decay": weight_decay,
            "training.l1": l1,
            "training.l2": l2,
            "training.grad_clip": grad_clip,
            "training.patience": patience,
            "training.seed": seed,
            "training.device": device,
            "training.bf16": bf16,
            "training.progress": progress,
        }
        run_config = build_config(config, flags)
        if resume and run_dir is None:
            raise ConfigError("--resume needs --run-dir, the folder of the run to resume")
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
    except (*USER_ERRORS, distributed.DistributedError) as error:
        fail(error)
        return
    if not main_process:
        return
    assert forecaster.metrics_ is not None
    history = forecaster.history_
    if history.epochs:
        console.print(
            f"trained {len(history.epochs)} epoch(s), kept epoch {history.best_epoch} "
            f"(validation loss {history.best_loss:.4f}); stopped: {history.stopped}"
        )
    console.print(metrics_table(forecaster.metrics_, "test period: model vs baselines"))
    console.print(verdict(run_config.forecast.model, forecaster.metrics_))
    if excluded := excluded_note(forecaster.metrics_):
        console.print(excluded)
    if report:
        console.print(f"report: {escape(str(build_report(folder)))}")
    console.print(f"run folder: {escape(str(folder))}")


def compare(
    models: Annotated[
        str, typer.Option(help="Comma-separated models.")
    ] = "lstm,gru,hybrid,transformer,cnn,rnn,linear,naive",
    config: ConfigOption = None,
    data: DataOption = None,
    column: ColumnOption = None,
    tickers: TickersOption = None,
    max_tickers: MaxTickersOption = None,
    layout: LayoutOption = None,
    lookback: IntOption = None,
    horizon: IntOption = None,
    features: FeaturesOption = None,
    max_abs_log_return: Annotated[float | None, typer.Option()] = None,
    epochs: IntOption = None,
    batch_size: IntOption = None,
    seed: IntOption = None,
    progress: ProgressOption = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder (default runs/<time>-compare).")
    ] = None,
    report: ReportOption = True,
) -> None:
    """Fit several models on one split and print one leaderboard."""
    try:
        names = [name.strip() for name in models.split(",") if name.strip()]
        unknown = [name for name in names if name not in FORECAST_MODELS]
        if unknown:
            raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(FORECAST_MODELS)}")
        flags = {
            **data_flags(data, column, tickers, max_tickers, layout),
            "forecast.lookback": lookback,
            "forecast.horizon": horizon,
            "forecast.features": features.split(",") if features else None,
            "forecast.max_abs_log_return": max_abs_log_return,
            "training.epochs": epochs,
            "training.batch_size": batch_size,
            "training.seed": seed,
            "training.progress": progress,
        }
        run_config = build_config(config, flags)
        folder = run_dir or new_run_dir(run_config.runs_dir, "compare")
        board = run_compare(run_config, models=names, run_dir=folder)
    except USER_ERRORS as error:
        fail(error)
        return
    rows = {row["model"]: row for row in board.to_dicts()}
    scored = read_json(folder / "leaderboard.json").get("scored", {}).get("test", "")
    title = f"leaderboard on {run_config.data.source}: forecasts made {scored}"
    console.print(metrics_table(rows, title, extra=("seconds",)))
    for name in board["model"]:
        if name not in REFERENCES and name != "naive":
            console.print(verdict(name, rows))
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
    try:
        forecaster = Forecaster.load(run)
        source = SAMPLES[data].load_pandas() if data in SAMPLES else data
        forecasts = forecaster.predict(
            source, columns=pairs(column, "--column") or None, layout=layout or "auto"
        )
    except USER_ERRORS as error:
        fail(error)
        return
    destination = output or run / "forecasts.csv"
    if destination.suffix == ".parquet":
        forecasts.write_parquet(destination)
    else:
        forecasts.write_csv(destination)
    console.print(forecasts.tail(5))
    console.print(f"{forecasts.height} forecast(s) written to {escape(str(destination))}")


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder of any task.")],
) -> None:
    """Write report.html into a run folder."""
    try:
        # compare folders of earlier versions have a leaderboard but no config.json
        legacy_compare = (run_dir / "leaderboard.csv").exists()
        task = "compare" if legacy_compare else read_task(run_dir)
        if task == "compare":
            path = build_compare_report(run_dir)
        elif task == "credit":
            scorer = load_run(run_dir)
            assert isinstance(scorer, CreditScorer)
            path = write_credit_report(scorer, run_dir / REPORT)
        else:
            path = build_report(run_dir)
    except USER_ERRORS as error:
        fail(error)
        return
    console.print(f"report: {escape(str(path))}")
