"""The `deepfin` command line: thin over deepfin.tasks."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from deepfin import distributed
from deepfin.backtest import BacktestConfig
from deepfin.cli_credit import credit_app
from deepfin.config import ConfigError, RunConfig, load_config
from deepfin.data.io import DataError, read_prices
from deepfin.data.samples import SAMPLES
from deepfin.models import MODELS
from deepfin.report.forecast import build_compare_report, build_report, verdict
from deepfin.tasks.base import NotFittedError
from deepfin.tasks.forecasting import Forecaster
from deepfin.tasks.runs import new_run_dir, run_backtest, run_compare, run_forecast

app = typer.Typer(help="Deep learning for financial data.", no_args_is_help=True)
data_app = typer.Typer(help="Built-in data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(credit_app, name="credit")
console = Console()
if not console.is_terminal:
    # piped into a log or a file: tables keep their columns instead of folding to 80
    console = Console(width=160)
USER_ERRORS = (DataError, ConfigError, NotFittedError, FileNotFoundError, ValueError)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML run config.")]
DataOption = Annotated[
    str | None, typer.Option("--data", help="Built-in data set name or CSV/Parquet path.")
]
ColumnOption = Annotated[
    list[str] | None, typer.Option("--column", help="Column role=name, e.g. close='Adj Close'.")
]
ReportOption = Annotated[
    bool, typer.Option("--report/--no-report", help="Write report.html into the run folder.")
]
ParamOption = Annotated[
    list[str] | None, typer.Option("--param", help="Model hyperparameter key=value.")
]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """deepfin: forecasting with honest baselines."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,  # a dependency may have configured the root logger on import
    )


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{what} '{item}' needs the form key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _data_flags(
    data: str | None, column: list[str] | None, tickers: str | None, max_tickers: int | None
) -> dict[str, Any]:
    """The [data] overrides every command that reads prices shares."""
    return {
        "data.source": data,
        "data.columns": _pairs(column, "--column") or None,
        "data.tickers": tickers.split(",") if tickers else None,
        "data.max_tickers": max_tickers,
    }


