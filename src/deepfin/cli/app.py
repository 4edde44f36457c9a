"""The `deepfin` command: its groups and commands, and the logging every command shares."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from deepfin.cli.backtest import backtest
from deepfin.cli.chart import chart_app
from deepfin.cli.common import ConsoleHandler, guarded
from deepfin.cli.credit import credit_app
from deepfin.cli.data import data_app
from deepfin.cli.doctor import doctor
from deepfin.cli.forecast import compare, forecast, predict, report_command
from deepfin.cli.image import image_app
from deepfin.cli.risk import risk_app
from deepfin.cli.serve import serve_app
from deepfin.cli.text import text_app
from deepfin.heap import return_large_buffers_when_freed

app = typer.Typer(help="Deep learning for financial data.", no_args_is_help=True)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """deepfin: deep learning for financial data, judged against honest baselines."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[ConsoleHandler()],
        force=True,  # a dependency may have configured the root logger on import
    )
    return_large_buffers_when_freed()  # a run's peak memory is its arrays, not freed heap


app.command()(guarded(forecast))
app.command()(guarded(compare))
app.command()(guarded(backtest))
app.command()(guarded(predict))
app.command("report")(guarded(report_command))
app.command()(guarded(doctor))
app.add_typer(data_app, name="data")
app.add_typer(credit_app, name="credit")
app.add_typer(text_app, name="text")
app.add_typer(risk_app, name="risk")
app.add_typer(chart_app, name="chart")
app.add_typer(image_app, name="image")
app.add_typer(serve_app, name="serve")
