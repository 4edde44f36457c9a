"""`deepfin data list`: the built-in data sets."""

from __future__ import annotations

import typer
from rich.table import Table

from deepfin.cli.common import console, guarded
from deepfin.data.samples import SAMPLES

data_app = typer.Typer(help="Built-in data sets.", no_args_is_help=True)


@data_app.command("list")
@guarded
def data_list() -> None:
    """Show the built-in data sets."""
    table = Table(title="built-in data sets")
    for column in ("name", "description", "source"):
        table.add_column(column)
    for sample in SAMPLES.values():
        table.add_row(sample.name, sample.description, sample.source)
    console.print(table)
