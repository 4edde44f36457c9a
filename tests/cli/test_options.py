"""Every config field is a flag: the commands are held to the config dataclasses they fill."""

from __future__ import annotations

import dataclasses

import pytest
import typer

from deepfin.cli.app import app
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
    # a flag two commands share is declared once (cli/common.py) and so reads the same
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
