"""`deepfin credit train|score`: loan-default scoring from the command line, thin over tasks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from deepfin.cli.common import (
    USER_ERRORS,
    ConfigOption,
    IntOption,
    ParamOption,
    ProgressOption,
    console,
    fail,
    pairs,
    parse_value,
)
from deepfin.errors import DataError
from deepfin.metrics.classification import bin_shares, population_stability_index
from deepfin.models import TABULAR_MODELS
from deepfin.tasks.credit.config import load_credit_config
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.credit.files import run_credit
from deepfin.tasks.forecasting.pipeline import new_run_dir

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
def train(
    config: ConfigOption = None,
    data: Annotated[str | None, typer.Option("--data", help="CSV or Parquet loan table.")] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Column that says default (default: default).")
    ] = None,
    model: Annotated[str | None, typer.Option(help=f"One of {', '.join(TABULAR_MODELS)}.")] = None,
    default_value: Annotated[
        str | None, typer.Option(help="Target value meaning default (needed unless 0/1).")
    ] = None,
    date_col: Annotated[str | None, typer.Option(help="Split out of time by this date.")] = None,
    numeric: Names = None,
    categorical: Names = None,
    drop_column: Names = None,
    allow_column: Names = None,
    sensitive: Annotated[
        list[str] | None, typer.Option(help="Not a feature; used for the fairness table.")
    ] = None,
    baselines: Annotated[
        str | None, typer.Option(help="Comma-separated (default logistic,lightgbm); '' for none.")
    ] = None,
    param: ParamOption = None,
    min_category_count: IntOption = None,
    unknown_categories: Annotated[str | None, typer.Option(help="error or other.")] = None,
    integrated_gradient_steps: IntOption = None,
    test_fraction: Annotated[float | None, typer.Option()] = None,
    val_fraction: Annotated[float | None, typer.Option()] = None,
    folds: Annotated[
        int | None, typer.Option(help="k-fold cross-validation on the training rows.")
    ] = None,
    cutoff: Annotated[float | None, typer.Option(help="Approve below this probability.")] = None,
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
    bf16: Annotated[bool | None, typer.Option("--bf16/--no-bf16")] = None,
    dp: Annotated[bool | None, typer.Option("--dp/--no-dp", help="Train with DP-SGD.")] = None,
    dp_epsilon: Annotated[float | None, typer.Option()] = None,
    dp_delta: Annotated[float | None, typer.Option()] = None,
    dp_max_grad_norm: Annotated[float | None, typer.Option()] = None,
    progress: ProgressOption = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Default runs/<time>-credit-<model>.")
    ] = None,
) -> None:
    """Train a credit model beside logistic and LightGBM baselines; save a run and report."""
    from deepfin.report.credit import write_credit_report

    def names(values: list[str] | None) -> tuple[str, ...] | None:
        return _names(values) if values else None

    flags = {
        "data.source": data,
        "data.test_fraction": test_fraction,
        "data.val_fraction": val_fraction,
        "data.folds": folds,
        "data.cutoff": cutoff,
        "credit.model": model,
        "credit.target": target,
        "credit.default_value": default_value,
        "credit.date_col": date_col,
        "credit.numeric": names(numeric),
        "credit.categorical": names(categorical),
        "credit.drop": names(drop_column),
        "credit.allow_columns": names(allow_column),
        "credit.sensitive": names(sensitive),
        "credit.baselines": None if baselines is None else _names([baselines]),
        "credit.model_params": {k: parse_value(v) for k, v in pairs(param, "--param").items()}
        or None,
        "credit.min_category_count": min_category_count,
        "credit.unknown_categories": unknown_categories,
        "credit.integrated_gradient_steps": integrated_gradient_steps,
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
        "privacy.enabled": dp,
        "privacy.epsilon": dp_epsilon,
        "privacy.delta": dp_delta,
        "privacy.max_grad_norm": dp_max_grad_norm,
    }
    try:
        run = load_credit_config(config, {k: v for k, v in flags.items() if v is not None})
        privacy = run.privacy.privacy()
        scorer = CreditScorer(
            **dataclasses.asdict(run.credit), training=run.training, privacy=privacy
        )
        model_name = run.credit.model
        folder = run_dir or new_run_dir(
            run.runs_dir, f"credit-{model_name}{'-dp' if privacy else ''}"
        )
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
    except USER_ERRORS as error:
        fail(error)
        return
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

    try:
        scorer = CreditScorer.load(run)
        if unknown_categories is not None:
            scorer.config = dataclasses.replace(
                scorer.config, unknown_categories=unknown_categories
            )
        frame = read_loans(data)
        kept = _names(keep_column)
        absent = [c for c in kept if c not in frame.columns]
        if absent:
            raise DataError(f"--keep-column {absent} not in the data; it has {frame.columns}")
        scores = scorer.score(frame, top_k=top_k, reasons=reasons)
    except USER_ERRORS as error:
        fail(error)
        return
    scores = frame.select(kept).hstack(scores) if kept else scores
    probability = scores["default_probability"].to_numpy()
    shares = bin_shares(probability, scorer.score_edges_)
    psi = population_stability_index(scorer.train_score_shares_, shares)
    destination = output or Path(data).with_name(Path(data).stem + "_scores.csv")
    if destination.suffix == ".parquet":
        scores.write_parquet(destination)
    else:
        scores.write_csv(destination)
    console.print(scores.head(5))
    console.print(
        f"{scores.height} applicant(s) scored, mean default probability "
        f"{np.mean(probability):.4f}; PSI vs training {psi:.4f}; written to {destination}"
    )


if __name__ == "__main__":
    credit_app()
