"""`deepfin credit train|score`: loan-default scoring from the command line, thin over tasks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from deepfin.cli.common import (
    ConfigOption,
    console,
    guarded,
    table_destination,
    write_table,
)
from deepfin.cli.options import config_options
from deepfin.errors import DataError
from deepfin.metrics.classification import bin_shares, population_stability_index
from deepfin.models import TABULAR_MODELS
from deepfin.tasks.credit.config import (
    CreditConfig,
    CreditDataConfig,
    CreditPrivacyConfig,
    load_credit_config,
)
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.credit.files import run_credit
from deepfin.tasks.forecasting.pipeline import new_run_dir
from deepfin.training import TrainingConfig

credit_app = typer.Typer(help="Credit risk: loan-default scoring.", no_args_is_help=True)
Names = Annotated[list[str] | None, typer.Option(help="Repeat, or separate with commas.")]
SHOWN = (
    ("auc", "AUC"),
    ("gini", "Gini"),
    ("ks", "KS"),
    ("ks_score", "KS at score"),
    ("brier", "Brier"),
    ("log_loss", "log loss"),
)


def _names(values: list[str] | None) -> tuple[str, ...]:
    return tuple(
        name.strip() for value in values or [] for name in value.split(",") if name.strip()
    )


@credit_app.command()
@guarded
@config_options(
    ("data", CreditDataConfig),
    ("credit", CreditConfig),
    ("training", TrainingConfig),
    ("privacy", CreditPrivacyConfig),
    help={
        "data.source": "CSV or Parquet loan table.",
        "credit.model": f"One of {', '.join(TABULAR_MODELS)}.",
    },
)
def train(
    flags: dict[str, Any],
    config: ConfigOption = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Default runs/<time>-credit-<model>.")
    ] = None,
) -> None:
    """Train a credit model beside logistic and LightGBM baselines; save a run and report."""
    from deepfin.report.credit import write_credit_report

    run = load_credit_config(config, {k: v for k, v in flags.items() if v is not None})
    privacy = run.privacy.privacy()
    scorer = CreditScorer(**dataclasses.asdict(run.credit), training=run.training, privacy=privacy)
    model_name = run.credit.model
    folder = run_dir or new_run_dir(run.runs_dir, f"credit-{model_name}{'-dp' if privacy else ''}")
    console.print(f"[bold]deepfin credit[/bold] {model_name} on {escape(run.data.source)}")
    run_credit(
        scorer,
        run.data.source,
        run_dir=folder,
        test_fraction=run.data.test_fraction,
        val_fraction=run.data.val_fraction,
        seed=run.training.seed,
        folds=run.data.folds,
        cutoff=run.data.cutoff,
    )
    report = write_credit_report(scorer, folder / "report.html")
    model = model_name
    assert scorer.metrics_ is not None
    metrics = scorer.metrics_
    table = Table(title=f"test set ({metrics['models'][model]['n']} rows)")
    table.add_column("model")
    for _, heading in SHOWN:
        table.add_column(heading, justify="right")
    for name, row in metrics["models"].items():
        table.add_row(
            name,
            *[f"{row[key]:.4f}" if key != "ks_score" else f"{row[key]:.0f}" for key, _ in SHOWN],
        )
    console.print(table)
    best = max(metrics["models"], key=lambda name: metrics["models"][name]["auc"])
    console.print(f"highest AUC: {best}; PSI train vs test {metrics['psi']:.4f}")
    if scorer.privacy_:
        console.print(
            f"DP-SGD privacy budget: epsilon {scorer.privacy_['epsilon']:.3f}, "
            f"delta {scorer.privacy_['delta']:g}"
        )
    console.print(f"run folder: {escape(str(folder))}  report: {escape(str(report))}")


@credit_app.command()
@guarded
def score(
    run: Annotated[Path, typer.Option("--run", help="A run folder written by credit train.")],
    data: Annotated[str, typer.Option("--data", help="CSV or Parquet of applicants.")],
    output: Annotated[Path | None, typer.Option(help=".csv or .parquet.")] = None,
    top_k: Annotated[int, typer.Option(help="Reason codes each way.")] = 3,
    reasons: Annotated[bool, typer.Option("--reasons/--no-reasons")] = True,
    unknown_categories: Annotated[
        str | None, typer.Option(help="error or other (treat as a rare category).")
    ] = None,
    keep_column: Annotated[
        list[str] | None, typer.Option(help="Input columns to copy to the output, e.g. an id.")
    ] = None,
) -> None:
    """Score applicants with a saved run: probability, score, band and reason codes."""
    import dataclasses

    from deepfin.data.tabular.encoding import read_loans

    destination = table_destination(output or Path(data).with_name(Path(data).stem + "_scores.csv"))
    scorer = CreditScorer.load(run)
    if unknown_categories is not None:
        scorer.config = dataclasses.replace(scorer.config, unknown_categories=unknown_categories)
    frame = read_loans(data)
    destination = table_destination(output or Path(data).with_name(Path(data).stem + "_scores.csv"))
    kept = _names(keep_column)
    absent = [c for c in kept if c not in frame.columns]
    if absent:
        raise DataError(f"--keep-column {absent} not in the data; it has {frame.columns}")
    scores = scorer.score(frame, top_k=top_k, reasons=reasons)
    scores = frame.select(kept).hstack(scores) if kept else scores
    probability = scores["default_probability"].to_numpy()
    shares = bin_shares(probability, scorer.score_edges_)
    psi = population_stability_index(scorer.train_score_shares_, shares)
    write_table(scores, destination)
    console.print(scores.head(5), markup=False)
    console.print(
        f"{scores.height} applicant(s) scored, mean default probability "
        f"{np.mean(probability):.4f}; PSI vs training {psi:.4f}; written to "
        f"{escape(str(destination))}"
    )


if __name__ == "__main__":
    credit_app()
