"""Every config field is a flag: the commands are held to the config dataclasses they fill."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from deepfin.cli.app import app
from deepfin.cli.options import config_options
from deepfin.config import SECTIONS

# fields whose flag is spelled otherwise: the data source is --data, a column is one --column
SPELLED = {"source": "--data", "columns": "--column", "model_params": "--param"}
# which sections each command fills completely
COVERED = {
    "forecast": ("data", "split", "forecast", "training"),
    "backtest": ("data", "walk_forward"),
}


def flags(command: str) -> set[str]:
    click_command = typer.main.get_command(app)
    params = click_command.commands[command].params  # type: ignore[attr-defined]
    return {option for param in params for option in (*param.opts, *param.secondary_opts)}


@pytest.mark.parametrize("command", list(COVERED))
def test_every_field_of_a_section_a_command_fills_has_its_flag(command: str) -> None:
    missing = [
        f"{section}.{field.name}"
        for section in COVERED[command]
        for field in dataclasses.fields(SECTIONS[section])
        if SPELLED.get(field.name, "--" + field.name.replace("_", "-")) not in flags(command)
    ]
    assert not missing, f"deepfin {command} lacks flags for {missing}"


def test_shared_flags_mean_the_same_in_every_command() -> None:
    # a flag two commands share is derived from one config field and so reads the same
    shared = flags("forecast") & flags("compare") & flags("backtest")
    assert {"--data", "--column", "--tickers", "--max-tickers", "--layout", "--seed"} <= shared


def test_credit_train_has_a_flag_for_every_field_it_fills() -> None:
    from deepfin.tasks.credit.config import SECTIONS as CREDIT_SECTIONS

    click_command = typer.main.get_command(app)
    train = click_command.commands["credit"].commands["train"]  # type: ignore[attr-defined]
    options = {o for p in train.params for o in (*p.opts, *p.secondary_opts)}
    spelled = {
        "source": "--data",
        "model_params": "--param",
        "drop": "--drop-column",
        "allow_columns": "--allow-column",
        "enabled": "--dp",
        "epsilon": "--dp-epsilon",
        "delta": "--dp-delta",
        "max_grad_norm": "--dp-max-grad-norm",
    }
    missing = [
        f"{section}.{field.name}"
        for section, section_class in CREDIT_SECTIONS.items()
        for field in dataclasses.fields(section_class)
        if spelled.get(field.name, "--" + field.name.replace("_", "-")) not in options
    ]
    assert not missing, f"deepfin credit train lacks flags for {missing}"


@dataclasses.dataclass(frozen=True)
class Example:
    count: int = 1
    rate: float | None = None
    on: bool = False
    names: tuple[str, ...] = ()
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


def given(*args: str) -> tuple[int, dict[str, Any], str]:
    seen: dict[str, Any] = {}
    example = typer.Typer()

    @example.command()
    @config_options(("example", Example))
    def command(flags: dict[str, Any], name: str = "x") -> None:
        seen.update(flags, name=name)

    result = CliRunner().invoke(example, list(args))
    return result.exit_code, seen, result.output


def test_each_kind_of_field_becomes_an_option_and_arrives_converted() -> None:
    code, seen, _ = given(
        "--count", "3", "--rate", "0.5", "--on", "--names", "a,b", "--names", "c",
        "--labels", "close=Adj Close", "--params", "depth=2", "--params", "fast=true",
        "--name", "own",
    )  # fmt: skip
    assert code == 0
    assert seen == {
        "example.count": 3,
        "example.rate": 0.5,
        "example.on": True,
        "example.names": ("a", "b", "c"),
        "example.labels": {"close": "Adj Close"},  # a str-valued dict keeps its text
        "example.params": {"depth": 2, "fast": True},
        "name": "own",
    }


def test_options_not_given_arrive_as_none_so_the_config_file_decides() -> None:
    code, seen, _ = given()
    assert code == 0
    assert set(seen.values()) == {None, "x"}


def test_a_pair_without_equals_is_one_clear_error() -> None:
    code, _, output = given("--labels", "close")
    assert code == 2
    assert "error: --labels 'close' needs the form key=value" in output


def test_compare_takes_the_split_and_every_forecast_setting_but_the_model() -> None:
    options = flags("compare")
    assert {"--val-fraction", "--embargo", "--scaler", "--loss", "--learning-rate"} <= options
    assert "--model" not in options and "--param" not in options
