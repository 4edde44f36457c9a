"""What the `deepfin` commands share: the console, common options, config building, tables."""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deepfin.config import RunConfig, load_config
from deepfin.errors import ConfigError, DeepfinError, InputFileError
from deepfin.runs.files import write_frame
from deepfin.tasks.forecasting.evaluation import caption_for

# soft wrap: a message or a path is never broken across lines, whatever the terminal's width
console = Console(soft_wrap=True)
if not console.is_terminal:
    # piped into a log or a file: tables keep their columns instead of folding to 80
    console = Console(width=160, soft_wrap=True)


class ConsoleHandler(logging.Handler):
    """Log records as one line each on the CLI's console: never wrapped, markup escaped."""

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        style = {"warning": "yellow", "error": "red", "critical": "red"}.get(level, "dim")
        console.print(f"[{style}]{level}:[/{style}] {escape(self.format(record))}")


INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C (128 + SIGINT)
REPORT_FAULT = (
    "this is a fault in deepfin, not in your input: please report it with the command you ran "
    "and the traceback above"
)


def guarded(command: Callable[..., None]) -> Callable[..., None]:
    """A command whose user errors are one `error:` line (exit 2) and Ctrl-C exit 130.

    The errors a user can fix are deepfin's own types; the machine's (a folder that cannot be
    written, a full disk) are OSErrors. Anything else is a fault: its traceback is shown, then
    a line asking to report it.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except DeepfinError as error:
            fail(error)
        except OSError as error:
            fail(InputFileError(describe_os_error(error)))
        except KeyboardInterrupt:
            console.print("[red]interrupted[/red] (Ctrl-C): nothing more was written")
            raise typer.Exit(code=INTERRUPTED) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception:
            console.print_exception()
            console.print(f"[red]error:[/red] {REPORT_FAULT}")
            raise typer.Exit(code=1) from None

    return run


def describe_os_error(error: OSError) -> str:
    """What an OSError means for the user: which path, what went wrong, what to do."""
    path = error.filename or ""
    reason = error.strerror or str(error)
    advice = {
        errno.ENOSPC: "free some disk space or write elsewhere",
        errno.EDQUOT: "free some disk space or write elsewhere",
        errno.EACCES: "check its permissions or write elsewhere",
        errno.EPERM: "check its permissions or write elsewhere",
        errno.EROFS: "the file system is read-only: write elsewhere",
        errno.EISDIR: "give a file name, not a folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.ENOENT: "check the path (a folder it names does not exist)",
    }.get(error.errno or 0, "check the path and try again")
    return f"{reason}: {path}; {advice}" if path else f"{reason}; {advice}"


ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML run config.")]
ColumnOption = Annotated[
    list[str] | None, typer.Option("--column", help="Column role=name, e.g. close='Adj Close'.")
]
LayoutOption = Annotated[
    str | None,
    typer.Option(help="long, wide (a date column and one column of closes per ticker) or auto."),
]
ReportOption = Annotated[
    bool, typer.Option("--report/--no-report", help="Write report.html into the run folder.")
]


def pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{what} '{item}' needs the form key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def model_names(text: str, choices: Collection[str], option: str = "--models") -> list[str]:
    """The comma-separated model names of an option: known ones, each once."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"{option} {text!r} names no model; give e.g. lstm,linear")
    unknown = [name for name in names if name not in choices]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(choices)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{option} names {repeated} more than once; name each model once")
    return names


TABLE_SUFFIXES = (".csv", ".parquet")


def table_destination(path: Path) -> Path:
    """Where an output table goes, checked before any work is done."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ConfigError(
            f"--output {path}: tables are written as .csv or .parquet; give one of those suffixes"
        )
    if path.is_dir():
        raise InputFileError(f"--output {path} is a folder; give a file name in it")
    if not path.parent.is_dir():
        raise InputFileError(
            f"the folder of --output {path} does not exist; create it or write elsewhere"
        )
    return path


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """A table as CSV or Parquet, by the path's suffix; atomically, never through a link."""
    write_frame(path, frame)


def build_config(config: Path | None, flags: dict[str, Any]) -> RunConfig:
    overrides = {key: value for key, value in flags.items() if value is not None}
    return load_config(config, overrides)


def fail(error: Exception) -> None:
    # escaped: a path or a config key in square brackets is text, not markup
    console.print(f"[red]error:[/red] {escape(str(error))}")
    raise typer.Exit(code=2)


HEADINGS = {
    "return_rmse": "return RMSE",
    "return_mae": "return MAE",
    "r2_oos": "R2 vs naive",
    "directional_accuracy": "hit rate",
    "dm_p_value": "DM p",
    "ic_mean": "IC",
    "icir": "ICIR",
    "rank_ic_mean": "Rank IC",
    "rank_ic_t_stat": "Rank IC t",
    "rank_icir": "Rank ICIR",
    "price_rmse": "price RMSE",
    "price_mape": "price MAPE %",
    "long_short_sharpe": "LS Sharpe",
    "long_short_sharpe_net": "LS Sharpe net",
}


def metrics_table(
    metrics: dict[str, dict[str, Any]], title: str, *, extra: tuple[str, ...] = ()
) -> Table:
    """Models, baselines and references in rows; return metrics first, prices, then `extra`."""
    panel = any(row.get("ic_mean") is not None for row in metrics.values())
    caption = caption_for(metrics)
    if panel:  # what a ranking is judged by; the price view stays in the CSV and the report
        columns = ["return_rmse", "directional_accuracy", "ic_mean", "icir", "rank_ic_mean"]
        columns += ["rank_icir", "rank_ic_t_stat", "long_short_sharpe", "long_short_sharpe_net"]
        caption += (
            " ICIR: the mean of the daily IC over its standard deviation. The leaderboard's CSV "
            "also holds return MAE, R2, the DM test, turnover and the price errors."
        )
    else:
        columns = ["return_rmse", "return_mae", "r2_oos", "directional_accuracy", "dm_p_value"]
        columns += ["price_rmse", "price_mape"]
    columns += extra
    table = Table(title=escape(title), caption=caption)
    table.add_column("model")
    for column in columns:
        table.add_column(HEADINGS.get(column, column), justify="right")
    for name, row in metrics.items():
        table.add_row(escape(name), *[format_value(row.get(column)) for column in columns])
    return table


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.1:
            return f"{value:#.4g}"  # return errors and ICs: four significant digits, not zeros
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"
    return str(value)
