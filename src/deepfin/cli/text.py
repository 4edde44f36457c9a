"""`deepfin text train|predict`: sentiment and intents of texts from the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from deepfin.cli.common import (
    ConfigOption,
    ReportOption,
    console,
    format_value,
    guarded,
    table_destination,
    write_table,
)
from deepfin.cli.options import config_options
from deepfin.models import TEXT_MODELS
from deepfin.runs.files import REPORT
from deepfin.tasks.forecasting.pipeline import new_run_dir
from deepfin.tasks.text.config import TextConfig, TextDataConfig, load_text_config
from deepfin.tasks.text.estimator import TextClassifier
from deepfin.tasks.text.files import run_text
from deepfin.training import TrainingConfig

text_app = typer.Typer(help="Financial text: sentiment and intents.", no_args_is_help=True)
SHOWN = (
    ("accuracy", "accuracy"),
    ("macro_f1", "macro F1"),
    ("weighted_f1", "weighted F1"),
    ("top_3_accuracy", "top-3 accuracy"),
    ("log_loss", "log loss"),
    ("ece", "ECE"),
    ("mse", "MSE"),
    ("rmse", "RMSE"),
    ("r2", "R²"),
    ("pearson", "Pearson"),
)


@text_app.command()
@guarded
@config_options(
    ("data", TextDataConfig),
    ("text", TextConfig),
    ("training", TrainingConfig),
    help={
        "data.source": "CSV, Parquet, JSON (lines) or a PhraseBank sentence@label .txt file.",
        "data.test_data": "Test texts of their own (else a stratified share of --data).",
        "text.model": f"One of {', '.join(TEXT_MODELS)}.",
    },
)
def train(
    flags: dict[str, Any],
    config: ConfigOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="Default runs/<time>-text-<model>.")] = None,
    report: ReportOption = True,
) -> None:
    """Train a text classifier beside the majority class; save a run folder."""
    run = load_text_config(config, {k: v for k, v in flags.items() if v is not None})
    classifier = TextClassifier(**dataclasses.asdict(run.text), training=run.training)
    folder = run_dir or new_run_dir(run.runs_dir, f"text-{run.text.model}")
    console.print(f"[bold]deepfin text[/bold] {run.text.model} on {escape(run.data.source)}")
    metrics = run_text(classifier, run.data, run_dir=folder, seed=run.training.seed)
    split = metrics["split"]
    table = Table(
        title=f"test texts ({split['test']}; trained on {split['train']}, "
        f"{split['duplicates_removed']} duplicate(s) removed)"
    )
    table.add_column("model")
    rows = metrics["models"]
    shown = [(key, heading) for key, heading in SHOWN if any(key in row for row in rows.values())]
    tests = sorted(
        {key for row in rows.values() for key in row if key.startswith(("mcnemar_p", "dm_p"))}
    )
    for _, heading in shown:
        table.add_column(heading, justify="right")
    for key in tests:
        heading = key.replace("mcnemar_p_vs_", "McNemar p vs ").replace("dm_p_vs_", "DM p vs ")
        table.add_column(heading, justify="right")
    for name, row in rows.items():
        cells = [format_value(row.get(key)) for key, _ in shown]
        table.add_row(escape(name), *cells, *[format_value(row.get(key)) for key in tests])
    console.print(table)
    if metrics["masked"]:
        masked = ", ".join(f"{count} {kind}" for kind, count in sorted(metrics["masked"].items()))
        console.print(f"personal data masked before learning: {masked}")
    cut = {role: count for role, count in metrics.get("truncated", {}).items() if count}
    if cut:
        shown_cut = ", ".join(f"{count} {role}" for role, count in cut.items())
        console.print(f"texts cut to {run.text.max_tokens} tokens: {shown_cut}")
    if report:
        from deepfin.report.text import write_text_report

        page = write_text_report(classifier, folder / REPORT)
        console.print(f"report: {escape(str(page))}")
    console.print(f"run folder: {escape(str(folder))}")


@text_app.command()
@guarded
def predict(
    run: Annotated[Path, typer.Option("--run", help="A run folder written by text train.")],
    data: Annotated[str, typer.Option("--data", help="Texts: CSV, Parquet, JSON or .txt.")],
    output: Annotated[Path | None, typer.Option(help=".csv or .parquet.")] = None,
) -> None:
    """Label texts with a saved run: label, probability and the top-3 labels."""
    destination = table_destination(output or Path(data).with_name(Path(data).stem + "_labels.csv"))
    classifier = TextClassifier.load(run)
    labelled = classifier.predict(data)
    flat = labelled
    if "top_labels" in labelled.columns:  # classes; scores have one number per text
        flat = labelled.with_columns(
            labelled["top_labels"].list.join(" | "),
            labelled["top_probabilities"].list.eval(pl_round()).list.join(" | "),
        )
    write_table(flat, destination)
    console.print(flat.head(5), markup=False)
    console.print(f"{flat.height} text(s) labelled; written to {escape(str(destination))}")


@text_app.command()
@guarded
def faq(
    faq: Annotated[str, typer.Option("--faq", help="FAQ table: question and answer columns.")],
    question: Annotated[
        list[str] | None, typer.Option("--question", help="A message to answer (repeatable).")
    ] = None,
    questions: Annotated[
        str | None, typer.Option(help="A file of messages to answer (a text column).")
    ] = None,
    held_out: Annotated[
        str | None,
        typer.Option(help="Messages with the FAQ question that answers each (empty: none)."),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Entries shown per message.")] = 3,
    target_precision: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Right answers wanted among answered.")
    ] = 0.9,
    min_similarity: Annotated[
        float | None, typer.Option(help="A threshold of your own instead of the calibrated one.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write the answers (.csv or .parquet).")
    ] = None,
) -> None:
    """Answer messages from a FAQ: the nearest questions, or no confident answer."""
    from deepfin.data.text.reading import read_texts
    from deepfin.tasks.text.faq import FaqIndex

    messages = list(question or [])
    if questions:
        messages += read_texts(questions)["text"].to_list()
    if not messages:
        raise typer.BadParameter("give --question TEXT (repeatable) or --questions FILE")
    index = FaqIndex(target_precision=target_precision, min_similarity=min_similarity)
    index.fit(faq, held_out)
    calibration = index.calibration_
    if calibration is not None:
        console.print(
            f"threshold {calibration.threshold:.3f}: on {calibration.messages} held-out "
            f"messages, precision {calibration.precision:.3f}, coverage {calibration.coverage:.3f}"
        )
    answers = index.answer(messages, top_k=top_k)
    for message, rows in answers.group_by("message", maintain_order=True):
        best = rows.row(0, named=True)
        console.print(f"\n[bold]{escape(str(message[0]))}[/bold]")
        if not best["confident"]:
            console.print(
                f"no confident answer (best similarity {best['similarity']:.3f} < "
                f"{index.threshold_:.3f}); the nearest entries:"
            )
        for row in rows.iter_rows(named=True):
            console.print(
                f"  {row['rank']}. ({row['similarity']:.3f}) {escape(row['question'])} -> "
                f"{escape(row['answer'])}"
            )
    if output is not None:
        write_table(answers, table_destination(output))
        console.print(f"written to {escape(str(output))}")


def pl_round() -> Any:
    """Probabilities as text with four decimals, for a flat table."""
    import polars as pl

    return pl.element().round(4).cast(pl.String)
