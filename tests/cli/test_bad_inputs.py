"""Bad inputs against the `deepfin` command, one table row each.

The contract: a bad input is refused with exit code 2 and one line starting with `error:` that
says what happened and what to do, never a traceback; a fault (a bug) prints its traceback
and a line asking to "please report it", exit 1; Ctrl-C exits 130. Where a warning is the
right answer, a run that goes on (exit 0) must print a `warning:` line naming the problem;
anything else is a silent wrong result.

A row is an id, a setup that builds its inputs in the case's folder, the command line and the
expectation. Placeholders in the command line: {tmp} is the case's folder; {csv}, {parquet}
and {loans} the shared data files; {run}, {credit} and {compare} a fresh copy of the shared
forecast run, credit run and compare folder, made at {tmp}/run, {tmp}/credit, {tmp}/compare
before the setup runs (so a setup tampers with the copy). A row that does not meet the
contract today is marked xfail(strict=True) with what happens instead; when it is fixed the
mark fails and is removed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from deepfin.cli import app

runner = CliRunner()
Setup = Callable[[Path, "Shared"], None]


@dataclass(frozen=True)
class Shared:
    """The inputs every case may start from, built once per module."""

    folder: Path
    prices: pl.DataFrame  # long OHLCV, 6 tickers x 300 days
    loans: pl.DataFrame  # income, debt, grade, sex, default (0/1)

    @property
    def placeholders(self) -> dict[str, str]:
        return {
            "csv": str(self.folder / "prices.csv"),
            "parquet": str(self.folder / "prices.parquet"),
            "loans": str(self.folder / "loans.csv"),
        }


@dataclass(frozen=True)
class Case:
    """One bad input: what to build, what to run, what the output must say."""

    id: str
    argv: tuple[str, ...]
    expect: str  # "error" (exit 2), "warn" (exit 0 with a warning, or exit 2), "ok" (exit 0)
    fragment: str = ""  # a regex the error or warning line must contain
    setup: Setup | None = None
    xfail: str | None = None  # what happens today, while the case fails the contract
    absent: tuple[str, ...] = ()  # text the output must not show (a table's values)
    permissions: bool = False  # relies on file permissions, which root ignores
    gpu_free: bool = False  # needs a machine without CUDA
    env: dict[str, str] = field(default_factory=dict)


def error(id: str, argv: list[str], fragment: str, setup: Setup | None = None, **kw: Any) -> Case:
    return Case(id, tuple(argv), "error", fragment, setup, **kw)


def warn(id: str, argv: list[str], fragment: str, setup: Setup | None = None, **kw: Any) -> Case:
    return Case(id, tuple(argv), "warn", fragment, setup, **kw)


def ok(id: str, argv: list[str], setup: Setup | None = None, **kw: Any) -> Case:
    return Case(id, tuple(argv), "ok", "", setup, **kw)


# ---------------------------------------------------------------------------------- setups


def prices(name: str, change: Callable[[pl.DataFrame], pl.DataFrame] = lambda f: f) -> Setup:
    """The shared prices, changed, written to {tmp}/name (.csv, .parquet or .csv.gz)."""

    def setup(tmp: Path, shared: Shared) -> None:
        frame = change(shared.prices)
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".parquet"):
            frame.write_parquet(path)
        elif name.endswith(".gz"):
            path.write_bytes(gzip.compress(frame.write_csv().encode()))
        else:
            frame.write_csv(path)

    return setup


def loans(name: str, change: Callable[[pl.DataFrame], pl.DataFrame] = lambda f: f) -> Setup:
    """The shared loan table, changed, written to {tmp}/name."""

    def setup(tmp: Path, shared: Shared) -> None:
        frame = change(shared.loans)
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(frame.write_csv().encode()))
        else:
            frame.write_csv(path)

    return setup


def text(name: str, content: str | bytes) -> Setup:
    """A file of exactly this content at {tmp}/name."""

    def setup(tmp: Path, shared: Shared) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return setup


def folder(name: str) -> Setup:
    def setup(tmp: Path, shared: Shared) -> None:
        (tmp / name).mkdir(parents=True, exist_ok=True)

    return setup


def truncated(name: str, source: str, keep: float = 0.5) -> Setup:
    """{tmp}/name: the first `keep` share of the bytes of {tmp}/source (or a shared file)."""

    def setup(tmp: Path, shared: Shared) -> None:
        origin = tmp / source if (tmp / source).exists() else shared.folder / source
        data = origin.read_bytes()
        (tmp / name).write_bytes(data[: int(len(data) * keep)])

    return setup


def edit_json(name: str, change: Callable[[Any], Any]) -> Setup:
    """Rewrite the JSON file {tmp}/name with change(parsed)."""

    def setup(tmp: Path, shared: Shared) -> None:
        path = tmp / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return setup


def edit_tensors(name: str, change: Callable[[dict[str, torch.Tensor]], None]) -> Setup:
    """Rewrite the safetensors file {tmp}/name after change(tensors) edits it in place."""

    def setup(tmp: Path, shared: Shared) -> None:
        tensors = load_file(tmp / name)
        change(tensors)
        save_file(tensors, tmp / name)

    return setup


def resigned(change: Setup, name: str) -> Setup:
    """`change`, then the sha256 config.json records for {tmp}/name made to match: a run
    written with these contents (by a bug, an older version), not one changed afterwards."""

    def setup(tmp: Path, shared: Shared) -> None:
        change(tmp, shared)
        run_dir, file = (tmp / name).parent, (tmp / name).name
        saved = json.loads((run_dir / "config.json").read_text())
        if file in saved.get("files", {}):
            saved["files"][file] = hashlib.sha256((tmp / name).read_bytes()).hexdigest()
            (run_dir / "config.json").write_text(json.dumps(saved))

    return setup


def remove(name: str) -> Setup:
    def setup(tmp: Path, shared: Shared) -> None:
        path = tmp / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return setup


def read_only(name: str) -> Setup:
    def setup(tmp: Path, shared: Shared) -> None:
        for path in [tmp / name, *(tmp / name).rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    return setup


def run_cmd(argv: list[str]) -> Setup:
    """Run a deepfin command as part of the setup (it must succeed)."""

    def setup(tmp: Path, shared: Shared) -> None:
        args = [arg.format(tmp=tmp, **shared.placeholders) for arg in argv]
        result = runner.invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    return setup


def steps(*setups: Setup) -> Setup:
    def setup(tmp: Path, shared: Shared) -> None:
        for each in setups:
            each(tmp, shared)

    return setup


# ------------------------------------------------------------------------ frame changes


def set_column(name: str, values: Callable[[pl.DataFrame], Any]) -> Callable[..., pl.DataFrame]:
    return lambda frame: frame.with_columns(pl.Series(name, values(frame)))


def at_rows(name: str, value: Any, rows: slice) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Column `name` with `value` at positions `rows` (as float, or text if value is text)."""

    def change(frame: pl.DataFrame) -> pl.DataFrame:
        column: Any = (
            frame[name].cast(pl.String).to_list()
            if isinstance(value, str)
            else frame[name].cast(pl.Float64).to_numpy().copy()
        )
        indices = range(frame.height)[rows]
        for index in indices:
            column[index] = value
        return frame.with_columns(pl.Series(name, column))

    return change


def semicolons(frame: pl.DataFrame) -> str:
    return frame.write_csv(separator=";")


def decimal_commas(frame: pl.DataFrame, separator: str = ";") -> str:
    """As a European spreadsheet saves it: 1,25 for 1.25 (quoted where the separator is ,)."""
    numeric = [c for c in frame.columns if frame[c].dtype == pl.Float64]
    shown = frame.with_columns(
        pl.col(c).round(4).cast(pl.String).str.replace(".", ",", literal=True) for c in numeric
    )
    return shown.write_csv(separator=separator)


def quoted_decimal_commas(frame: pl.DataFrame) -> str:
    return decimal_commas(frame, ",")


def with_bom(frame: pl.DataFrame) -> bytes:
    return b"\xef\xbb\xbf" + frame.write_csv().encode()