def _parse_value(text: str) -> Any:
    """Model hyperparameters from the command line: int, float, bool or string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _build_config(config: Path | None, flags: dict[str, Any]) -> RunConfig:
    overrides = {key: value for key, value in flags.items() if value is not None}
    return load_config(config, overrides)


def _fail(error: Exception) -> None:
    console.print(f"[red]error:[/red] {error}")
    raise typer.Exit(code=2)


HEADINGS = {
    "mae": "MAE",
    "rmse": "RMSE",
    "mape": "MAPE %",
    "directional_accuracy": "hit rate",
    "r2_oos": "R2 oos",
    "dm_p_value": "DM p",
    "ic_mean": "IC",
    "icir": "ICIR",
    "rank_ic_mean": "Rank IC",
    "rank_icir": "Rank ICIR",
}


def _metrics_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    columns = ["mae", "rmse", "mape", "directional_accuracy", "r2_oos", "dm_p_value"]
    if any("ic_mean" in row for row in metrics.values()):
        columns += ["ic_mean", "icir", "rank_ic_mean"]
    table = Table(title=title)
    table.add_column("model")
    for column in columns:
        table.add_column(HEADINGS[column], justify="right")
    for name, row in metrics.items():
        table.add_row(name, *[_format(row.get(column)) for column in columns])
    return table


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"
    return str(value)


@app.command()
def forecast(
    config: ConfigOption = None,
    data: DataOption = None,
    column: ColumnOption = None,
    tickers: Annotated[str | None, typer.Option(help="Comma-separated tickers to keep.")] = None,
    max_tickers: Annotated[int | None, typer.Option(help="Keep the first N tickers.")] = None,
    model: Annotated[str | None, typer.Option(help=f"One of {', '.join(MODELS)}.")] = None,
    param: ParamOption = None,
    lookback: Annotated[int | None, typer.Option()] = None,
    horizon: Annotated[int | None, typer.Option()] = None,
    features: Annotated[str | None, typer.Option(help="Comma-separated features.")] = None,
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
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    learning_rate: Annotated[float | None, typer.Option()] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam or adamw.")] = None,
    weight_decay: Annotated[float | None, typer.Option()] = None,
    l1: Annotated[float | None, typer.Option()] = None,
    l2: Annotated[float | None, typer.Option()] = None,
    grad_clip: Annotated[float | None, typer.Option()] = None,
    patience: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
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
            **_data_flags(data, column, tickers, max_tickers),
            "forecast.model": model,
            "forecast.model_params": {
                k: _parse_value(v) for k, v in _pairs(param, "--param").items()
            }
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
            "training.progress": progress,
        }
        run_config = _build_config(config, flags)
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
                f"{run_config.data.source}"
            )
            forecaster = run_forecast(run_config, run_dir=folder, resume=resume)
    except (*USER_ERRORS, distributed.DistributedError) as error:
        _fail(error)
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
    console.print(_metrics_table(forecaster.metrics_, "test period: model vs baselines"))
    console.print(verdict(run_config.forecast.model, forecaster.metrics_))
    if report:
        console.print(f"report: {build_report(folder)}")
    console.print(f"run folder: {folder}")


@app.command()
def compare(
    models: Annotated[
        str, typer.Option(help="Comma-separated models.")
    ] = "lstm,gru,hybrid,transformer,cnn,rnn,linear,naive",
    config: ConfigOption = None,
    data: DataOption = None,
    column: ColumnOption = None,
    tickers: Annotated[str | None, typer.Option(help="Comma-separated tickers to keep.")] = None,
    max_tickers: Annotated[int | None, typer.Option(help="Keep the first N tickers.")] = None,
    lookback: Annotated[int | None, typer.Option()] = None,
    horizon: Annotated[int | None, typer.Option()] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder (default runs/<time>-compare).")
    ] = None,
    report: ReportOption = True,
) -> None:
    """Fit several models on one split and print one leaderboard."""
    try:
        names = [name.strip() for name in models.split(",") if name.strip()]
        unknown = [name for name in names if name not in MODELS]
        if unknown:
            raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
        flags = {
            **_data_flags(data, column, tickers, max_tickers),
            "forecast.lookback": lookback,
            "forecast.horizon": horizon,
            "training.epochs": epochs,
            "training.batch_size": batch_size,
            "training.seed": seed,
            "training.progress": progress,
        }
        run_config = _build_config(config, flags)
        folder = run_dir or new_run_dir(run_config.runs_dir, "compare")
        board = run_compare(run_config, models=names, run_dir=folder)
    except USER_ERRORS as error:
        _fail(error)
        return
    shown = [
        column
        for column in (
            "model",
            "rmse",
            "mae",
            "directional_accuracy",
            "r2_oos",
            "dm_p_value",
            "ic_mean",
            "rank_ic_mean",
            "rank_icir",
            "seconds",
        )
        if board[column].null_count() < board.height
    ]
    table = Table(title=f"leaderboard on {run_config.data.source} (test period)")
    for heading in shown:
        table.add_column(
            HEADINGS.get(heading, heading), justify="left" if heading == "model" else "right"
        )
    for row in board.select(shown).iter_rows():
        table.add_row(*[_format(value) for value in row])
    console.print(table)
    console.print(f"leaderboard: {folder / 'leaderboard.csv'}")
    if report:
        console.print(f"report: {build_compare_report(folder)}")


@app.command()
def backtest(
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models (default: --model).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="One model, if --models is not given.")] = None,
    config: ConfigOption = None,
    data: DataOption = None,
    column: ColumnOption = None,
    tickers: Annotated[str | None, typer.Option(help="Comma-separated tickers to keep.")] = None,
    max_tickers: Annotated[int | None, typer.Option(help="Keep the first N tickers.")] = None,
    lookback: Annotated[int | None, typer.Option()] = None,
    horizon: Annotated[int | None, typer.Option()] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    refit_every: Annotated[int | None, typer.Option(help="Days per fold (21: monthly).")] = None,
    window: Annotated[str | None, typer.Option(help="expanding or rolling.")] = None,
    train_days: Annotated[int | None, typer.Option(help="Rolling window length.")] = None,
    val_days: Annotated[int | None, typer.Option()] = None,
    test_fraction: Annotated[float | None, typer.Option()] = None,
    warm_start: Annotated[bool | None, typer.Option("--warm-start/--cold-start")] = None,
    warm_start_epochs: Annotated[int | None, typer.Option()] = None,
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
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder (default runs/<time>-backtest).")
    ] = None,
    report: ReportOption = True,
) -> None:
    """Walk-forward re-fits, stitched forecasts, and a strategy with costs vs a benchmark."""
    try:
        flags = {
            **_data_flags(data, column, tickers, max_tickers),
            "forecast.model": model,
            "forecast.lookback": lookback,
            "forecast.horizon": horizon,
            "training.epochs": epochs,
            "training.batch_size": batch_size,
            "training.seed": seed,
            "training.progress": progress,
            "walk_forward.refit_every": refit_every,
            "walk_forward.window": window,
            "walk_forward.train_days": train_days,
            "walk_forward.val_days": val_days,
            "walk_forward.test_fraction": test_fraction,
            "walk_forward.warm_start": warm_start,
            "walk_forward.warm_start_epochs": warm_start_epochs,
        }
        run_config = _build_config(config, flags)
        names = [n.strip() for n in (models or run_config.forecast.model).split(",") if n.strip()]
        unknown = [name for name in names if name not in MODELS]
        if unknown:
            raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
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
    except USER_ERRORS as error:
        _fail(error)
        return
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
            table.add_row(name, kind, *[_format(row.get(c)) for c in columns])
    console.print(table)
    if report:
        console.print(f"report: {build_report(folder)}")
    console.print(f"run folder: {folder}")


@app.command()
def predict(
    run: Annotated[Path, typer.Option("--run", help="A run folder written by forecast.")],
    data: Annotated[str, typer.Option("--data", help="CSV/Parquet of prices, or a built-in name.")],
    column: ColumnOption = None,
    output: Annotated[
        Path | None, typer.Option(help="Write forecasts here (.csv or .parquet).")
    ] = None,
) -> None:
    """Forecast from new prices with a saved run."""
    try:
        forecaster = Forecaster.load(run)
        source = SAMPLES[data].load_pandas() if data in SAMPLES else data
        frame = read_prices(source, columns=_pairs(column, "--column") or None)
        forecasts = forecaster.predict(frame)
    except USER_ERRORS as error:
        _fail(error)
        return
    destination = output or run / "forecasts.csv"
    if destination.suffix == ".parquet":
        forecasts.write_parquet(destination)
    else:
        forecasts.write_csv(destination)
    console.print(forecasts.tail(5))
    console.print(f"{forecasts.height} forecast(s) written to {destination}")


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder of forecast, compare or backtest.")],
) -> None:
    """Write report.html into a run folder."""
    try:
        is_compare = (run_dir / "leaderboard.csv").exists()
        path = build_compare_report(run_dir) if is_compare else build_report(run_dir)
    except USER_ERRORS as error:
        _fail(error)
        return
    console.print(f"report: {path}")


@data_app.command("list")
def data_list() -> None:
    """Show the built-in data sets."""
    table = Table(title="built-in data sets")
    for column in ("name", "description", "source"):
        table.add_column(column)
    for sample in SAMPLES.values():
        table.add_row(sample.name, sample.description, sample.source)
    console.print(table)


__all__ = ["app"]