def utf16(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode("utf-16")


def as_text(
    name: str, render: Callable[[pl.DataFrame], str | bytes], source: str = "prices"
) -> Setup:
    def setup(tmp: Path, shared: Shared) -> None:
        frame = shared.prices if source == "prices" else shared.loans
        content = render(frame)
        path = tmp / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    return setup


EXCEL = b"PK\x03\x04" + bytes(np.random.default_rng(1).integers(0, 256, 400, dtype=np.uint8))
SECRET = "jane.doe@example.com"  # a value no error message may echo
LATE = dt.date(2020, 10, 20)  # T0 keeps only its last week


# ----------------------------------------------------------------------------- commands

FAST = ["--no-progress", "--no-report"]
FORECAST = ["forecast", "--data", "{csv}", "--model", "linear", "--lookback", "10", *FAST]
FORECAST_OUT = [*FORECAST, "--run-dir", "{tmp}/out"]
LSTM = ["--model", "lstm", "--epochs", "1", "--param", "hidden_size=4"]
# the shared run's options: a resume restates them
RESUME = ["forecast", "--data", "{csv}", "--lookback", "10", *LSTM, *FAST, "--resume"]
COMPARE = ["compare", "--data", "{csv}", "--models", "linear,naive", "--lookback", "10", *FAST]
COMPARE_OUT = [*COMPARE, "--run-dir", "{tmp}/out"]
BACKTEST = ["backtest", "--data", "{csv}", "--model", "naive", "--lookback", "10", *FAST]
BACKTEST_OUT = [*BACKTEST, "--run-dir", "{tmp}/out"]
PREDICT = ["predict", "--run", "{run}", "--data", "{csv}", "--output", "{tmp}/f.csv"]
TRAIN = ["credit", "train", "--target", "default", "--model", "logistic", "--baselines", ""]
TRAIN_OUT = [*TRAIN, "--no-progress", "--epochs", "2", "--run-dir", "{tmp}/out"]
TRAIN_ON = [*TRAIN_OUT, "--data", "{tmp}/loans.csv"]
CREDIT = [*TRAIN_OUT, "--data", "{loans}"]
SCORE = ["credit", "score", "--run", "{credit}", "--data", "{loans}", "--output", "{tmp}/s.csv"]
SCORE_ON = ["credit", "score", "--run", "{credit}", "--data", "{tmp}/new.csv"]


def forecast_on(path: str, *more: str) -> list[str]:
    return [*FORECAST_OUT, "--data", path, *more]


def predict_on(path: str, *more: str) -> list[str]:
    return [*PREDICT, "--data", path, *more]


def score_on(*more: str) -> list[str]:
    return [*SCORE_ON, "--output", "{tmp}/s.csv", *more]


def toml(body: str) -> Setup:
    return text("run.toml", body)


def drop(*names: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda frame: frame.drop(*names)


def nan_weights(tensors: dict[str, torch.Tensor]) -> None:
    name = sorted(tensors)[-1]
    tensors[name] = torch.full_like(tensors[name], math.nan)


def drop_tensor(tensors: dict[str, torch.Tensor]) -> None:
    del tensors[sorted(tensors)[-1]]


def widen_tensor(tensors: dict[str, torch.Tensor]) -> None:
    name = sorted(tensors)[-1]
    tensors[name] = torch.zeros(tensors[name].shape[0] + 3, *tensors[name].shape[1:])


def emails(frame: pl.DataFrame) -> list[str]:
    return [f"c{index}@bank.example.com" for index in range(frame.height)]


def new_applicants(change: Callable[[pl.DataFrame], pl.DataFrame] = lambda f: f) -> Setup:
    return loans("new.csv", lambda frame: change(frame.drop("default").head(40)))


def target_values(values: Callable[[int], Any]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda frame: frame.with_columns(pl.Series("default", values(frame.height)))


def preprocess(change: Callable[[dict], None], name: str = "run") -> Setup:
    """Edit {tmp}/name/preprocess.json in place."""
    return edit_json(f"{name}/preprocess.json", in_place(change))


def config(change: Callable[[dict], None], name: str = "run") -> Setup:
    """Edit {tmp}/name/config.json in place."""
    return edit_json(f"{name}/config.json", in_place(change))


def in_place(change: Callable[[dict], None]) -> Callable[[dict], dict]:
    def edit(saved: dict) -> dict:
        change(saved)
        return saved

    return edit


def put(path: str, value: Any) -> Callable[[dict], None]:
    """Set a dotted key ("training.foo") of a parsed JSON document."""

    def change(saved: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            saved = saved[key]
        saved[last] = value

    return change


def pop(key: str) -> Callable[[dict], None]:
    return lambda saved: saved.pop(key)


# --------------------------------------------------------------------------------- cases

FORECAST_CASES = [
    # the data file
    error("forecast-data-missing-file", forecast_on("{tmp}/nope.csv"), r"nope\.csv"),
    error("forecast-data-empty-file", forecast_on("{tmp}/p.csv"), "empty", text("p.csv", "")),
    error(
        "forecast-data-header-only",
        forecast_on("{tmp}/p.csv"),
        r"no rows|empty",
        text("p.csv", "date,ticker,open,high,low,close,volume\n"),
    ),
    error(
        "forecast-data-one-row",
        forecast_on("{tmp}/p.csv"),
        r"too few|rows",
        prices("p.csv", lambda f: f.head(1)),
    ),
    error("forecast-data-directory", forecast_on("{tmp}/d"), r"folder|directory", folder("d")),
    error(
        "forecast-data-gzip-truncated",
        forecast_on("{tmp}/p.csv.gz"),
        r"gzip|truncated|corrupt|compressed",
        steps(prices("full.csv.gz"), truncated("p.csv.gz", "full.csv.gz")),
    ),
    error(
        "forecast-data-gzip-corrupt",
        forecast_on("{tmp}/p.csv.gz"),
        r"gzip|corrupt|compressed",
        text("p.csv.gz", b"\x1f\x8b\x08\x00" + b"not really gzip" * 20),
    ),
    error(
        "forecast-data-parquet-truncated",
        forecast_on("{tmp}/p.parquet"),
        r"parquet|Parquet",
        steps(prices("full.parquet"), truncated("p.parquet", "full.parquet")),
    ),
    error(
        "forecast-data-parquet-negative-price",
        forecast_on("{tmp}/p.parquet"),
        r"positive",
        prices("p.parquet", at_rows("close", -1.0, slice(7, 8))),
    ),
    error(
        "forecast-data-excel-renamed-csv",
        forecast_on("{tmp}/p.csv"),
        r"Excel|xlsx|zip",
        text("p.csv", EXCEL),
    ),
    ok(
        "forecast-data-semicolon-delimited",
        forecast_on("{tmp}/p.csv"),
        as_text("p.csv", semicolons),
    ),
    ok(
        "forecast-data-decimal-commas", forecast_on("{tmp}/p.csv"), as_text("p.csv", decimal_commas)
    ),
    error(
        "forecast-data-quoted-decimal-commas",
        forecast_on("{tmp}/p.csv"),
        r"decimal comma",
        as_text("p.csv", quoted_decimal_commas),
    ),
    ok("forecast-data-utf8-bom", forecast_on("{tmp}/p.csv"), as_text("p.csv", with_bom)),
    error(
        "forecast-data-utf16",
        forecast_on("{tmp}/p.csv"),
        r"UTF-16|encoding|UTF-8",
        as_text("p.csv", utf16),
    ),
    warn(
        "forecast-data-one-ticker-too-short",
        forecast_on("{tmp}/p.csv"),
        r"T0",
        prices("p.csv", lambda f: f.filter((pl.col("ticker") != "T0") | (pl.col("date") >= LATE))),
    ),
    warn(
        "forecast-data-ticker-with-a-long-gap",
        forecast_on("{tmp}/p.csv"),
        r"T0",
        prices("p.csv", at_rows("close", math.nan, slice(100, 130))),
    ),
    error(
        "forecast-layout-wide-on-a-long-file",
        [*FORECAST_OUT, "--layout", "wide"],
        r"wide|long",
    ),
    error(
        "forecast-data-all-nan-close",
        forecast_on("{tmp}/p.csv"),
        r"close",
        prices("p.csv", at_rows("close", math.nan, slice(None))),
    ),
    error(
        "forecast-data-non-numeric-close",
        forecast_on("{tmp}/p.csv"),
        r"close.*numeric|numeric.*close",
        prices("p.csv", at_rows("close", "n/a", slice(5, 8))),
    ),
    error(
        "forecast-data-negative-price",
        forecast_on("{tmp}/p.csv"),
        r"positive",
        prices("p.csv", at_rows("close", -3.0, slice(50, 51))),
    ),
    error(
        "forecast-data-zero-price",
        forecast_on("{tmp}/p.csv"),
        r"positive",
        prices("p.csv", at_rows("close", 0.0, slice(50, 51))),
    ),
    error(
        "forecast-data-inf-close",
        forecast_on("{tmp}/p.csv"),
        r"inf|finite",
        prices("p.csv", at_rows("close", math.inf, slice(50, 51))),
    ),
    error(
        "forecast-data-1e300-close",
        forecast_on("{tmp}/p.csv"),
        r"close",
        prices("p.csv", at_rows("close", 1e300, slice(50, 51))),
    ),
    error(
        "forecast-data-inf-volume",
        forecast_on("{tmp}/p.csv"),
        r"volume",
        prices("p.csv", at_rows("volume", math.inf, slice(50, 51))),
    ),
    error(
        "forecast-data-1e300-volume",
        forecast_on("{tmp}/p.csv"),
        r"volume",
        prices("p.csv", at_rows("volume", 1e300, slice(50, 51))),
    ),
    error(
        "forecast-data-negative-volume",
        forecast_on("{tmp}/p.csv"),
        r"volume",
        prices("p.csv", at_rows("volume", -5.0, slice(50, 51))),
    ),
    error(
        "forecast-data-unparsable-dates",
        forecast_on("{tmp}/p.csv"),
        r"date",
        prices("p.csv", at_rows("date", "31/02/2020x", slice(10, 12))),
    ),
    error(
        "forecast-data-duplicate-dates",
        forecast_on("{tmp}/p.csv"),
        r"duplicate",
        prices("p.csv", lambda f: pl.concat([f, f[10:11]]).sort("ticker", "date")),
    ),
    error(
        "forecast-data-unsorted-dates",
        forecast_on("{tmp}/p.csv"),
        r"sort|order",
        prices("p.csv", lambda f: f.reverse()),
    ),
    error(
        "forecast-data-no-close-column",
        forecast_on("{tmp}/p.csv"),
        r"close",
        prices("p.csv", drop("close")),
    ),
    error(
        "forecast-data-no-date-column",
        forecast_on("{tmp}/p.csv"),
        r"date",
        prices("p.csv", drop("date")),
    ),
    error(
        "forecast-data-lacks-a-feature-column",
        forecast_on("{tmp}/p.csv", "--layout", "long", "--features", "log_return,volume_z_20"),
        r"volume",
        prices("p.csv", drop("volume")),
    ),
    warn(
        "forecast-data-zero-variance-feature",
        forecast_on("{tmp}/p.csv", "--features", "log_return,volume_z_20"),
        r"volume",
        prices("p.csv", set_column("volume", lambda f: np.full(f.height, 1e6))),
    ),
    error(
        "forecast-data-path-with-brackets-missing",
        forecast_on("{tmp}/[draft]/nope.csv"),
        r"\[draft\]/nope\.csv",
        folder("[draft]"),
    ),
    error(
        "forecast-data-path-with-brackets-empty",
        forecast_on("{tmp}/[draft]/p.csv"),
        r"\[draft\]/p\.csv",
        text("[draft]/p.csv", ""),
    ),
    error("forecast-data-unknown-sample", forecast_on("nosuchsample"), r"nosuchsample"),
    # columns, layout, tickers
    error("forecast-column-wrong-name", [*FORECAST_OUT, "--column", "close=Nope"], r"Nope"),
    error("forecast-column-no-equals", [*FORECAST_OUT, "--column", "close"], r"key=value"),
    error("forecast-column-unknown-role", [*FORECAST_OUT, "--column", "cloze=close"], r"cloze"),
    error("forecast-layout-unknown", [*FORECAST_OUT, "--layout", "diagonal"], r"layout"),
    error("forecast-tickers-unknown", [*FORECAST_OUT, "--tickers", "NOPE"], r"NOPE"),
    error("forecast-max-tickers-negative", [*FORECAST_OUT, "--max-tickers", "-2"], r"max_tickers"),
    error(
        "forecast-ffill-limit-negative",
        [*FORECAST_OUT, "--ffill-limit", "-1"],
        r"ffill",
    ),
    # features, window, target
    error("forecast-features-unknown", [*FORECAST_OUT, "--features", "astrology"], r"astrology"),
    error("forecast-features-empty", [*FORECAST_OUT, "--features", ","], r"feature"),
    error("forecast-lookback-zero", [*FORECAST_OUT, "--lookback", "0"], r"lookback"),
    error("forecast-lookback-negative", [*FORECAST_OUT, "--lookback", "-5"], r"lookback"),
    error("forecast-lookback-huge", [*FORECAST_OUT, "--lookback", "100000"], r"lookback"),
    error("forecast-horizon-zero", [*FORECAST_OUT, "--horizon", "0"], r"horizon"),
    error(
        "forecast-horizon-huge",
        [*FORECAST_OUT, "--horizon", "5000"],
        r"horizon",
    ),
    error("forecast-target-unknown", [*FORECAST_OUT, "--target", "volume"], r"target"),
    error("forecast-scaler-unknown", [*FORECAST_OUT, "--scaler", "robust"], r"scaler"),
    error("forecast-loss-unknown", [*FORECAST_OUT, "--loss", "hinge"], r"loss"),
    error(
        "forecast-max-abs-log-return-nan",
        [*FORECAST_OUT, "--max-abs-log-return", "nan"],
        r"max_abs_log_return",
    ),
    error(
        "forecast-max-abs-log-return-zero",
        [*FORECAST_OUT, "--max-abs-log-return", "0"],
        r"max_abs_log_return",
    ),
    # the split
    error(
        "forecast-val-fraction-negative", [*FORECAST_OUT, "--val-fraction", "-0.2"], r"val_fraction"
    ),
    error("forecast-val-fraction-one", [*FORECAST_OUT, "--val-fraction", "1"], r"val_fraction"),
    error(
        "forecast-test-fraction-negative",
        [*FORECAST_OUT, "--test-fraction", "-0.1"],
        r"test_fraction",
    ),
    error("forecast-test-fraction-nan", [*FORECAST_OUT, "--test-fraction", "nan"], r"fraction"),
    error(
        "forecast-fractions-sum-to-one",
        [*FORECAST_OUT, "--val-fraction", "0.5", "--test-fraction", "0.5"],
        r"fraction",
    ),
    error("forecast-embargo-negative", [*FORECAST_OUT, "--embargo", "-7"], r"embargo"),
    error("forecast-embargo-huge", [*FORECAST_OUT, "--embargo", "5000"], r"embargo"),
    # no training window's outcome lies past the training period whatever the embargo: a
    # shorter embargo than the horizon is a choice, not a leak
    ok("forecast-embargo-below-horizon", [*FORECAST_OUT, "--horizon", "5", "--embargo", "0"]),
    # the model and its training
    error("forecast-model-unknown", [*FORECAST_OUT, "--model", "xgboost"], r"xgboost"),
    error("forecast-model-empty", [*FORECAST_OUT, "--model", ""], r"model"),
    error("forecast-param-no-equals", [*FORECAST_OUT, *LSTM, "--param", "dropout"], r"key=value"),
    error("forecast-param-unknown", [*FORECAST_OUT, *LSTM, "--param", "colour=red"], r"colour"),
    error(
        "forecast-param-wrong-type",
        [*FORECAST_OUT, *LSTM, "--param", "hidden_size=big"],
        r"hidden_size",
    ),
    error(
        "forecast-param-hidden-size-zero",
        [*FORECAST_OUT, *LSTM, "--param", "hidden_size=0"],
        r"hidden_size",
    ),
    error(
        "forecast-param-dropout-above-one",
        [*FORECAST_OUT, *LSTM, "--param", "dropout=2"],
        r"dropout",
    ),
    error(
        "forecast-param-not-of-this-model",
        [*FORECAST_OUT, "--param", "hidden_size=4"],
        r"hidden_size",
    ),
    error("forecast-epochs-zero", [*FORECAST_OUT, "--epochs", "0"], r"epochs"),
    error("forecast-batch-size-zero", [*FORECAST_OUT, "--batch-size", "0"], r"batch_size"),
    error("forecast-learning-rate-inf", [*FORECAST_OUT, "--learning-rate", "inf"], r"learning"),
    error("forecast-learning-rate-nan", [*FORECAST_OUT, "--learning-rate", "nan"], r"learning"),
    error("forecast-learning-rate-zero", [*FORECAST_OUT, "--learning-rate", "0"], r"learning"),
    error("forecast-weight-decay-negative", [*FORECAST_OUT, "--weight-decay", "-1"], r"weight"),
    error("forecast-grad-clip-negative", [*FORECAST_OUT, "--grad-clip", "-1"], r"grad_clip"),
    error("forecast-patience-negative", [*FORECAST_OUT, "--patience", "-1"], r"patience"),
    error("forecast-optimizer-unknown", [*FORECAST_OUT, "--optimizer", "sgd"], r"optimizer"),
    error("forecast-device-tpu", [*FORECAST_OUT, "--device", "tpu"], r"device"),
    error(
        "forecast-device-cuda-without-a-gpu",
        [*FORECAST_OUT, *LSTM, "--device", "cuda"],
        r"cuda|CUDA|GPU",
        gpu_free=True,
    ),
    error("forecast-epochs-not-a-number", [*FORECAST_OUT, "--epochs", "ten"], r"epochs"),
    error(
        "forecast-nproc-zero",
        [*FORECAST_OUT, "--nproc", "0"],
        r"nproc",
    ),
    error(
        "forecast-nproc-negative",
        [*FORECAST_OUT, "--nproc", "-2"],
        r"nproc",
    ),
    # the run folder
    error(
        "forecast-run-dir-is-a-file",
        [*FORECAST, "--run-dir", "{tmp}/file"],
        r"is a file|not a folder",
        text("file", "x"),
    ),
    error("forecast-resume-without-run-dir", [*RESUME], r"--run-dir"),
    error(
        "forecast-resume-without-checkpoint",
        [*RESUME, "--run-dir", "{tmp}/empty"],
        r"checkpoint",
        folder("empty"),
    ),
    error(
        "forecast-resume-run-without-checkpoint-folder",
        [*RESUME, "--run-dir", "{run}"],
        r"checkpoint",
        remove("run/checkpoint"),
    ),
    error(
        "forecast-resume-half-written-checkpoint",
        [*RESUME, "--run-dir", "{run}"],
        r"checkpoint",
        truncated("run/checkpoint/checkpoint.safetensors", "run/checkpoint/checkpoint.safetensors"),
    ),
    error(
        "forecast-resume-garbage-checkpoint-json",
        [*RESUME, "--run-dir", "{run}"],
        r"checkpoint",
        text("run/checkpoint/checkpoint.json", "{not json"),
    ),
    error(
        "forecast-resume-another-model",
        [*RESUME, "--run-dir", "{run}", "--model", "gru"],
        r"lstm|gru",
    ),
    error(
        "forecast-resume-another-size",
        [*RESUME, "--run-dir", "{run}", "--param", "hidden_size=8"],
        r"hidden_size|size|shape",
    ),
    error(
        "forecast-resume-another-lookback",
        [*RESUME, "--run-dir", "{run}", "--lookback", "12"],
        r"lookback",
    ),
    error(
        "forecast-resume-another-data",
        [*RESUME, "--run-dir", "{run}", "--data", "{tmp}/other.csv"],
        r"data|other\.csv",
        prices("other.csv", lambda f: f.filter(pl.col("ticker") < "T3")),
    ),
    error(
        "forecast-resume-read-only-run",
        [*RESUME, "--run-dir", "{run}"],
        r"permission|read-only",
        read_only("run"),
        permissions=True,
    ),
    warn(
        "forecast-run-dir-of-another-model",
        [*FORECAST, "--run-dir", "{run}"],
        r"lstm|already|exist",
    ),
    warn(
        "forecast-run-dir-of-a-credit-run",
        [*FORECAST, "--run-dir", "{credit}"],
        r"credit|already|exist",
    ),
    # the config file
    error("forecast-config-missing", [*FORECAST_OUT, "--config", "{tmp}/no.toml"], r"no\.toml"),
    error(
        "forecast-config-is-a-folder",
        [*FORECAST_OUT, "--config", "{tmp}/d"],
        r"d\b|folder|directory",
        folder("d"),
    ),
    error(
        "forecast-config-syntax-error",
        [*FORECAST_OUT, "--config", "{tmp}/run.toml"],
        r"run\.toml.*TOML",
        toml("[forecast\nmodel = 'lstm'\n"),
    ),
    error(
        "forecast-config-unknown-section",
        [*FORECAST_OUT, "--config", "{tmp}/run.toml"],
        r"modle",
        toml("[modle]\nname = 'lstm'\n"),
    ),
    error(
        "forecast-config-unknown-key",
        [*FORECAST_OUT, "--config", "{tmp}/run.toml"],
        r"lookbak",
        toml("[forecast]\nlookbak = 20\n"),
    ),
    error(
        "forecast-config-wrong-type",
        [*FORECAST_OUT, "--config", "{tmp}/run.toml"],
        r"horizon.*type",
        toml("[forecast]\nhorizon = 'one'\n"),
    ),
    error(
        "forecast-config-bool-for-int",
        [*FORECAST_OUT, "--config", "{tmp}/run.toml"],
        r"epochs.*type",
        toml("[training]\nepochs = true\n"),
    ),
    error(
        "forecast-config-section-is-a-value",
        [*FORECAST_OUT, "--config", "{tmp}/run.toml"],
        r"training",
        toml("training = 3\n"),
    ),
    error(
        "forecast-config-not-utf8",
        [*FORECAST_OUT, "--config", "{tmp}/run.toml"],
        r"run\.toml",
        text("run.toml", b"[forecast]\nmodel = '\xff\xfe'\n"),
    ),
    error(
        "forecast-config-runs-dir-not-text",
        [*FORECAST, "--config", "{tmp}/run.toml"],
        r"runs_dir",
        toml("runs_dir = 5\n"),
    ),
]

COMPARE_CASES = [
    error("compare-models-only-a-comma", [*COMPARE_OUT, "--models", ","], r"models"),
    error("compare-models-empty", [*COMPARE_OUT, "--models", ""], r"models"),
    error("compare-models-unknown", [*COMPARE_OUT, "--models", "linear,prophet"], r"prophet"),
    error("compare-models-duplicate", [*COMPARE_OUT, "--models", "linear,linear"], r"linear"),
    error("compare-data-missing-file", [*COMPARE_OUT, "--data", "{tmp}/no.csv"], r"no\.csv"),
    ok(
        "compare-data-semicolon-delimited",
        [*COMPARE_OUT, "--data", "{tmp}/p.csv"],
        as_text("p.csv", semicolons),
    ),
    error("compare-lookback-zero", [*COMPARE_OUT, "--lookback", "0"], r"lookback"),
    error("compare-horizon-zero", [*COMPARE_OUT, "--horizon", "0"], r"horizon"),
    error("compare-epochs-zero", [*COMPARE_OUT, "--epochs", "0"], r"epochs"),
    error("compare-device-tpu", [*COMPARE_OUT, "--device", "tpu"], r"device"),
    error("compare-features-unknown", [*COMPARE_OUT, "--features", "astrology"], r"astrology"),
    error("compare-max-tickers-negative", [*COMPARE_OUT, "--max-tickers", "-2"], r"max_tickers"),
    error(
        "compare-fractions-sum-above-one",
        [*COMPARE_OUT, "--val-fraction", "0.6", "--test-fraction", "0.6"],
        r"fraction",
    ),
    error("compare-embargo-negative", [*COMPARE_OUT, "--embargo", "-7"], r"embargo"),
    error(
        "compare-run-dir-is-a-file",
        [*COMPARE, "--run-dir", "{tmp}/file"],
        r"is a file|not a folder",
        text("file", "x"),
    ),
    error(
        "compare-config-unknown-key",
        [*COMPARE_OUT, "--config", "{tmp}/run.toml"],
        r"lookbak",
        toml("[forecast]\nlookbak = 20\n"),
    ),
    error(
        "compare-run-dir-of-a-forecast-run",
        [*COMPARE, "--run-dir", "{run}"],
        r"already holds files of another run",
    ),
    error(
        "backtest-run-dir-of-a-forecast-run",
        [*BACKTEST, "--run-dir", "{run}"],
        r"already holds files of another run",
    ),
]

BACKTEST_CASES = [
    error("backtest-strategy-unknown", [*BACKTEST_OUT, "--strategy", "yolo"], r"yolo|strategy"),
    error("backtest-weighting-unknown", [*BACKTEST_OUT, "--weighting", "cap"], r"cap|weighting"),
    error("backtest-top-k-zero", [*BACKTEST_OUT, "--top-k", "0"], r"top.k"),
    error("backtest-top-k-negative", [*BACKTEST_OUT, "--top-k", "-2"], r"top.k"),
    error("backtest-top-k-above-tickers", [*BACKTEST_OUT, "--top-k", "50"], r"top.k"),
    error("backtest-top-fraction-zero", [*BACKTEST_OUT, "--top-fraction", "0"], r"top.fraction"),
    error(
        "backtest-top-fraction-above-one", [*BACKTEST_OUT, "--top-fraction", "1.5"], r"top.fraction"
    ),
    error("backtest-top-fraction-nan", [*BACKTEST_OUT, "--top-fraction", "nan"], r"top.fraction"),
    error(
        "backtest-top-k-and-top-fraction",
        [*BACKTEST_OUT, "--top-k", "2", "--top-fraction", "0.3"],
        r"top.k|top.fraction",
    ),
    error("backtest-rebalance-zero", [*BACKTEST_OUT, "--rebalance-every", "0"], r"rebalance"),
    error("backtest-rebalance-negative", [*BACKTEST_OUT, "--rebalance-every", "-3"], r"rebalance"),
    error("backtest-cost-negative", [*BACKTEST_OUT, "--cost-bps", "-10"], r"cost"),
    error("backtest-cost-nan", [*BACKTEST_OUT, "--cost-bps", "nan"], r"cost"),
    error(
        "backtest-cost-inf",
        [*BACKTEST_OUT, "--cost-bps", "inf"],
        r"cost",
    ),
    error("backtest-fixed-cost-negative", [*BACKTEST_OUT, "--fixed-cost", "-0.1"], r"fixed"),
    error("backtest-fixed-cost-whole-nav", [*BACKTEST_OUT, "--fixed-cost", "1"], r"fixed"),
    error("backtest-threshold-negative", [*BACKTEST_OUT, "--threshold", "-1"], r"threshold"),
    error("backtest-threshold-nan", [*BACKTEST_OUT, "--threshold", "nan"], r"threshold"),
    error("backtest-refit-every-zero", [*BACKTEST_OUT, "--refit-every", "0"], r"refit_every"),
    error("backtest-window-unknown", [*BACKTEST_OUT, "--window", "sliding"], r"window"),
    error(
        "backtest-train-days-zero",
        [*BACKTEST_OUT, "--window", "rolling", "--train-days", "0"],
        r"train_days",
    ),
    error("backtest-test-fraction-one", [*BACKTEST_OUT, "--test-fraction", "1"], r"test_fraction"),
    error("backtest-embargo-negative", [*BACKTEST_OUT, "--embargo", "-7"], r"embargo"),
    error(
        "backtest-warm-start-epochs-negative",
        [*BACKTEST_OUT, "--warm-start-epochs", "-1"],
        r"warm_start_epochs",
    ),
    error("backtest-val-days-too-long", [*BACKTEST_OUT, "--val-days", "5000"], r"val_days|rows"),
    error("backtest-models-unknown", [*BACKTEST_OUT, "--models", "linear,oracle"], r"oracle"),
    error("backtest-models-only-a-comma", [*BACKTEST_OUT, "--models", ","], r"models?"),
    error("backtest-data-missing-file", [*BACKTEST_OUT, "--data", "{tmp}/no.csv"], r"no\.csv"),
    error("backtest-lookback-zero", [*BACKTEST_OUT, "--lookback", "0"], r"lookback"),
    error(
        "backtest-config-unknown-section",
        [*BACKTEST_OUT, "--config", "{tmp}/run.toml"],
        r"walkforward",
        toml("[walkforward]\nrefit_every = 5\n"),
    ),
    error(
        "backtest-run-dir-is-a-file",
        [*BACKTEST, "--run-dir", "{tmp}/file"],
        r"is a file|not a folder",
        text("file", "x"),
    ),
]

PREDICT_CASES = [
    # the run folder
    error("predict-run-missing", [*PREDICT, "--run", "{tmp}/norun"], r"config\.json"),
    error("predict-run-empty-folder", [*PREDICT, "--run", "{tmp}/e"], r"config\.json", folder("e")),
    error(
        "predict-run-is-a-file",
        [*PREDICT, "--run", "{tmp}/file"],
        r"config\.json|not a (run )?folder",
        text("file", "x"),
    ),
    error("predict-run-is-a-credit-run", [*PREDICT, "--run", "{credit}"], r"credit"),
    error("predict-run-is-a-compare-folder", [*PREDICT, "--run", "{compare}"], r"compare"),
    error(
        "predict-weights-missing",
        [*PREDICT],
        r"model\.safetensors",
        remove("run/model.safetensors"),
    ),
    error(
        "predict-weights-empty",
        [*PREDICT],
        r"model\.safetensors",
        text("run/model.safetensors", b""),
    ),
    error(
        "predict-weights-truncated",
        [*PREDICT],
        r"model\.safetensors",
        truncated("run/model.safetensors", "run/model.safetensors"),
    ),
    error(
        "predict-weights-nan",
        [*PREDICT],
        r"NaN|nan|finite|model\.safetensors",
        edit_tensors("run/model.safetensors", nan_weights),
    ),
    error(
        "predict-weights-nan-resigned",
        [*PREDICT],
        r"NaN|nan|finite",
        resigned(edit_tensors("run/model.safetensors", nan_weights), "run/model.safetensors"),
    ),
    error(
        "predict-weights-missing-tensor",
        [*PREDICT],
        r"missing|tensor|model\.safetensors",
        edit_tensors("run/model.safetensors", drop_tensor),
    ),
    error(
        "predict-weights-missing-tensor-resigned",
        [*PREDICT],
        r"missing|tensor",
        resigned(edit_tensors("run/model.safetensors", drop_tensor), "run/model.safetensors"),
    ),
    error(
        "predict-weights-wrong-shape",
        [*PREDICT],
        r"shape|size|model\.safetensors",
        edit_tensors("run/model.safetensors", widen_tensor),
    ),
    error(
        "predict-weights-wrong-shape-resigned",
        [*PREDICT],
        r"shape|size",
        resigned(edit_tensors("run/model.safetensors", widen_tensor), "run/model.safetensors"),
    ),
    error(
        "predict-config-garbage",
        [*PREDICT],
        r"config\.json",
        text("run/config.json", "{this is not json"),
    ),
    error(
        "predict-config-is-a-list",
        [*PREDICT],
        r"config\.json",
        text("run/config.json", "[1]"),
    ),
    error(
        "predict-config-unknown-training-key",
        [*PREDICT],
        r"colour",
        config(put("training.colour", "red")),
    ),
    error(
        "predict-config-lookback-edited",
        [*PREDICT],
        r"lookback",
        config(put("lookback", 25)),
    ),
    error(
        "predict-config-features-edited",
        [*PREDICT],
        r"feature",
        config(put("features", ["log_return"])),
    ),
    error(
        "predict-config-model-config-missing",
        [*PREDICT],
        r"model_config",
        config(pop("model_config")),
    ),
    error(
        "predict-config-unknown-model",
        [*PREDICT],
        r"oracle",
        config(put("model", "oracle")),
    ),
    error(
        "predict-config-future-format",
        [*PREDICT],
        r"format",
        config(put("format_version", 99)),
    ),
    error(
        "predict-preprocess-missing",
        [*PREDICT],
        r"preprocess\.json",
        remove("run/preprocess.json"),
    ),
    error(
        "predict-preprocess-garbage",
        [*PREDICT],
        r"preprocess\.json",
        text("run/preprocess.json", "]["),
    ),
    error(
        "predict-target-scaler-std-zero",
        [*PREDICT],
        r"scale|std|preprocess\.json",
        preprocess(put("target_scaler.scale", [[0.0]])),
    ),
    error(
        "predict-target-scaler-std-zero-resigned",
        [*PREDICT],
        r"scale|std",
        resigned(preprocess(put("target_scaler.scale", [[0.0]])), "run/preprocess.json"),
    ),
    error(
        "predict-feature-scaler-shape-mismatch",
        [*PREDICT],
        r"scale|shape|features|preprocess\.json",
        preprocess(put("feature_scaler.scale", [[1.0, 1.0]])),
    ),
    error(
        "predict-feature-scaler-shape-mismatch-resigned",
        [*PREDICT],
        r"scale|shape|features",
        resigned(preprocess(put("feature_scaler.scale", [[1.0, 1.0]])), "run/preprocess.json"),
    ),
    error(
        "predict-feature-scaler-nan",
        [*PREDICT],
        r"scale|NaN|finite|preprocess\.json",
        preprocess(put("feature_scaler.center", [[math.nan] * 4])),
    ),
    error(
        "predict-feature-scaler-nan-resigned",
        [*PREDICT],
        r"scale|NaN|finite",
        resigned(preprocess(put("feature_scaler.center", [[math.nan] * 4])), "run/preprocess.json"),
    ),
    error(
        "predict-preprocess-features-differ-from-config",
        [*PREDICT],
        r"features|preprocess\.json",
        preprocess(put("features", ["log_return", "rsi_14", "volatility_20", "volume_z_20"])),
    ),
    error(
        "predict-preprocess-features-differ-from-config-resigned",
        [*PREDICT],
        r"features",
        resigned(
            preprocess(put("features", ["log_return", "rsi_14", "volatility_20", "volume_z_20"])),
            "run/preprocess.json",
        ),
    ),
    # the data
    error("predict-data-missing-file", predict_on("{tmp}/no.csv"), r"no\.csv"),
    error("predict-data-empty-file", predict_on("{tmp}/p.csv"), r"empty", text("p.csv", "")),
    error(
        "predict-data-lacks-a-feature-column",
        predict_on("{tmp}/p.csv", "--layout", "long"),
        r"volume",
        prices("p.csv", drop("volume")),
    ),
    error(
        "predict-data-too-short",
        predict_on("{tmp}/p.csv"),
        r"rows|lookback|short",
        prices("p.csv", lambda f: f.group_by("ticker", maintain_order=True).head(8)),
    ),
    error(
        "predict-data-inf-close",
        predict_on("{tmp}/p.csv"),
        r"inf|finite|close",
        prices("p.csv", at_rows("close", math.inf, slice(290, 291))),
    ),
    error(
        "predict-data-excel-renamed-csv",
        predict_on("{tmp}/p.csv"),
        r"Excel|xlsx|zip",
        text("p.csv", EXCEL),
    ),
    error(
        "predict-data-gzip-truncated",
        predict_on("{tmp}/p.csv.gz"),
        r"gzip|truncated|corrupt|compressed",
        steps(prices("full.csv.gz"), truncated("p.csv.gz", "full.csv.gz")),
    ),
    error(
        "predict-data-duplicate-dates",
        predict_on("{tmp}/p.csv"),
        r"duplicate",
        prices("p.csv", lambda f: pl.concat([f, f[200:201]]).sort("ticker", "date")),
    ),
    error("predict-data-unknown-sample", predict_on("nosuchsample"), r"nosuchsample"),
    error("predict-no-run-option", ["predict", "--data", "{csv}"], r"--run"),
    error(
        "predict-data-parquet-column-wrong-name",
        predict_on("{parquet}", "--column", "close=Nope"),
        r"Nope",
    ),
    error("predict-column-wrong-name", [*PREDICT, "--column", "close=Nope"], r"Nope"),
    error("predict-column-no-equals", [*PREDICT, "--column", "close"], r"key=value"),
    error("predict-layout-unknown", [*PREDICT, "--layout", "diagonal"], r"layout"),
    # the output
    error(
        "predict-output-in-a-missing-folder",
        [*PREDICT, "--output", "{tmp}/no/such/f.csv"],
        r"no/such|folder|exist",
    ),
    error("predict-output-is-a-folder", [*PREDICT, "--output", "{tmp}"], r"folder|directory|\.csv"),
    error("predict-output-xlsx", [*PREDICT, "--output", "{tmp}/f.xlsx"], r"xlsx|\.csv|parquet"),
    error(
        "predict-default-output-in-read-only-run",
        ["predict", "--run", "{run}", "--data", "{csv}"],
        r"permission|read-only",
        read_only("run"),
        permissions=True,
    ),
]

REPORT_CASES = [
    ok("report-credit-run", ["report", "{credit}"]),
    ok("report-compare-folder", ["report", "{compare}"]),
    error("report-no-argument", ["report"], r"RUN_DIR|argument"),
    error("report-missing-folder", ["report", "{tmp}/norun"], r"norun|config\.json"),
    error("report-empty-folder", ["report", "{tmp}/e"], r"config\.json|run folder", folder("e")),
    error(
        "report-a-file",
        ["report", "{tmp}/file"],
        r"config\.json|not a (run )?folder",
        text("file", "x"),
    ),
    error(
        "report-config-garbage", ["report", "{run}"], r"config\.json", text("run/config.json", "{")
    ),
    error(
        "report-config-is-a-list",
        ["report", "{run}"],
        r"config\.json",
        text("run/config.json", "[]"),
    ),
    error(
        "report-unknown-task",
        ["report", "{run}"],
        r"astrology|task",
        config(put("task", "astrology")),
    ),
    error(
        "report-metrics-missing", ["report", "{run}"], r"metrics\.json", remove("run/metrics.json")
    ),
    error(
        "report-metrics-garbage",
        ["report", "{run}"],
        r"metrics\.json",
        text("run/metrics.json", "nope"),
    ),
    error(
        "report-predictions-missing",
        ["report", "{run}"],
        r"predictions\.parquet",
        remove("run/predictions.parquet"),
    ),
    error(
        "report-predictions-truncated",
        ["report", "{run}"],
        r"predictions\.parquet",
        truncated("run/predictions.parquet", "run/predictions.parquet"),
    ),
    error(
        "report-history-garbage",
        ["report", "{run}"],
        r"history\.csv",
        text("run/history.csv", b"\x00\x01\x02garbage"),
    ),
    error(
        "report-compare-leaderboard-garbage",
        ["report", "{compare}"],
        r"leaderboard",
        text("compare/leaderboard.json", "{"),
    ),
    error(
        "report-credit-band-edges-empty",
        ["report", "{credit}"],
        r"band_edges|band|preprocess\.json",
        preprocess(put("band_edges", []), "credit"),
    ),
    error(
        "report-credit-band-edges-empty-resigned",
        ["report", "{credit}"],
        r"band_edges|band",
        resigned(preprocess(put("band_edges", []), "credit"), "credit/preprocess.json"),
    ),
    error(
        "report-credit-metrics-missing",
        ["report", "{credit}"],
        r"metrics\.json",
        remove("credit/metrics.json"),
    ),
    error(
        "report-read-only-run",
        ["report", "{run}"],
        r"permission|read-only",
        read_only("run"),
        permissions=True,
    ),
]

CREDIT_TRAIN_CASES = [
    # the table
    error("credit-train-no-data", [*TRAIN_OUT], r"no loan table"),
    error("credit-train-data-missing-file", [*TRAIN_OUT, "--data", "{tmp}/no.csv"], r"no\.csv"),
    error("credit-train-data-empty-file", TRAIN_ON, r"empty", text("loans.csv", "")),
    error(
        "credit-train-data-header-only",
        TRAIN_ON,
        r"no rows|empty",
        text("loans.csv", "income,debt,grade,sex,default\n"),
    ),
    ok("credit-train-data-utf8-bom", TRAIN_ON, as_text("loans.csv", with_bom, "loans")),
    warn(
        "credit-train-identifier-column-refused",
        TRAIN_ON,
        r"customer_email",
        loans("loans.csv", set_column("customer_email", emails)),
        absent=("c3@bank.example.com", "c4@bank.example.com"),
    ),
    error("credit-train-data-one-row", TRAIN_ON, r"rows", loans("loans.csv", lambda f: f.head(1))),
    error(
        "credit-train-data-directory",
        [*TRAIN_OUT, "--data", "{tmp}"],
        r"folder|directory",
    ),
    # the separator and decimal commas are detected, as for prices
    ok(
        "credit-train-data-semicolon-delimited", TRAIN_ON, as_text("loans.csv", semicolons, "loans")
    ),
    ok("credit-train-data-decimal-commas", TRAIN_ON, as_text("loans.csv", decimal_commas, "loans")),
    error(
        "credit-train-data-excel-renamed-csv",
        TRAIN_ON,
        r"Excel|xlsx|zip",
        text("loans.csv", EXCEL),
    ),
    error(
        "credit-train-data-gzip-truncated",
        [*TRAIN_OUT, "--data", "{tmp}/loans.csv.gz"],
        r"gzip|truncated|corrupt|compressed",
        steps(loans("full.csv.gz"), truncated("loans.csv.gz", "full.csv.gz")),
    ),
    # the target
    error("credit-train-target-missing", [*CREDIT, "--target", "defaulted"], r"target.*defaulted"),
    error(
        "credit-train-target-one-class",
        TRAIN_ON,
        r"class|one value|both",
        loans("loans.csv", target_values(lambda n: np.zeros(n, dtype=int))),
    ),
    error(
        "credit-train-target-three-classes",
        TRAIN_ON,
        r"values|class|binary",
        loans("loans.csv", target_values(lambda n: np.arange(n) % 3)),
    ),
    error(
        "credit-train-target-text-without-default-value",
        TRAIN_ON,
        r"--default-value",
        loans("loans.csv", target_values(lambda n: np.where(np.arange(n) % 4, "good", "bad"))),
    ),
    error(
        "credit-train-default-value-absent",
        [*TRAIN_ON, "--default-value", "ugly"],
        r"ugly",
        loans("loans.csv", target_values(lambda n: np.where(np.arange(n) % 4, "good", "bad"))),
    ),
    error(
        "credit-train-target-with-missing-values",
        TRAIN_ON,
        r"default|missing|null",
        loans("loans.csv", at_rows("default", math.nan, slice(0, 30))),
    ),
    error(
        "credit-train-target-probabilities",
        TRAIN_ON,
        r"binary|values",
        loans("loans.csv", target_values(lambda n: np.linspace(0.01, 0.99, n))),
    ),
    error(
        "credit-train-target-is-sensitive",
        [*CREDIT, "--sensitive", "default"],
        r"default",
    ),
    error(
        "credit-train-target-dropped",
        [*CREDIT, "--drop-column", "default"],
        r"default",
    ),
    # the features
    error(
        "credit-train-all-features-constant",
        TRAIN_ON,
        r"constant|variance|no feature",
        loans(
            "loans.csv",
            lambda f: f.with_columns(
                pl.lit(1.0).alias("income"), pl.lit(2.0).alias("debt")
            ).with_columns(pl.lit("A").alias("grade"), pl.lit("f").alias("sex")),
        ),
    ),
    warn(
        "credit-train-zero-variance-feature",
        TRAIN_ON,
        r"debt",
        loans("loans.csv", lambda f: f.with_columns(pl.lit(2.0).alias("debt"))),
    ),
    error(
        "credit-train-inf-feature",
        TRAIN_ON,
        r"income",
        loans("loans.csv", at_rows("income", math.inf, slice(3, 4))),
    ),
    error(
        "credit-train-1e300-feature",
        TRAIN_ON,
        r"income",
        loans("loans.csv", at_rows("income", 1e300, slice(3, 4))),
    ),
    error(
        "credit-train-numbers-with-a-text-value",
        TRAIN_ON,
        r"income",
        loans("loans.csv", at_rows("income", SECRET, slice(3, 4))),
        absent=(SECRET,),
    ),
    error(
        "credit-train-no-feature-left",
        [*CREDIT, "--drop-column", "income,debt,grade,sex"],
        r"feature",
    ),
    error("credit-train-numeric-unknown-column", [*CREDIT, "--numeric", "salary"], r"salary"),
    error(
        "credit-train-numeric-on-text-column",
        [*CREDIT, "--numeric", "grade"],
        r"grade",
        absent=("'A'", "'B'", "'C'"),
    ),
    error("credit-train-categorical-unknown-column", [*CREDIT, "--categorical", "job"], r"job"),
    error("credit-train-sensitive-unknown-column", [*CREDIT, "--sensitive", "race"], r"race"),
    error("credit-train-drop-unknown-column", [*CREDIT, "--drop-column", "zzz"], r"zzz"),
    error("credit-train-date-col-unknown", [*CREDIT, "--date-col", "when"], r"when"),
    error(
        "credit-train-date-col-unparsable",
        [*TRAIN_ON, "--date-col", "when"],
        r"when",
        loans("loans.csv", lambda f: f.with_columns(pl.lit("not a date").alias("when"))),
    ),
    # options
    error("credit-train-model-unknown", [*CREDIT, "--model", "svm"], r"svm"),
    error("credit-train-baseline-unknown", [*CREDIT, "--baselines", "catboost"], r"catboost"),
    error("credit-train-cutoff-above-one", [*CREDIT, "--cutoff", "2"], r"cutoff"),
    error("credit-train-cutoff-negative", [*CREDIT, "--cutoff", "-0.1"], r"cutoff"),
    error("credit-train-cutoff-nan", [*CREDIT, "--cutoff", "nan"], r"cutoff"),
    error("credit-train-folds-one", [*CREDIT, "--folds", "1"], r"folds"),
    error("credit-train-folds-negative", [*CREDIT, "--folds", "-3"], r"folds"),
    error("credit-train-folds-above-rows", [*CREDIT, "--folds", "5000"], r"folds"),
    error("credit-train-test-fraction-zero", [*CREDIT, "--test-fraction", "0"], r"test_fraction"),
    error("credit-train-test-fraction-one", [*CREDIT, "--test-fraction", "1"], r"test_fraction"),
    error("credit-train-val-fraction-one", [*CREDIT, "--val-fraction", "1"], r"val_fraction"),
    error(
        "credit-train-fractions-sum-above-one",
        [*CREDIT, "--test-fraction", "0.6", "--val-fraction", "0.6"],
        r"fraction",
    ),
    error(
        "credit-train-unknown-categories-policy",
        [*CREDIT, "--unknown-categories", "ignore"],
        r"unknown_categories",
    ),
    error(
        "credit-train-min-category-count-zero",
        [*CREDIT, "--min-category-count", "0"],
        r"min_category_count",
    ),
    error(
        "credit-train-integrated-gradient-steps-zero",
        [*CREDIT, "--integrated-gradient-steps", "0"],
        r"integrated_gradient_steps",
    ),
    error(
        "credit-train-dp-with-lightgbm", [*CREDIT, "--model", "lightgbm", "--dp"], r"dp|DP|lightgbm"
    ),
    error("credit-train-param-unknown", [*CREDIT, "--param", "colour=red"], r"colour"),
    error("credit-train-param-no-equals", [*CREDIT, "--param", "l2"], r"key=value"),
    error("credit-train-epochs-zero", [*CREDIT, "--epochs", "0"], r"epochs"),
    error("credit-train-learning-rate-inf", [*CREDIT, "--learning-rate", "inf"], r"learning"),
    error("credit-train-device-tpu", [*CREDIT, "--device", "tpu"], r"device"),
    error(
        "credit-train-dp-epsilon-zero",
        [*CREDIT, "--model", "mlp", "--dp", "--dp-epsilon", "0"],
        r"epsilon",
    ),
    error(
        "credit-train-dp-delta-one",
        [*CREDIT, "--model", "mlp", "--dp", "--dp-delta", "1"],
        r"delta",
    ),
    error(
        "credit-train-run-dir-is-a-file",
        [*TRAIN, "--data", "{loans}", "--no-progress", "--run-dir", "{tmp}/file"],
        r"is a file|not a folder",
        text("file", "x"),
    ),
    error(
        "credit-train-config-unknown-section",
        [*CREDIT, "--config", "{tmp}/c.toml"],
        r"scorecard",
        text("c.toml", "[scorecard]\nbins = 5\n"),
    ),
    error(
        "credit-train-config-wrong-type",
        [*CREDIT, "--config", "{tmp}/c.toml"],
        r"folds.*type",
        text("c.toml", "[data]\nfolds = 'five'\n"),
    ),
    error(
        "credit-train-config-syntax-error",
        [*CREDIT, "--config", "{tmp}/c.toml"],
        r"c\.toml",
        text("c.toml", "[data\n"),
    ),
]

CREDIT_SCORE_CASES = [
    error("credit-score-run-missing", [*SCORE, "--run", "{tmp}/norun"], r"config\.json"),
    error("credit-score-run-is-a-forecast-run", [*SCORE, "--run", "{run}"], r"forecast"),
    error("credit-score-data-missing-file", [*SCORE, "--data", "{tmp}/no.csv"], r"no\.csv"),
    error("credit-score-data-empty-file", score_on(), r"empty", text("new.csv", "")),
    error(
        "credit-score-data-header-only",
        score_on(),
        r"no rows|empty",
        text("new.csv", "income,debt,grade,sex\n"),
    ),
    error(
        "credit-score-data-excel-renamed-csv",
        score_on(),
        r"Excel|xlsx|zip",
        text("new.csv", EXCEL),
    ),
    error(
        "credit-score-missing-column",
        score_on(),
        r"income",
        new_applicants(drop("income")),
    ),
    error(
        "credit-score-unknown-category",
        score_on(),
        r"grade",
        new_applicants(at_rows("grade", "Z", slice(0, 2))),
        absent=("'Z'",),
    ),
    error(
        "credit-score-unknown-categories-policy",
        score_on("--unknown-categories", "ignore"),
        r"unknown.categories|ignore",
        new_applicants(),
    ),
    error(
        "credit-score-inf-feature",
        score_on(),
        r"income",
        new_applicants(at_rows("income", math.inf, slice(0, 1))),
    ),
    error(
        "credit-score-text-in-numeric-column",
        score_on(),
        r"income",
        new_applicants(at_rows("income", SECRET, slice(0, 1))),
        absent=(SECRET,),
    ),
    error("credit-score-top-k-negative", [*SCORE, "--top-k", "-2"], r"top.k"),
    error("credit-score-keep-column-unknown", [*SCORE, "--keep-column", "id"], r"id"),
    error("credit-score-top-k-zero", [*SCORE, "--top-k", "0"], r"top.k"),
    error("credit-score-no-data-option", ["credit", "score", "--run", "{credit}"], r"--data"),
    error(
        "credit-score-output-in-a-missing-folder",
        [*SCORE, "--output", "{tmp}/no/such/s.csv"],
        r"no/such|folder|exist",
    ),
    error(
        "credit-score-output-is-a-folder", [*SCORE, "--output", "{tmp}"], r"folder|directory|\.csv"
    ),
    error("credit-score-output-xlsx", [*SCORE, "--output", "{tmp}/s.xlsx"], r"xlsx|\.csv|parquet"),
    error(
        "credit-score-weights-empty",
        SCORE,
        r"model\.safetensors",
        text("credit/model.safetensors", b""),
    ),
    error(
        "credit-score-weights-truncated",
        SCORE,
        r"model\.safetensors",
        truncated("credit/model.safetensors", "credit/model.safetensors"),
    ),
    error(
        "credit-score-weights-nan",
        SCORE,
        r"NaN|nan|finite|model\.safetensors",
        edit_tensors("credit/model.safetensors", nan_weights),
    ),
    error(
        "credit-score-weights-nan-resigned",
        SCORE,
        r"NaN|nan|finite",
        resigned(edit_tensors("credit/model.safetensors", nan_weights), "credit/model.safetensors"),
    ),
    error(
        "credit-score-weights-missing-tensor",
        SCORE,
        r"missing|tensor|model\.safetensors",
        edit_tensors("credit/model.safetensors", drop_tensor),
    ),
    error(
        "credit-score-weights-missing-tensor-resigned",
        SCORE,
        r"missing|tensor",
        resigned(edit_tensors("credit/model.safetensors", drop_tensor), "credit/model.safetensors"),
    ),
    error(
        "credit-score-config-garbage",
        SCORE,
        r"config\.json",
        text("credit/config.json", "{{"),
    ),
    error(
        "credit-score-config-is-a-list",
        SCORE,
        r"config\.json",
        text("credit/config.json", "[]"),
    ),
    error(
        "credit-score-config-unknown-training-key",
        SCORE,
        r"colour",
        config(put("training.colour", "red"), "credit"),
    ),
    error(
        "credit-score-band-edges-empty",
        SCORE,
        r"band_edges|band|preprocess\.json",
        preprocess(put("band_edges", []), "credit"),
    ),
    error(
        "credit-score-band-edges-empty-resigned",
        SCORE,
        r"band_edges|band",
        resigned(preprocess(put("band_edges", []), "credit"), "credit/preprocess.json"),
    ),
    error(
        "credit-score-encoder-scale-zero",
        SCORE,
        r"scale|income|preprocess\.json",
        preprocess(put("encoder.numeric.income.scale", 0.0), "credit"),
    ),
    error(
        "credit-score-encoder-scale-zero-resigned",
        SCORE,
        r"scale|income",
        resigned(
            preprocess(put("encoder.numeric.income.scale", 0.0), "credit"), "credit/preprocess.json"
        ),
    ),
    error(
        "credit-score-feature-names-do-not-match-weights",
        SCORE,
        r"feature|shape|preprocess\.json",
        preprocess(put("feature_names", ["income", "debt"]), "credit"),
    ),
    error(
        "credit-score-feature-names-do-not-match-weights-resigned",
        SCORE,
        r"feature|shape",
        resigned(
            preprocess(put("feature_names", ["income", "debt"]), "credit"), "credit/preprocess.json"
        ),
    ),
    error(
        "credit-score-preprocess-garbage",
        SCORE,
        r"preprocess\.json",
        text("credit/preprocess.json", "nope"),
    ),
    error(
        "credit-score-default-output-read-only",
        ["credit", "score", "--run", "{credit}", "--data", "{tmp}/ro/new.csv"],
        r"permission|read-only",
        steps(loans("ro/new.csv"), read_only("ro")),
        permissions=True,
    ),
]

OTHER_CASES = [
    error("doctor-extra-argument", ["doctor", "now"], r"unexpected extra argument"),
    error("doctor-unknown-option", ["doctor", "--fix"], r"--fix"),
    warn(
        "doctor-fused-rnn-switch-unknown",
        ["doctor"],
        r"DEEPFIN_FUSED_RNN",
        env={"DEEPFIN_FUSED_RNN": "maybe"},
    ),
    error("data-list-extra-argument", ["data", "list", "all"], r"unexpected extra argument"),
    error("data-list-unknown-option", ["data", "list", "--long"], r"--long"),
    error("data-unknown-command", ["data", "show"], r"show"),
    error("unknown-command", ["forcast"], r"forcast"),
]

CASES = [
    *FORECAST_CASES,
    *COMPARE_CASES,
    *BACKTEST_CASES,
    *PREDICT_CASES,
    *REPORT_CASES,
    *CREDIT_TRAIN_CASES,
    *CREDIT_SCORE_CASES,
    *OTHER_CASES,
]


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    """Data files, one forecast run, one compare folder, one credit run: built once."""
    root = tmp_path_factory.mktemp("shared")
    rng = np.random.default_rng(0)
    n_days, dates = 300, [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(300)]
    frames = []
    for index in range(6):
        close = 50 * np.exp(np.cumsum(0.01 * rng.standard_normal(n_days)))
        open_ = close * np.exp(0.003 * rng.standard_normal(n_days))
        frames.append(
            pl.DataFrame(
                {
                    "date": dates,
                    "ticker": f"T{index}",
                    "open": open_,
                    "high": np.maximum(open_, close) * (1 + 0.005 * rng.random(n_days)),
                    "low": np.minimum(open_, close) * (1 - 0.005 * rng.random(n_days)),
                    "close": close,
                    "volume": rng.integers(100_000, 1_000_000, n_days).astype(float),
                }
            )
        )
    frame = pl.concat(frames)
    frame.write_csv(root / "prices.csv")
    frame.write_parquet(root / "prices.parquet")
    n = 600
    income, grade = rng.normal(size=n), rng.choice(["A", "B", "C"], n)
    log_odds = -1.5 * income + 1.2 * (grade == "C") - 1.0
    loan_table = pl.DataFrame(
        {
            "income": income,
            "debt": rng.normal(size=n),
            "grade": grade,
            "sex": rng.choice(["f", "m"], n),
            "default": (rng.random(n) < 1 / (1 + np.exp(-log_odds))).astype(int),
        }
    )
    loan_table.write_csv(root / "loans.csv")
    made = Shared(root, frame, loan_table)
    tmp = root / "runs"
    for argv in (
        ["forecast", "--data", "{csv}", "--lookback", "10", *LSTM, *FAST, "--run-dir", "{tmp}/run"],
        [*COMPARE, "--run-dir", "{tmp}/compare"],
        [
            *TRAIN,
            "--data",
            "{loans}",
            "--no-progress",
            "--epochs",
            "2",
            "--run-dir",
            "{tmp}/credit",
        ],
    ):
        run_cmd(argv)(tmp, made)
    return made


def materialise(case: Case, tmp: Path, shared: Shared) -> list[str]:
    """The case's inputs built in `tmp`, and its command line with the placeholders filled."""
    copies = {name: tmp / name for name in ("run", "credit", "compare")}
    for name, destination in copies.items():
        if any("{" + name + "}" in arg for arg in case.argv):
            shutil.copytree(shared.folder / "runs" / name, destination)
    if case.setup is not None:
        case.setup(tmp, shared)
    values = {**shared.placeholders, **{k: str(v) for k, v in copies.items()}, "tmp": str(tmp)}
    return [arg.format(**values) for arg in case.argv]


def refusal(output: str) -> list[str]:
    """The error message(s) of a refusal: deepfin's `error:` lines, or typer's usage panel."""
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    if lines or "Usage:" not in output:
        return lines
    panel = re.sub(r"[│╭╮╰╯─]", " ", output.split("Error", 1)[-1])
    return [" ".join(panel.split())]


def check(case: Case, exit_code: int, output: str) -> None:
    shown = f"exit {exit_code}; output:\n{output[-3000:]}"
    assert "Traceback" not in output, shown
    for value in case.absent:
        assert value not in output, f"echoes {value!r}; {shown}"
    if case.expect == "ok":
        assert exit_code == 0, shown
        return
    if case.expect == "warn" and exit_code == 0:
        warnings = [line for line in output.splitlines() if line.startswith("warning:")]
        assert any(re.search(case.fragment, line) for line in warnings), shown
        return
    assert exit_code == 2, shown
    messages = refusal(output)
    assert len(messages) == 1, f"{len(messages)} error lines; {shown}"
    assert re.search(case.fragment, messages[0]), f"no /{case.fragment}/; {shown}"


def param(case: Case) -> Any:
    marks = []
    if case.xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=case.xfail))
    return pytest.param(case, id=case.id, marks=marks)


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 160


@pytest.mark.parametrize("case", [param(case) for case in CASES])
def test_bad_input(
    case: Case, shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.permissions and os.geteuid() == 0:
        pytest.skip("root ignores file permissions, so a read-only folder is writable")
    if case.gpu_free and torch.cuda.is_available():
        pytest.skip("checks the message on a machine without CUDA")
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # a default runs/ folder lands in the case's folder
    argv = materialise(case, tmp_path, shared)
    try:
        result = runner.invoke(app, argv, catch_exceptions=False)
    finally:
        if case.permissions:  # writable again, so that pytest can remove the folder
            for path in [tmp_path, *tmp_path.rglob("*")]:
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
    check(case, result.exit_code, result.output)


# ------------------------------------------------------------- the contract's other paths


def test_a_fault_prints_its_traceback_and_asks_for_a_report(
    shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("deepfin.cli.forecast.run_forecast", broken)
    args = [a.format(tmp=tmp_path, **shared.placeholders) for a in FORECAST_OUT]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1
    assert "Traceback" in result.output and "please report it" in result.output


def test_ctrl_c_exits_130(shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("deepfin.cli.forecast.run_forecast", interrupted)
    args = [a.format(tmp=tmp_path, **shared.placeholders) for a in FORECAST_OUT]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 130 and "Traceback" not in result.output


def test_a_path_with_square_brackets_is_read(shared: Shared, tmp_path: Path) -> None:
    data = tmp_path / "[draft]" / "prices.csv"
    data.parent.mkdir()
    shutil.copy(shared.folder / "prices.csv", data)
    args = [a.format(tmp=tmp_path, **shared.placeholders) for a in FORECAST_OUT]
    result = runner.invoke(app, [*args, "--data", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "out") in result.output
